"""The files in deploy/ against real tools and schemas: kustomize builds both overlays, every
object validates against the Kubernetes schemas (strict) or KEDA's CRD, the manifests agree with
the code (consumer groups, topics, partition count, graceful timeout), promtool accepts and
unit-tests the alert rules, and the dashboard and alerts only use metrics the code exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from caf_runtime.topology import KEYED_PARTITIONS
from cafctl.status import GROUPS
from schemas import topics

pytestmark = pytest.mark.integration

KUBERNETES_VERSION = "1.33.0"
ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CONSUMERS = {
    "intake": ("caf-intake", topics.INBOUND),
    "validator": ("caf-validator", topics.GRANTS_ACCEPTED),
    "caf-poster": ("caf-poster", topics.GRANTS_VALIDATED),
    "notifier": ("caf-notifier", topics.EVENTS),
}


def _tool(name: str) -> str:
    found = ROOT / ".tools" / "bin" / name
    path = str(found) if found.exists() else shutil.which(name)
    assert path, f"{name} is missing: `make tools` installs it"
    return path


def build(overlay: str) -> list[dict[str, Any]]:
    output = subprocess.run(  # noqa: S603 - our own manifests
        [_tool("kustomize"), "build", str(DEPLOY / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(output) if doc]


def keda_schema() -> dict[str, Any]:
    crd_file = ROOT / ".tools" / "keda" / "keda.sh_scaledobjects.yaml"
    assert crd_file.exists(), "the KEDA CRD is missing: `make tools` fetches it"
    crd = yaml.safe_load(crd_file.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_every_object_of_an_overlay_validates_against_its_schema(overlay: str) -> None:
    docs = build(overlay)
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "PodDisruptionBudget", "ScaledObject", "NetworkPolicy", "Job"} <= kinds
    assert "ConfigMap" in kinds
    schema = keda_schema()
    for doc in docs:
        if doc["kind"] == "ScaledObject":
            jsonschema.validate(doc, schema)
        else:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        assert doc["metadata"].get("namespace") == f"caf-{overlay}"


def test_an_invalid_manifest_is_caught_by_the_validation() -> None:
    (deployment, *_) = of_kind(build("dev"), "Deployment").values()
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"] = {
        "not": "a port"
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    scaled = next(iter(of_kind(build("dev"), "ScaledObject").values()))
    del scaled["spec"]["scaleTargetRef"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(scaled, keda_schema())


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_each_consumer_is_probed_drained_protected_and_scaled_on_its_own_lag(
    overlay: str,
) -> None:
    docs = build(overlay)
    deployments = of_kind(docs, "Deployment")
    budgets = of_kind(docs, "PodDisruptionBudget")
    scaled = of_kind(docs, "ScaledObject")
    (config,) = of_kind(docs, "ConfigMap").values()
    graceful_s = float(config["data"]["CAF_GRACEFUL_TIMEOUT_S"])
    for name, (group, topic) in CONSUMERS.items():
        pod = deployments[name]["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["resources"]["limits"]
        assert pod["terminationGracePeriodSeconds"] > graceful_s
        assert budgets[name]["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": name}
        spec = scaled[name]["spec"]
        assert spec["scaleTargetRef"]["name"] == name
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= KEYED_PARTITIONS
        (trigger,) = spec["triggers"]
        assert trigger["metadata"]["consumerGroup"] == group
        assert group in GROUPS
        assert trigger["metadata"]["topic"] == topic
    assert "caf-secrets" not in json.dumps(of_kind(docs, "ConfigMap"))


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_no_key_is_committed_and_intake_takes_its_keys_from_the_cluster_secret(
    overlay: str,
) -> None:
    docs = build(overlay)
    assert not of_kind(docs, "Secret"), "keys come from the cluster's secret manager, not git"
    intake = of_kind(docs, "Deployment")["intake"]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in intake["containers"][0]["env"]}
    for name in ("INTAKE_TAXPAYER_REF_KEY", "CAF_ENVELOPE_KEYS", "INTAKE_TAXPAYER_REF_LAYERS"):
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "caf-secrets"
    (config,) = of_kind(docs, "ConfigMap").values()
    assert config["data"]["CAF_ENVELOPE_KID"]


def test_production_tables_are_encrypted_under_the_customer_managed_key() -> None:
    (config,) = of_kind(build("prod"), "ConfigMap").values()
    assert config["data"]["CAF_TABLE_KMS_KEY"].startswith("arn:aws:kms:")


def test_production_uses_sasl_ssl_three_replicas_and_creates_the_acls() -> None:
    docs = build("prod")
    (config,) = of_kind(docs, "ConfigMap").values()
    assert config["data"]["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert not of_kind(docs, "Secret"), "production secrets come from the cluster, not the repo"
    job = of_kind(docs, "Job")["caf-provision"]
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("--replication-factor") + 1] == "3"
    assert "--acls" in command  # AU: every principal's ACLs, from the topology


def test_each_process_has_its_own_kafka_principal_and_the_signed_topics_readers_keys() -> None:
    """One credential per service (least privilege); intake and the validator trust the
    publishers' keys mounted from `caf-trust` (AU-01)."""
    docs = build("prod")
    secrets = {}
    for name, deployment in of_kind(docs, "Deployment").items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        refs = {
            e["valueFrom"]["secretKeyRef"]["name"]
            for e in container.get("env", [])
            if e["name"] == "KAFKA_SASL_USERNAME"
        }
        secrets[name] = refs
        mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
        readers = {"intake", "validator", "caf-query"}  # and the API: its IdPs' keys
        assert ("/etc/caf/trust" in mounts) == (name in readers), name
    assert secrets == {
        "intake": {"caf-kafka-intake"},
        "validator": {"caf-kafka-validator"},
        "caf-poster": {"caf-kafka-poster"},
        "notifier": {"caf-kafka-notifier"},
        "lag-exporter": {"caf-kafka-lag-exporter"},
        "caf-query": {"caf-kafka-query"},
    }


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_the_api_is_served_scaled_on_cpu_reachable_only_by_its_clients_and_keyed_from_secrets(
    overlay: str,
) -> None:
    """The read side (issue 17): a Service on the API port, an HPA (it serves requests, so CPU,
    not lag, says how many), a budget, ingress to 8090 only from labelled client namespaces, the
    taxpayer_ref key from the cluster's Secret, and an allow-listed identity provider."""
    docs = build(overlay)
    deployment = of_kind(docs, "Deployment")["caf-query"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    (config,) = of_kind(docs, "ConfigMap").values()
    assert ports == {
        "http": int(config["data"]["CAF_QUERY_HEALTH_PORT"]),
        "api": int(config["data"]["CAF_QUERY_API_PORT"]),
    }
    assert json.loads(config["data"]["CAF_QUERY_IDENTITY_PROVIDERS"])
    service = of_kind(docs, "Service")["caf-query"]
    assert service["spec"]["ports"][0]["targetPort"] == "api"
    scaler = of_kind(docs, "HorizontalPodAutoscaler")["caf-query"]
    assert scaler["spec"]["scaleTargetRef"]["name"] == "caf-query"
    assert scaler["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert "caf-query" in of_kind(docs, "PodDisruptionBudget")
    policy = of_kind(docs, "NetworkPolicy")["caf-query-api"]["spec"]
    (rule,) = policy["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": ports["api"]}]
    assert rule["from"][0]["namespaceSelector"]["matchLabels"]
    env = {e["name"]: e for e in container["env"]}
    assert env["CAF_QUERY_TAXPAYER_REF_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "caf-secrets"


def test_promtool_accepts_the_alert_rules_and_their_unit_tests_pass() -> None:
    promtool = _tool("promtool")
    rules = DEPLOY / "prometheus"
    for command in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]):
        result = subprocess.run(  # noqa: S603 - fixed arguments
            [promtool, *command], cwd=rules, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr


def _exported_metric_names() -> set[str]:
    names = set()
    for source in (ROOT / "caf_runtime" / "metrics.py", ROOT / "cafctl" / "lag_exporter.py"):
        names |= set(re.findall(r'"(caf_[a-z_]+)"', source.read_text()))
    return names | {"up"}


def _used_metric_names(expressions: list[str]) -> set[str]:
    used = set()
    for expression in expressions:
        for name in re.findall(r"\b(caf_[a-z_]+|up)\b", expression):
            used.add(re.sub(r"_(bucket|sum|count)$", "", name))
    return used


def test_the_dashboard_and_the_alerts_only_use_metrics_the_code_exports() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "caf-processor.json").read_text())
    dashboard_exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    alerts = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    alert_exprs = [str(rule["expr"]) for group in alerts["groups"] for rule in group["rules"]]
    exported = _exported_metric_names()
    assert _used_metric_names(dashboard_exprs) <= exported
    assert _used_metric_names(alert_exprs) <= exported
    assert {"caf_consumer_lag_seconds", "caf_events_total"} <= _used_metric_names(alert_exprs)


def test_the_compose_file_wires_every_service_with_the_shared_settings() -> None:
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    services = compose["services"]
    assert {"kafka", "dynamodb", "provision", "prometheus", "grafana", "lag-exporter"} <= set(
        services
    )
    for name, module in (
        ("intake", "services.intake"),
        ("validator", "services.validator"),
        ("caf-poster", "services.caf_poster"),
        ("notifier", "services.notifier"),
        ("caf-query", "services.caf_query"),
    ):
        assert services[name]["command"] == ["python", "-m", module]
        assert services[name]["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    mounted = [v.split(":")[0] for v in services["grafana"]["volumes"]]
    for source in mounted:
        assert (DEPLOY / "compose" / source).resolve().exists(), source
