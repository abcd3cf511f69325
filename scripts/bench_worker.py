"""A worker for a benchmark: topics, consumer groups, store and port of its own.

Every benchmark starts `spendstream worker` as the demo does
(`streams.demo.worker_command` and `worker_env`), on settings that no other
run shares, so figures never mix with an earlier run's state.
"""

import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from streams.demo import worker_command, worker_env
from streams.settings import Settings


def free_port() -> int:
    """A TCP port on loopback that nothing listens on just now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def bench_settings(name: str, folder: Path, **fields: Any) -> Settings:
    """Settings for a run called `name`: the broker of SPENDSTREAM_KAFKA (else
    the local one), topics and groups under `<name><epoch>.`, the embedded
    store and data under `folder`; `fields` set anything else."""
    prefix = f"{name}{int(time.time())}."
    return Settings(
        kafka=os.environ.get("SPENDSTREAM_KAFKA", "127.0.0.1:9092"),
        topic_prefix=prefix,
        app_id=prefix.rstrip("."),
        clickhouse=f"chdb://{folder / 'store'}",
        data_dir=folder / "worker",
        **fields,
    )


def spawn_worker(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    """Start a worker with exactly `settings`, logging warnings and worse to `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [*worker_command(), "--loglevel", "warn"],
            env=worker_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
