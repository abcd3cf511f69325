"""docker-compose.yml agrees with the worker's settings, the broker and Grafana.

No Docker here: the file is read and its services, ports and environment are
checked against `streams.settings.Settings` and `dashboards/provisioning`.
"""

import base64
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
WORKERS = ["worker-1", "worker-2"]
SPENDSTREAM_USERS = [*WORKERS, "fleet"]


def with_defaults(value: object) -> str:
    """A value as compose gives it with no variables set: `${X:-d}` is `d`."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(value))


def env(service: str) -> dict[str, str]:
    raw = SERVICES[service].get("environment", {})
    return {name: with_defaults(value) for name, value in raw.items()}


def settings_of(service: str) -> Settings:
    """The settings a spendstream process of `service` runs with."""
    fields = {
        name.removeprefix("SPENDSTREAM_").lower(): value
        for name, value in env(service).items()
    }
    return Settings.model_validate(fields)


def published(service: str) -> dict[int, int]:
    """Container port to host port."""
    pairs = (str(p).split(":") for p in SERVICES[service].get("ports", []))
    return {int(container): int(host) for host, container in pairs}


def test_the_stack_has_its_services_and_the_fleet_is_optional() -> None:
    assert set(SERVICES) == {"kafka", "clickhouse", "grafana", *SPENDSTREAM_USERS}
    assert SERVICES["fleet"]["profiles"] == ["demo"]
    for name, service in SERVICES.items():
        if name != "fleet":
            assert "profiles" not in service, name
            assert service["healthcheck"]["test"], name


def test_named_volumes_are_declared_and_keep_each_service_state() -> None:
    declared = set(COMPOSE["volumes"])
    used = {
        str(volume).split(":")[0]
        for service in SERVICES.values()
        for volume in service.get("volumes", [])
        if not str(volume).startswith(".")
    }
    assert used == declared
    for name in ("kafka", "clickhouse", "grafana", *WORKERS):
        assert any(not str(v).startswith(".") for v in SERVICES[name]["volumes"])


@pytest.mark.parametrize("service", SPENDSTREAM_USERS)
def test_every_spendstream_variable_is_a_setting(service: str) -> None:
    names = [n for n in env(service) if n.startswith("SPENDSTREAM_")]
    assert names
    for name in names:
        assert name.removeprefix("SPENDSTREAM_").lower() in Settings.model_fields
    settings_of(service)


def test_workers_share_group_and_topics_on_distinct_web_ports() -> None:
    settings = [settings_of(w) for w in WORKERS]
    assert len({(s.app_id, s.topic_prefix, s.clickhouse) for s in settings}) == 1
    assert settings_of("fleet").topic_prefix == settings[0].topic_prefix
    ports = [s.web_port for s in settings]
    assert len(set(ports)) == len(ports)
    for worker, s in zip(WORKERS, settings, strict=True):
        assert s.web_host == worker, "other workers reach it by its service name"
        assert s.web_bind == "0.0.0.0"
        assert published(worker) == {s.web_port: s.web_port}
        assert f"localhost:{s.web_port}/healthz" in str(
            SERVICES[worker]["healthcheck"]["test"]
        )
        needs = SERVICES[worker]["depends_on"]
        assert {needs[n]["condition"] for n in ("kafka", "clickhouse")} == {
            "service_healthy"
        }


def test_workers_write_to_the_clickhouse_service_as_its_user() -> None:
    clickhouse = env("clickhouse")
    for worker in WORKERS:
        url = urlparse(settings_of(worker).clickhouse)
        assert url.scheme in ("http", "https")
        assert (url.hostname, url.port) == ("clickhouse", 8123)
        assert url.username == clickhouse["CLICKHOUSE_USER"]
        assert url.password == clickhouse["CLICKHOUSE_PASSWORD"]
        assert url.path.strip("/") == clickhouse["CLICKHOUSE_DB"] == "spendstream"


def listeners(value: str) -> dict[str, tuple[str, int]]:
    """`NAME://host:port,...` as name to (host, port)."""
    found = {}
    for item in value.split(","):
        name, address = item.split("://")
        host, port = address.rsplit(":", 1)
        found[name] = (host, int(port))
    return found


def test_kafka_runs_kraft_and_advertises_what_the_workers_bootstrap_from() -> None:
    kafka = env("kafka")
    assert "broker" in kafka["KAFKA_PROCESS_ROLES"]
    assert "controller" in kafka["KAFKA_PROCESS_ROLES"]
    assert len(base64.urlsafe_b64decode(kafka["CLUSTER_ID"] + "==")) == 16
    advertised = listeners(kafka["KAFKA_ADVERTISED_LISTENERS"])
    bound = listeners(kafka["KAFKA_LISTENERS"])
    for service in SPENDSTREAM_USERS:
        host, port = settings_of(service).kafka.split(":")
        [name] = [n for n, a in advertised.items() if a == (host, int(port))]
        assert host == "kafka" and bound[name][1] == int(port)
    assert name == kafka["KAFKA_INTER_BROKER_LISTENER_NAME"]


def test_kafka_is_the_official_image_of_the_local_broker_version() -> None:
    pom = (ROOT / "scripts" / "kafka-pom.xml").read_text()
    [version] = re.findall(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert SERVICES["kafka"]["image"] == f"apache/kafka:{version}"


def test_grafana_has_the_plugin_the_provisioning_and_its_variables() -> None:
    grafana = SERVICES["grafana"]
    assert "grafana-clickhouse-datasource" in env("grafana")["GF_INSTALL_PLUGINS"]
    mounts = dict(str(v).split(":")[:2] for v in grafana["volumes"])
    provisioning = ROOT / "dashboards" / "provisioning"
    for kind in ("datasources", "dashboards"):
        assert mounts[f"./dashboards/provisioning/{kind}"] == (
            f"/etc/grafana/provisioning/{kind}"
        )
    [provider] = yaml.safe_load(
        (provisioning / "dashboards" / "spendstream.yaml").read_text()
    )["providers"]
    assert mounts["./dashboards"] == provider["options"]["path"]

    config = yaml.safe_load(
        (provisioning / "datasources" / "clickhouse.yaml").read_text()
    )
    variables = re.findall(r"\$(\w+)", str(config["datasources"]))
    assert variables
    for variable in variables:
        assert variable in env("grafana"), variable
    assert env("grafana")["CLICKHOUSE_HOST"] == "clickhouse"
    assert (
        env("grafana")["CLICKHOUSE_PASSWORD"]
        == env("clickhouse")["CLICKHOUSE_PASSWORD"]
    )


def test_the_image_installs_the_project_and_runs_a_worker() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^RUN pip install \.", dockerfile, re.MULTILINE)
    assert 'CMD ["spendstream", "worker"]' in dockerfile
    for service in SPENDSTREAM_USERS:
        assert SERVICES[service]["build"] == "."
        assert SERVICES[service]["command"][0] == "spendstream"
