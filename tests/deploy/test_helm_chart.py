"""The Helm chart (deploy/helm/revisit): values schema, `helm lint --strict`, rendered manifests.

No helm binary and no cluster exist here. helm-sdkpy (requirements/helm.txt) is Helm 4 as a Go
library; it lints a chart, and its install action renders the chart as Helm would. This file
runs that install against a small fake Kubernetes API (discovery only; objects are accepted and
stored) with Helm's in-memory release storage, then reads the release's manifest and hooks: what
`helm template` prints, with the chart's values schema enforced. Helm runs in a child process
(this file run as a script) so its Go runtime never shares the test process.
"""

from __future__ import annotations

import copy
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.service_env import build_settings, check_service_env, env_vars

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "revisit"
PRODUCTION = CHART / "examples" / "values-production.yaml"
RELEASE, NAMESPACE = "rv", "revisit"
# support.Severity in Helm's lint package: 1 info, 2 warning, 3 error. `--strict` fails on >= 2.
LINT_WARNING = 2
IMAGE_UID = 10001  # the Dockerfile's non-root user


# -- values ---------------------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def coalesce(base: Any, override: Any) -> Any:
    """Helm's merge of a values file over the chart's defaults: maps merge, the rest replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = copy.deepcopy(base)
        for key, value in override.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = coalesce(merged.get(key), value)
        return merged
    return copy.deepcopy(override)


def default_values() -> dict[str, Any]:
    return load_yaml(CHART / "values.yaml")


IDENTITY = {"config": {"oidc": {"issuer": "https://login.clinic.example/realms/staff"}}}


def production_values() -> dict[str, Any]:
    return coalesce(default_values(), load_yaml(PRODUCTION))


def schema_errors(values: dict[str, Any]) -> list[str]:
    import jsonschema

    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(values)
    ]


def test_default_values_satisfy_the_schema() -> None:
    assert schema_errors(default_values()) == []


def test_production_example_satisfies_the_schema() -> None:
    assert schema_errors(production_values()) == []


@pytest.mark.parametrize(
    ("path", "value", "complaint"),
    [
        (("securityContext", "readOnlyRootFilesystem"), False, "True was expected"),
        (("podSecurityContext", "runAsNonRoot"), False, "True was expected"),
        (("config", "profile"), "staging", "is not one of"),
        (("kafka", "bootstrapServers"), "", "does not match"),
        (("services", "segmenter", "port"), 70000, "is greater than the maximum"),
        # A secret never goes in values: the schema has no place for one.
        (("database", "url"), "postgresql+asyncpg://u:p@h/db", "Additional properties"),
        # the escalation fallback: a known kind, and a webhook has somewhere to go
        (("escalationFallback", "kind"), "sandbox", "is not one of"),
        (("escalationFallback", "kind"), "webhook", "should be non-empty"),
    ],
)
def test_schema_refuses_unsafe_or_mistyped_values(
    path: tuple[str, ...], value: Any, complaint: str
) -> None:
    values = default_values()
    target = values
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    errors = schema_errors(values)
    assert any(complaint in e for e in errors), errors


def test_values_ports_are_the_services_default_ports() -> None:
    from shared.config import DEFAULT_PORTS, SERVICE_NAMES

    services = default_values()["services"]
    assert set(services) == set(SERVICE_NAMES)
    assert {name: spec["port"] for name, spec in services.items()} == DEFAULT_PORTS


def test_production_example_never_scales_a_consumer_past_the_partitions() -> None:
    values = production_values()
    partitions = values["kafka"]["partitions"]
    for name, spec in values["services"].items():
        if name == "ingest":  # consumes no topic: it scales on HTTP
            continue
        most = (
            spec["autoscaling"]["maxReplicas"]
            if spec["autoscaling"]["enabled"]
            else spec["replicas"]
        )
        assert most <= partitions, f"{name}: {most} replicas > {partitions} partitions"


# -- Helm, in a child process ---------------------------------------------------------------------


def run_helm(chart_dir: Path, tmp: Path) -> dict[str, Any]:
    """Lint and render `chart_dir` (its values.yaml is the values) with helm-sdkpy."""
    env = {
        **os.environ,
        "HELM_DRIVER": "memory",  # release records stay in memory, not in cluster Secrets
        "HELM_CACHE_HOME": str(tmp / "helm-cache"),
        "HELM_CONFIG_HOME": str(tmp / "helm-config"),
        "HELM_DATA_HOME": str(tmp / "helm-data"),
        "NO_PROXY": "127.0.0.1,localhost",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run(
        [sys.executable, __file__, str(chart_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        pytest.fail(
            f"helm child failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1])
    if result["status"] == "unavailable":
        if platform.system() == "Linux" and platform.machine() in ("x86_64", "AMD64"):
            pytest.fail(
                f"helm-sdkpy is unusable here: {result['reason']}. Run `make install`: it installs"
                " requirements/helm.txt (and cffi from the lock)."
            )
        pytest.skip(f"helm-sdkpy ships a linux-amd64 library only: {result['reason']}")
    return result


def chart_copy_with_values(tmp: Path, values: dict[str, Any]) -> Path:
    target = tmp / "revisit"
    shutil.copytree(CHART, target)
    (target / "values.yaml").write_text(yaml.safe_dump(values, sort_keys=False))
    return target


@pytest.fixture(scope="module")
def default_render(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The defaults plus the one thing production cannot default: who signs staff in."""
    tmp = tmp_path_factory.mktemp("helm-default")
    return run_helm(chart_copy_with_values(tmp, coalesce(default_values(), IDENTITY)), tmp)


@pytest.fixture(scope="module")
def production_render(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("helm-production")
    return run_helm(chart_copy_with_values(tmp, production_values()), tmp)


def lint_problems(result: dict[str, Any]) -> list[dict[str, Any]]:
    # helm-sdkpy serialises each message's Go error as {}: the path and severity are what survive.
    return [m for m in result["lint"]["Messages"] if m["Severity"] >= LINT_WARNING]


def test_chart_lints_strictly_with_default_values(default_render: dict[str, Any]) -> None:
    assert default_render["lint"]["TotalChartsLinted"] == 1
    assert lint_problems(default_render) == []
    assert not default_render["lint"]["Errors"]


def test_chart_lints_strictly_with_the_production_example(
    production_render: dict[str, Any],
) -> None:
    assert lint_problems(production_render) == []
    assert not production_render["lint"]["Errors"]


def test_lint_catches_a_broken_chart(tmp_path: Path) -> None:
    """The linter is live: a template error and schema-violating values are reported."""
    values = default_values()
    values["kafka"]["partitions"] = "six"
    broken = chart_copy_with_values(tmp_path, values)
    (broken / "templates" / "broken.yaml").write_text("{{ .Values.nothing.here }}\n")
    result = run_helm(broken, tmp_path)
    assert {m["Path"] for m in lint_problems(result)} >= {"values.yaml", "templates/"}
    assert result["render_error"], "installing a chart whose values break the schema must fail"


# -- rendered manifests ---------------------------------------------------------------------------


def objects(render: dict[str, Any]) -> list[dict[str, Any]]:
    assert not render.get("render_error"), render.get("render_error")
    docs = [d for d in yaml.safe_load_all(render["manifest"]) if d]
    for hook in render["hooks"]:
        docs += [d for d in yaml.safe_load_all(hook["manifest"]) if d]
    return docs


def by_kind(render: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """component label -> object, for one kind."""
    found: dict[str, dict[str, Any]] = {}
    for obj in objects(render):
        if obj["kind"] == kind:
            component = obj["metadata"]["labels"].get("app.kubernetes.io/component", "")
            assert component not in found, f"two {kind}s for {component!r}"
            found[component] = obj
    return found


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def assert_hardened_pod(pod_spec: dict[str, Any], where: str) -> None:
    pod_sc = pod_spec["securityContext"]
    assert pod_sc["runAsNonRoot"] is True, where
    assert pod_sc["runAsUser"] == IMAGE_UID, where
    assert pod_spec["automountServiceAccountToken"] is False, where
    tmp_volumes = {v["name"] for v in pod_spec["volumes"] if "emptyDir" in v}
    for container in pod_spec["containers"]:
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True, where
        assert sc["allowPrivilegeEscalation"] is False, where
        assert sc["capabilities"]["drop"] == ["ALL"], where
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts.get("/tmp") in tmp_volumes, f"{where}: /tmp must be a writable emptyDir"
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind]), f"{where}: {kind}"


def test_every_service_is_a_hardened_deployment_with_probes(default_render: dict[str, Any]) -> None:
    from revisit.cli import build_parser
    from shared.config import DEFAULT_PORTS, SERVICE_NAMES

    deployments = by_kind(default_render, "Deployment")
    assert set(deployments) == set(SERVICE_NAMES)
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]
        assert (
            deployment["spec"]["selector"]["matchLabels"].items()
            <= pod["metadata"]["labels"].items()
        )
        assert_hardened_pod(pod["spec"], name)
        (container,) = pod["spec"]["containers"]
        assert container["image"] == "revisit:0.1.0"  # repository : appVersion
        assert container["args"] == ["service", name]
        assert build_parser().parse_args(container["args"]).name == name  # the CLI accepts it
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["http"] == DEFAULT_PORTS[name]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"


def plain_env(container: dict[str, Any]) -> dict[str, str | None]:
    """Variable -> value; None for a value taken from a Secret."""
    return {var: item.get("value") for var, item in env_of(container).items()}


def test_every_setting_a_service_reads_is_set_in_its_pod(default_render: dict[str, Any]) -> None:
    from shared.config import DEFAULT_PORTS

    for name, deployment in by_kind(default_render, "Deployment").items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        check_service_env(name, plain_env(container))
        env = env_of(container)
        assert env["REVISIT_PORT"]["value"] == str(DEFAULT_PORTS[name])
        assert env["REVISIT_PROFILE"]["value"] == "production"
        assert env["KAFKA_ENABLE_IDEMPOTENCE"]["value"] == "true"
        for secret in ("DATABASE_URL", "REVISIT_PSEUDONYM_KEY", "REVISIT_METRICS_TOKEN"):
            ref = env[secret]["valueFrom"]["secretKeyRef"]
            assert (ref["name"], ref["key"]) == ("revisit", secret), name
            assert "value" not in env[secret]
        # staff tokens come from the identity provider: no HS256 secret in production
        assert env["REVISIT_JWT_SECRET"]["value"] == "", name
        assert env["REVISIT_OIDC_ISSUER"]["value"].startswith("https://"), name
        if name == "escalation":  # a clinic not yet set up pages this, never only a table
            assert env["REVISIT_ESCALATION_FALLBACK_NOTIFIER_KIND"]["value"] == "pagerduty"
            ref = env["REVISIT_ESCALATION_FALLBACK_NOTIFIER_SECRET"]["valueFrom"]["secretKeyRef"]
            assert ref["key"] == "REVISIT_ESCALATION_FALLBACK_NOTIFIER_SECRET"


def test_rendered_environment_builds_valid_settings(
    default_render: dict[str, Any],
    production_render: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The values the chart writes parse as the services' settings (types, ranges, secrets)."""
    from shared.config import DEFAULT_PORTS

    from_secret = {"DATABASE_URL": "postgresql+asyncpg://revisit:pw@postgres:5432/revisit"}
    for render in (default_render, production_render):
        for name, deployment in by_kind(render, "Deployment").items():
            if name == "console":  # no database or broker: its own test below
                continue
            (container,) = deployment["spec"]["template"]["spec"]["containers"]
            env = {
                var: value if value is not None else from_secret.get(var, "s" * 40)
                for var, value in plain_env(container).items()
            }
            settings, *_own = build_settings(name, env, monkeypatch)
            assert settings.port_for(name) == DEFAULT_PORTS[name]
            assert settings.revisit_profile == "production"
            assert settings.kafka.kafka_enable_idempotence is True


def test_services_hpa_pdb_and_network_policies_select_the_pods(
    default_render: dict[str, Any],
) -> None:
    deployments = by_kind(default_render, "Deployment")
    services = by_kind(default_render, "Service")
    budgets = by_kind(default_render, "PodDisruptionBudget")
    policies = by_kind(default_render, "NetworkPolicy")
    autoscalers = by_kind(default_render, "HorizontalPodAutoscaler")
    assert set(services) == set(budgets) == set(policies) == set(deployments)
    assert set(autoscalers) == {"ingest"}  # the default: only ingest autoscales
    for name, deployment in deployments.items():
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert services[name]["spec"]["selector"].items() <= pod_labels.items()
        assert services[name]["spec"]["ports"][0]["targetPort"] == "http"
        assert budgets[name]["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        assert policies[name]["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
        # An autoscaled Deployment leaves its replica count to the HPA.
        assert ("replicas" in deployment["spec"]) == (name not in autoscalers)
    target = autoscalers["ingest"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == (
        "Deployment",
        deployments["ingest"]["metadata"]["name"],
    )
    assert {p["name"]: p["port"] for p in services["ingest"]["spec"]["ports"]} == {
        "http": 8001,
        "mllp": 2575,
    }


def test_migrations_and_topics_run_as_pre_install_and_pre_upgrade_hooks(
    default_render: dict[str, Any],
) -> None:
    from shared.config import DatabaseSettings, KafkaSettings

    jobs = by_kind(default_render, "Job")
    assert set(jobs) == {"migrations", "topics"}
    hook_names = {h["name"] for h in default_render["hooks"]}
    assert {job["metadata"]["name"] for job in jobs.values()} == hook_names
    for component, job in jobs.items():
        annotations = job["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade", component
        assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
        assert_hardened_pod(job["spec"]["template"]["spec"], component)
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    # Each job gets what its command reads and nothing else (no staff-token secret).
    (migrate,) = jobs["migrations"]["spec"]["template"]["spec"]["containers"]
    assert migrate["args"] == ["migrate"]
    assert "secretKeyRef" in env_of(migrate)["DATABASE_URL"]["valueFrom"]
    assert set(env_of(migrate)) <= set(env_vars(DatabaseSettings))
    (topics,) = jobs["topics"]["spec"]["template"]["spec"]["containers"]
    assert topics["args"] == ["topics"]
    assert set(env_of(topics)) == set(env_vars(KafkaSettings))


def test_service_monitor_is_off_by_default_and_scrapes_with_the_token_when_on(
    default_render: dict[str, Any], production_render: dict[str, Any]
) -> None:
    assert not [o for o in objects(default_render) if o["kind"] == "ServiceMonitor"]
    (monitor,) = [o for o in objects(production_render) if o["kind"] == "ServiceMonitor"]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    assert endpoint["authorization"]["credentials"]["key"] == "REVISIT_METRICS_TOKEN"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    service_labels = next(iter(by_kind(production_render, "Service").values()))["metadata"][
        "labels"
    ]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service_labels.items()


def test_production_example_renders_its_image_scaling_and_egress(
    production_render: dict[str, Any],
) -> None:
    deployments = by_kind(production_render, "Deployment")
    for name, deployment in deployments.items():  # extraEnv included: every name is read
        if name == "console":  # no database or broker: checked on its own
            continue
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        check_service_env(name, plain_env(container))
    (container,) = deployments["segmenter"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/revisit/revisit:0.1.0"
    env = env_of(container)
    assert env["KAFKA_PARTITIONS"]["value"] == "12"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"].startswith("http://otel-collector")
    autoscalers = by_kind(production_render, "HorizontalPodAutoscaler")
    assert set(autoscalers) == {"ingest", "segmenter", "sequencer"}
    assert autoscalers["segmenter"]["spec"]["maxReplicas"] == 12
    policy = by_kind(production_render, "NetworkPolicy")["ingest"]["spec"]
    assert "Egress" in policy["policyTypes"]
    mllp_rules = [r for r in policy["ingress"] if {"port": "mllp", "protocol": "TCP"} in r["ports"]]
    assert mllp_rules and mllp_rules[0]["from"] == [{"ipBlock": {"cidr": "10.40.0.0/24"}}]


# -- the child process: helm-sdkpy against a fake Kubernetes API ----------------------------------

_VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]
_RESOURCES = {
    ("", "v1"): [
        ("secrets", "Secret"),
        ("services", "Service"),
        ("serviceaccounts", "ServiceAccount"),
        ("configmaps", "ConfigMap"),
        ("pods", "Pod"),
    ],
    ("apps", "v1"): [("deployments", "Deployment")],
    ("batch", "v1"): [("jobs", "Job")],
    ("autoscaling", "v2"): [("horizontalpodautoscalers", "HorizontalPodAutoscaler")],
    ("policy", "v1"): [("poddisruptionbudgets", "PodDisruptionBudget")],
    ("networking.k8s.io", "v1"): [("networkpolicies", "NetworkPolicy")],
    ("monitoring.coreos.com", "v1"): [("servicemonitors", "ServiceMonitor")],
}


def _fake_kube_api() -> Any:
    """Just enough of the Kubernetes API for Helm to install: discovery, create, get, delete.

    Created Jobs report success at once, so hooks finish. OpenAPI v2 is an empty document,
    which makes client-side validation skip (it validates only kinds the document describes).
    """
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlparse

    store: dict[str, dict[str, Any]] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # one small reply per request: no 40 ms delayed-ACK stalls

        def log_message(self, *args: Any) -> None:
            pass

        def reply(self, code: int, body: Any, content_type: str = "application/json") -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def not_found(self) -> None:
            self.reply(
                404,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "reason": "NotFound",
                    "code": 404,
                    "message": "not found",
                },
            )

        def body(self) -> dict[str, Any]:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            return json.loads(raw) if raw else {}

        def do_GET(self) -> None:
            url = urlparse(self.path)
            path, query = url.path, parse_qs(url.query)
            if path == "/version":
                self.reply(200, {"major": "1", "minor": "30", "gitVersion": "v1.30.0"})
            elif path == "/api":
                self.reply(200, {"kind": "APIVersions", "versions": ["v1"]})
            elif path == "/apis":
                groups = [
                    {
                        "name": g,
                        "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                        "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v},
                    }
                    for g, v in _RESOURCES
                    if g
                ]
                self.reply(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
            elif m := re.fullmatch(r"/api/v1|/apis/([^/]+)/([^/]+)", path):
                group, version = m.group(1) or "", m.group(2) or "v1"
                self.reply(
                    200,
                    {
                        "kind": "APIResourceList",
                        "apiVersion": "v1",
                        "groupVersion": f"{group}/{version}".lstrip("/"),
                        "resources": [
                            {
                                "name": plural,
                                "singularName": kind.lower(),
                                "namespaced": True,
                                "kind": kind,
                                "verbs": _VERBS,
                            }
                            for plural, kind in _RESOURCES[(group, version)]
                        ],
                    },
                )
            elif path == "/openapi/v2":
                self.reply(200, b"", "application/octet-stream")
            elif path == "/openapi/v3":
                self.reply(200, {"paths": {}})
            elif path in store:
                self.reply(200, store[path])
            elif "watch" not in query and re.fullmatch(
                r"/(api/v1|apis/[^/]+/[^/]+)/namespaces/[^/]+/[^/]+", path
            ):
                items = [o for key, o in store.items() if key.rsplit("/", 1)[0] == path]
                self.reply(
                    200,
                    {
                        "kind": "List",
                        "apiVersion": "v1",
                        "metadata": {"resourceVersion": "1"},
                        "items": items,
                    },
                )
            else:
                self.not_found()

        def do_POST(self) -> None:
            obj = self.body()
            meta = obj.setdefault("metadata", {})
            meta.update(resourceVersion="1", uid=f"uid-{meta.get('name')}")
            if obj.get("kind") == "Job":
                obj["status"] = {
                    "succeeded": 1,
                    "conditions": [{"type": "Complete", "status": "True"}],
                }
            store[f"{urlparse(self.path).path}/{meta.get('name')}"] = obj
            self.reply(201, obj)

        def do_PUT(self) -> None:
            obj = self.body()
            store[urlparse(self.path).path] = obj
            self.reply(200, obj)

        def do_PATCH(self) -> None:
            self.body()
            path = urlparse(self.path).path
            if path in store:
                self.reply(200, store[path])
            else:
                self.not_found()

        def do_DELETE(self) -> None:
            self.body()
            path = urlparse(self.path).path
            if store.pop(path, None) is None:
                self.not_found()
            else:
                self.reply(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            # Helm drops its watch connections once a hook Job reports success: not an error.
            if not isinstance(sys.exc_info()[1], ConnectionError):
                super().handle_error(request, client_address)

    return Server(("127.0.0.1", 0), Handler)


def _child(chart_dir: str) -> dict[str, Any]:
    import asyncio
    import threading

    try:
        import helm_sdkpy

        config = helm_sdkpy.Configuration(namespace=NAMESPACE)
    except Exception as exc:  # ImportError, HelmLibraryNotFound (wrong platform), cffi missing
        return {"status": "unavailable", "reason": f"{type(exc).__name__}: {exc}"}
    lint = asyncio.run(helm_sdkpy.Lint(config).run(chart_dir))
    server = _fake_kube_api()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kubeconfig = yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "fake",
            "clusters": [
                {
                    "name": "fake",
                    "cluster": {"server": f"http://127.0.0.1:{server.server_address[1]}"},
                }
            ],
            "contexts": [
                {
                    "name": "fake",
                    "context": {"cluster": "fake", "user": "fake", "namespace": NAMESPACE},
                }
            ],
            "users": [{"name": "fake", "user": {"token": "fake"}}],
        }
    )
    result: dict[str, Any] = {"status": "ok", "lint": lint, "version": helm_sdkpy.__version__}
    try:
        for attempt in range(2):
            try:
                release = asyncio.run(
                    helm_sdkpy.Install(
                        helm_sdkpy.Configuration(namespace=NAMESPACE, kubeconfig=kubeconfig)
                    ).run(RELEASE, chart_dir, wait=False, timeout=40)
                )
                break
            except helm_sdkpy.HelmError as exc:
                # Rarely Helm loses track of a hook Job on the fake API server and waits out its
                # deadline (the install normally takes about a second). Only that is tried again:
                # any other error, or a second deadline, is the result.
                if "context deadline exceeded" not in str(exc) or attempt:
                    raise
    except helm_sdkpy.HelmError as exc:
        result.update(render_error=str(exc), manifest="", hooks=[])
    else:
        hooks = [
            {k: h.get(k) for k in ("name", "kind", "events", "manifest")} for h in release["hooks"]
        ]
        result.update(render_error=None, manifest=release["manifest"], hooks=hooks)
    finally:
        server.shutdown()
    return result


if __name__ == "__main__":
    print(json.dumps(_child(sys.argv[1])), flush=True)


def test_the_console_is_a_hardened_deployment_configured_for_production(
    default_render: dict[str, Any],
    production_render: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.console.settings import ConsoleSettings

    assert "console" not in by_kind(default_render, "Deployment")  # off until configured
    deployment = by_kind(production_render, "Deployment")["console"]
    pod = deployment["spec"]["template"]
    assert_hardened_pod(pod["spec"], "console")
    (container,) = pod["spec"]["containers"]
    assert container["args"] == ["service", "console"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    env = plain_env(container)
    assert env["REVISIT_CONSOLE_SECRET"] is None  # from the Secret, never a value
    assert "REVISIT_JWT_SECRET" not in env  # it forwards access tokens; it signs none
    unread = set(env) - set(env_vars(ConsoleSettings))
    assert not unread, f"the console is given {sorted(unread)}, which it never reads"
    with monkeypatch.context() as m:
        for var in env_vars(ConsoleSettings):
            m.delenv(var, raising=False)
        for var, value in env.items():
            m.setenv(var, value if value is not None else "s" * 40)
        settings = ConsoleSettings()  # production: OIDC, https, a real secret, no dev sign-in
    services = by_kind(production_render, "Service")
    for name in ("segmenter", "sequencer", "messenger", "escalation", "metrics"):
        service = services[name]
        assert getattr(settings, f"{name}_url") == (
            f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"
        )
    (escalation,) = by_kind(production_render, "Deployment")["escalation"]["spec"]["template"][
        "spec"
    ]["containers"]
    assert plain_env(escalation)["REVISIT_ESCALATION_PUBLIC_URL"] == settings.public_url
    labels = pod["metadata"]["labels"]
    for kind in ("Service", "PodDisruptionBudget", "NetworkPolicy"):
        found = by_kind(production_render, kind)["console"]
        selector = found["spec"].get("selector") or found["spec"]["podSelector"]
        selector = selector.get("matchLabels", selector)
        assert selector.items() <= labels.items(), kind


def test_an_enabled_console_without_its_identity_provider_does_not_render(
    tmp_path: Path,
) -> None:
    values = default_values()
    values["console"]["enabled"] = True
    values["console"]["publicUrl"] = "https://console.example"
    result = run_helm(chart_copy_with_values(tmp_path, values), tmp_path)
    assert "console.oidc.issuer is required" in str(result["render_error"])
