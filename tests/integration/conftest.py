"""A real Kafka broker for the session, and workers run as real processes.

The broker is the one `scripts/kafka up` starts (stopped again at the end if
this session started it), or the one `SPENDSTREAM_KAFKA` names. Every test gets
its own topic prefix, consumer group and ClickHouse folder.
"""

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.harness import WorkerProcess, free_port, isolated_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def kafka() -> Iterator[str]:
    """Bootstrap servers of a running broker."""
    configured = os.environ.get("SPENDSTREAM_KAFKA")
    if configured:
        yield configured
        return
    script = str(ROOT / "scripts" / "kafka")
    was_running = (
        subprocess.run([script, "status"], capture_output=True).returncode == 0
    )
    subprocess.run([script, "up"], check=True)
    yield f"127.0.0.1:{os.environ.get('SPENDSTREAM_KAFKA_PORT', '9092')}"
    if not was_running:
        subprocess.run([script, "down"], check=True)


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def worker_env(kafka: str, prefix: str, tmp_path: Path) -> dict[str, str]:
    """Environment of this test's workers: its own topics, group and store."""
    return isolated_env(kafka, prefix, tmp_path)


@pytest.fixture
def start_worker(
    worker_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start a worker process; every worker still running is killed at the end."""
    started: list[WorkerProcess] = []

    def start(**env: str) -> WorkerProcess:
        log_path = tmp_path / f"worker-{len(started)}.log"
        worker = WorkerProcess.start({**worker_env, **env}, free_port(), log_path)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()
