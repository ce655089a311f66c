"""docker-compose.yml, the Dockerfile and the `make images` / `make compose-*` targets.

No Docker engine runs here, so these read the files and check them against what the code says:
the services, ports and settings in shared/config.py, the `revisit` CLI, the Makefile, the
Prometheus, OpenTelemetry and Grafana configs the compose file mounts, and the metrics that
shared/pipeline_metrics.py exports.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from tests.deploy.service_env import build_settings, check_service_env, env_vars

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "pipeline-health.json"
INFRA = {
    "postgres",
    "kafka",
    "migrate",
    "topics",
    "prometheus",
    "grafana",
    "otel-collector",
    "jaeger",
}
SECRETS = {
    "POSTGRES_PASSWORD",
    "REVISIT_PSEUDONYM_KEY",
    "REVISIT_METRICS_TOKEN",
    "GRAFANA_ADMIN_PASSWORD",
    "REVISIT_CONSOLE_SECRET",
    "REVISIT_ESCALATION_FALLBACK_NOTIFIER_SECRET",
}
# Not secret, but with no sensible default either: where the console is and who signs staff in.
CONSOLE_REQUIRED = {
    "REVISIT_CONSOLE_PUBLIC_URL": "https://console.clinic.example",
    "REVISIT_CONSOLE_OIDC_ISSUER": "https://id.clinic.example",
    "REVISIT_CONSOLE_OIDC_CLIENT_ID": "revisit-console",
}
# Where a clinic not yet set up is paged: the escalation service refuses to start without it.
ESCALATION_REQUIRED = {"REVISIT_ESCALATION_FALLBACK_NOTIFIER_KIND": "pagerduty"}
REQUIRED = SECRETS | set(CONSOLE_REQUIRED) | set(ESCALATION_REQUIRED)
TEST_SECRETS = (
    {name: "s3cr3t" + "x" * 40 for name in SECRETS} | CONSOLE_REQUIRED | ESCALATION_REQUIRED
)
NO_DOCKER_HINT = "`make run` runs everything without Docker"


# -- compose's variable interpolation -------------------------------------------------------------

_VARIABLE = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)


class MissingVariable(Exception):
    pass


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error} and $$, as compose."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        present = name in env and (env[name] != "" or not (op or "").startswith(":"))
        if present:
            return env[name]
        if op in (":?", "?"):
            raise MissingVariable(f"{name}: {arg}")
        return arg if op in (":-", "-") else ""

    return _VARIABLE.sub(substitute, value)


def env_file(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    """The compose file as `docker compose config` would see it with a filled-in .env."""
    return interpolate(raw, {**env_file(ENV_EXAMPLE), **TEST_SECRETS})


def services() -> tuple[str, ...]:
    from shared.config import SERVICE_NAMES

    return SERVICE_NAMES


# -- secrets --------------------------------------------------------------------------------------


def test_env_example_lists_every_secret_empty() -> None:
    values = env_file(ENV_EXAMPLE)
    assert set(values) == REQUIRED, (
        "uncommented entries in .env.example must be exactly the secrets and required settings"
    )
    assert all(value == "" for value in values.values()), "no working default for any secret"


def test_compose_refuses_to_start_until_each_secret_is_set(raw: dict[str, Any]) -> None:
    example = env_file(ENV_EXAMPLE)
    for secret in REQUIRED:
        with pytest.raises(MissingVariable, match=secret):
            interpolate(raw, {**example, **TEST_SECRETS, secret: ""})
    interpolate(raw, {**example, **TEST_SECRETS})  # and starts once all are set


def test_no_secret_has_a_working_fallback() -> None:
    text = COMPOSE.read_text()
    for match in _VARIABLE.finditer(text):
        name, op, arg = match.group("name") or "", match.group("op"), match.group("arg")
        if name in SECRETS:
            assert op == ":?", f"{match.group(0)} must fail when unset or empty"
        elif re.search(r"PASSWORD|SECRET|TOKEN", name):
            # Optional credentials (a provider nobody chose): empty, never a usable value.
            assert op in (":?", ":-") and not (op == ":-" and arg), match.group(0)


# -- the revisit services -------------------------------------------------------------------------


def test_compose_runs_the_six_services_the_console_and_the_infrastructure(
    compose: dict[str, Any],
) -> None:
    assert set(compose["services"]) == set(services()) | {"console"} | INFRA


def make_dry_run(target: str) -> str:
    proc = subprocess.run(
        ["make", "--no-print-directory", "-n", target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return proc.stdout


def test_services_run_the_image_make_images_builds(raw: dict[str, Any]) -> None:
    build = " ".join(make_dry_run("images").replace("\\\n", " ").split())
    assert "bash deploy/check_docker.sh" in build, "make images checks for an engine first"
    tags = re.findall(r"-t (\S+)", build)
    assert tags, build
    built = {interpolate(tag, {}) for tag in tags}  # ${REVISIT_IMAGE:-...} unset: the default
    for name in (*services(), "console", "migrate", "topics"):
        image = raw["services"][name]["image"]
        assert interpolate(image, {}) in built, f"{name} runs {image}, make images builds {built}"
        # Both honour REVISIT_IMAGE the same way.
        assert interpolate(image, {"REVISIT_IMAGE": "reg/x:1"}) == "reg/x:1"
    assert "reg/x:1" in {interpolate(tag, {"REVISIT_IMAGE": "reg/x:1"}) for tag in tags}


def test_chart_app_version_is_the_project_version_make_images_tags() -> None:
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((ROOT / "deploy" / "helm" / "revisit" / "Chart.yaml").read_text())
    assert chart["appVersion"] == version
    assert "pyproject.toml" in make_dry_run("images")  # the second tag is read from there


def test_each_service_command_port_and_health_check(compose: dict[str, Any]) -> None:
    from revisit.cli import build_parser
    from shared.config import DEFAULT_PORTS

    for name in services():
        spec = compose["services"][name]
        port = DEFAULT_PORTS[name]
        assert spec["command"] == ["service", name]
        assert build_parser().parse_args(spec["command"]).name == name  # the CLI accepts it
        assert spec["environment"]["REVISIT_PORT"] == str(port)
        published = {p.rsplit(":", 1)[-1] for p in spec["ports"]}
        assert str(port) in published, f"{name} publishes {spec['ports']}"
        check = " ".join(spec["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/readyz" in check, name
        assert spec["restart"] == "unless-stopped"
        assert spec["read_only"] is True and "/tmp" in spec["tmpfs"]
    assert "2575:2575" in compose["services"]["ingest"]["ports"]  # HL7 MLLP
    assert compose["services"]["ingest"]["environment"]["REVISIT_MLLP_PORT"] == "2575"


def test_the_console_runs_in_production_against_the_services(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from revisit.cli import build_parser
    from services.console.settings import ConsoleSettings
    from shared.config import DEFAULT_PORTS

    spec = compose["services"]["console"]
    assert spec["command"] == ["service", "console"]
    assert build_parser().parse_args(spec["command"]).name == "console"
    assert spec["ports"] == ["127.0.0.1:8008:8008"] and spec["read_only"] is True
    assert "http://127.0.0.1:8008/readyz" in " ".join(spec["healthcheck"]["test"])
    env = spec["environment"]
    unread = set(env) - set(env_vars(ConsoleSettings))
    assert not unread, f"the console is given {sorted(unread)}, which it never reads"
    with monkeypatch.context() as m:
        for var in env_vars(ConsoleSettings):
            m.delenv(var, raising=False)
        for var, value in env.items():
            m.setenv(var, value)
        settings = ConsoleSettings()  # production: refuses the dev sign-in, weak secrets, http
    assert settings.profile == "production" and not settings.dev_sign_in
    assert settings.listen_port == 8008 and settings.host == "0.0.0.0"
    for name in ("segmenter", "sequencer", "messenger", "escalation", "metrics"):
        url = urlparse(getattr(settings, f"{name}_url"))
        assert (url.hostname, url.port) == (name, DEFAULT_PORTS[name])
    # Every page the escalation service sends links to its case in the console.
    escalation = compose["services"]["escalation"]["environment"]
    assert escalation["REVISIT_ESCALATION_PUBLIC_URL"] == settings.public_url


def test_jobs_run_the_cli_commands_once(compose: dict[str, Any]) -> None:
    from revisit.cli import build_parser

    for job in ("migrate", "topics"):
        spec = compose["services"][job]
        assert spec["command"] == [job]
        build_parser().parse_args(spec["command"])
        assert spec["restart"] == "no"


def start_order(compose: dict[str, Any]) -> list[str]:
    """A start order honouring depends_on (fails on a cycle or an unknown dependency)."""
    graph = {name: set(spec.get("depends_on", {})) for name, spec in compose["services"].items()}
    order: list[str] = []
    while graph:
        ready = sorted(name for name, needs in graph.items() if needs <= set(order))
        assert ready, f"cycle or unknown dependency among {sorted(graph)}"
        order += ready
        for name in ready:
            del graph[name]
    return order


def test_dependency_order_migrates_and_creates_topics_before_any_service(
    compose: dict[str, Any],
) -> None:
    all_services = compose["services"]
    order = start_order(compose)
    for name in services():
        needs = all_services[name]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully"
        assert needs["topics"]["condition"] == "service_completed_successfully"
        assert needs["postgres"]["condition"] == "service_healthy"
        assert needs["kafka"]["condition"] == "service_healthy"
        assert order.index("migrate") < order.index(name) and order.index("topics") < order.index(
            name
        )
    assert all_services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert all_services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name, spec in all_services.items():
        for target, how in spec.get("depends_on", {}).items():
            if how["condition"] == "service_healthy":
                check = all_services[target].get("healthcheck", {})
                assert check.get("test") and not check.get("disable"), f"{name} waits on {target}"
            if how["condition"] == "service_completed_successfully":
                assert all_services[target]["restart"] == "no", f"{target} is a one-shot job"


def test_every_setting_a_service_reads_is_set_for_every_service(compose: dict[str, Any]) -> None:
    from shared.config import DatabaseSettings, KafkaSettings

    for name in services():
        env = compose["services"][name]["environment"]
        check_service_env(name, env)
        assert env["KAFKA_ENABLE_IDEMPOTENCE"] == "true"
        assert env["REVISIT_PROFILE"] == "production"
        assert env["REVISIT_CLOCK"] == "system"
    # The jobs get what their command reads and nothing else (no staff-token secret).
    migrate = compose["services"]["migrate"]["environment"]
    assert "DATABASE_URL" in migrate and set(migrate) <= set(env_vars(DatabaseSettings))
    topics = compose["services"]["topics"]["environment"]
    assert set(topics) == set(env_vars(KafkaSettings))


def test_compose_environment_builds_valid_settings_pointing_at_compose_hosts(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.config import DEFAULT_PORTS

    hosts = set(compose["services"])
    for name in services():
        env = compose["services"][name]["environment"]
        # Production profile: refuses weak secrets; service settings: refuse bad values.
        settings, *_own = build_settings(name, env, monkeypatch)
        assert settings.port_for(name) == DEFAULT_PORTS[name]
        assert settings.revisit_host == "0.0.0.0"
        assert urlparse(settings.db.database_url).hostname in hosts
        for server in settings.kafka.kafka_bootstrap_servers.split(","):
            assert server.split(":")[0] in hosts
        assert urlparse(settings.telemetry.otel_exporter_otlp_endpoint).hostname in hosts


# -- Kafka, PostgreSQL ----------------------------------------------------------------------------


def test_kafka_is_a_single_kraft_node_the_services_can_reach(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    env = kafka["environment"]
    assert kafka["image"].startswith("apache/kafka:")
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert not any("ZOOKEEPER" in key for key in env)
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # the topics job creates them
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16  # a UUID, as KRaft wants
    advertised = {urlparse(u).netloc for u in env["KAFKA_ADVERTISED_LISTENERS"].split(",")}
    bootstrap = compose["services"]["ingest"]["environment"]["KAFKA_BOOTSTRAP_SERVERS"]
    assert set(bootstrap.split(",")) <= advertised
    assert "kafka-broker-api-versions.sh" in " ".join(kafka["healthcheck"]["test"])


def test_postgres_16_matches_the_database_url(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert re.fullmatch(r"postgres:16(\.\d+)*(-\w+)?", postgres["image"])
    assert "pg_isready" in postgres["healthcheck"]["test"]
    url = urlparse(compose["services"]["ingest"]["environment"]["DATABASE_URL"])
    env = postgres["environment"]
    assert url.scheme == "postgresql+asyncpg"
    assert (url.username, url.password, url.path.lstrip("/")) == (
        env["POSTGRES_USER"],
        env["POSTGRES_PASSWORD"],
        env["POSTGRES_DB"],
    )


# -- observability --------------------------------------------------------------------------------


def mounts(spec: dict[str, Any]) -> dict[str, str]:
    """container path -> host path (relative to the repository), for bind mounts."""
    found = {}
    for volume in spec.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            assert (ROOT / source).exists(), f"{source} is mounted but missing"
            found[target] = source
    return found


def test_prometheus_scrapes_every_service_with_the_metrics_token(compose: dict[str, Any]) -> None:
    from shared.config import DEFAULT_PORTS

    prometheus = compose["services"]["prometheus"]
    config_path = next(a.split("=", 1)[1] for a in prometheus["command"] if "--config.file" in a)
    config = yaml.safe_load((ROOT / mounts(prometheus)[config_path]).read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "revisit"]
    targets = {t for group in job["static_configs"] for t in group["targets"]}
    assert targets == {f"{name}:{port}" for name, port in DEFAULT_PORTS.items()}
    assert job["metrics_path"] == "/metrics"
    (secret,) = prometheus["secrets"]
    assert job["authorization"]["credentials_file"] == f"/run/secrets/{secret['target']}"
    assert compose["secrets"][secret["source"]]["environment"] == "REVISIT_METRICS_TOKEN"


def test_grafana_provisions_prometheus_and_the_dashboards_folder(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    bound = mounts(grafana)
    provisioning = ROOT / bound["/etc/grafana/provisioning"]
    sources = {
        d["type"]: d
        for f in (provisioning / "datasources").glob("*.yaml")
        for d in yaml.safe_load(f.read_text())["datasources"]
    }
    prometheus = urlparse(sources["prometheus"]["url"])
    assert prometheus.hostname == "prometheus" and prometheus.port == 9090
    assert sources["prometheus"]["uid"] == "prometheus" and sources["prometheus"]["isDefault"]
    assert urlparse(sources["jaeger"]["url"]).hostname == "jaeger"
    folders = {
        provider["options"]["path"]
        for f in (provisioning / "dashboards").glob("*.yaml")
        for provider in yaml.safe_load(f.read_text())["providers"]
    }
    assert "./deploy/grafana/dashboards" in {bound.get(folder) for folder in folders}
    assert "${GRAFANA_ADMIN_PASSWORD:?" in COMPOSE.read_text()


def test_traces_go_from_the_services_through_the_collector_to_jaeger(
    compose: dict[str, Any],
) -> None:
    collector = compose["services"]["otel-collector"]
    config = yaml.safe_load((ROOT / mounts(collector)["/etc/otelcol/config.yaml"]).read_text())
    endpoint = urlparse(compose["services"]["ingest"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert endpoint.hostname == "otel-collector"
    http_receiver = config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert http_receiver.endswith(f":{endpoint.port}")  # the services export OTLP/HTTP
    pipeline = config["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"]
    (exporter,) = pipeline["exporters"]
    assert config["exporters"][exporter]["endpoint"].split(":")[0] in compose["services"]
    assert config["exporters"][exporter]["endpoint"].startswith("jaeger:")


def exported_metrics() -> dict[str, set[str]]:
    """Series name -> label names: every process's pipeline metrics, the escalation fallback's
    and the metrics service's."""
    from prometheus_client.metrics import MetricWrapperBase

    from services.escalation import fallback
    from services.metrics.exposition import SERIES
    from shared import pipeline_metrics

    series: dict[str, set[str]] = {}
    collectors = [*vars(pipeline_metrics).values(), *vars(fallback).values()]
    for collector in collectors:
        if not isinstance(collector, MetricWrapperBase):
            continue
        labels = set(collector._labelnames)  # no public accessor for a labelled metric's labels
        for metric in collector.describe():
            if metric.type == "counter":
                series[f"{metric.name}_total"] = labels
            elif metric.type == "histogram":
                for suffix in ("_bucket", "_count", "_sum"):
                    series[metric.name + suffix] = labels | (
                        {"le"} if suffix == "_bucket" else set()
                    )
            else:
                series[metric.name] = labels
    series.update({name: set(labels) for name, labels in SERIES.items()})
    return series


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_pipeline_health_dashboard_queries_only_metrics_that_exist() -> None:
    series = exported_metrics()
    assert "revisit_consumer_batch_seconds_bucket" in series  # the introspection works
    used: set[str] = set()
    for expr in dashboard_queries():
        for name in re.findall(r"\b(revisit_[a-z_]+)", expr):
            assert name in series, f"{name} in {expr!r} is not exported"
            used.add(name)
            for grouping in re.findall(r"\bby \(([^)]*)\)", expr):
                labels = {label.strip() for label in grouping.split(",")}
                assert labels <= series[name], f"{expr!r} groups by labels {name} lacks"
    assert {
        "revisit_events_consumed_total",
        "revisit_events_dead_lettered_total",
        "revisit_events_published_total",
        "revisit_timers_fired_total",
        "revisit_consumer_batch_seconds_bucket",
    } <= used
    assert any(re.search(r'\bup\{job="revisit"\}', expr) for expr in dashboard_queries())


def test_pipeline_health_dashboard_is_well_formed() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            for variable in re.findall(r"\$(\w+)", target["expr"]):
                assert variable.startswith("__") or variable in variables, target["expr"]


# -- the image ------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    ]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_dockerfile_builds_a_slim_non_root_image_from_the_hashed_lock() -> None:
    from shared.config import DEFAULT_PORTS

    steps = dockerfile_instructions()
    final = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    arguments = dict(a.split("=", 1) for op, a in steps if op == "ARG" and "=" in a)
    assert arguments["PYTHON_IMAGE"] == "python:3.11-slim"
    runs = " ".join(arg for op, arg in steps if op == "RUN")
    assert "--require-hashes -r requirements/runtime.txt" in runs
    assert "--no-deps" in runs
    final_steps = dict(steps[final:])
    assert final_steps["USER"].split(":")[0] == "10001"
    assert json.loads(final_steps["ENTRYPOINT"]) == ["revisit"]
    assert json.loads(final_steps["CMD"]) == ["service", "ingest"]
    assert "/healthz" in final_steps["HEALTHCHECK"]
    exposed = {int(p) for p in final_steps["EXPOSE"].split()}
    assert exposed >= set(DEFAULT_PORTS.values()) | {2575}
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'revisit = "revisit.cli:main"' in pyproject  # the ENTRYPOINT exists
    chart_values = yaml.safe_load((ROOT / "deploy/helm/revisit/values.yaml").read_text())
    assert chart_values["podSecurityContext"]["runAsUser"] == 10001


def test_build_context_keeps_secrets_out_and_what_the_image_copies_in() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".env", ".venv", ".revisit", ".git"} <= ignored
    for op, argument in dockerfile_instructions():
        if op == "COPY" and not argument.startswith("--from"):
            *sources, _ = argument.split()
            for source in sources:
                assert (ROOT / source).exists(), source
                assert source not in ignored and source.split("/")[0] not in ignored, source


# -- make images / make compose-up without a Docker engine ----------------------------------------


def docker_engine_reachable() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        probe = subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return False
    return probe.returncode == 0


@pytest.mark.parametrize("target", ["images", "compose-up", "compose-down"])
def test_make_target_says_clearly_that_the_docker_engine_is_unreachable(target: str) -> None:
    if docker_engine_reachable():
        pytest.skip("a Docker engine answers here, so the target would really build or start")
    proc = subprocess.run(
        ["make", "--no-print-directory", target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    first_line = proc.stderr.strip().splitlines()[0]
    assert first_line.startswith(("Docker engine not reachable", "Docker not found")), proc.stderr
    assert NO_DOCKER_HINT in first_line
    assert "docker build" not in proc.stdout and "docker compose" not in proc.stdout


def test_make_images_says_so_when_there_is_no_docker_command(tmp_path: Path) -> None:
    """Runs whether or not an engine exists: PATH holds make and bash, not docker."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("make", "bash", "sed", "timeout", "dirname"):
        if found := shutil.which(tool):
            (bin_dir / tool).symlink_to(found)
    proc = subprocess.run(
        ["make", "--no-print-directory", "images"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": str(bin_dir), "HOME": str(tmp_path)},
    )
    assert proc.returncode != 0
    assert proc.stderr.startswith("Docker not found: there is no `docker` command."), proc.stderr
    assert NO_DOCKER_HINT in proc.stderr


ALERTS = ROOT / "deploy" / "compose" / "alerts.yml"


def test_prometheus_loads_the_alert_rules_and_they_watch_metrics_that_exist(
    compose: dict[str, Any],
) -> None:
    prometheus = compose["services"]["prometheus"]
    config_path = next(a.split("=", 1)[1] for a in prometheus["command"] if "--config.file" in a)
    config = yaml.safe_load((ROOT / mounts(prometheus)[config_path]).read_text())
    [rule_file] = config["rule_files"]
    assert ROOT / mounts(prometheus)[rule_file] == ALERTS
    rules = [r for group in yaml.safe_load(ALERTS.read_text())["groups"] for r in group["rules"]]
    assert {"RevisitDeadLettersGrowing", "RevisitBackgroundLoopDown"} <= {r["alert"] for r in rules}
    series = exported_metrics()
    for rule in rules:
        names = re.findall(r"\b(revisit_[a-z_]+)", rule["expr"])
        assert names, rule["alert"]
        for name in names:
            assert name in series, f"{rule['alert']}: {name} is not exported"
        for grouping in re.findall(r"\bby \(([^)]*)\)", rule["expr"]):
            labels = {label.strip() for label in grouping.split(",")}
            assert all(labels <= series[n] for n in names), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}
