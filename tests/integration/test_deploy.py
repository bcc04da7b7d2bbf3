"""The files in deploy/ against real tools and schemas: kustomize builds both overlays, every
object validates against the Kubernetes schemas (strict) or KEDA's CRD, the manifests agree with
the code (consumer groups, topics, partition count, graceful timeout), each process runs as a
ServiceAccount and IAM role (IRSA) of its own, promtool accepts and unit-tests the alert rules,
the dashboard and alerts only use metrics the code exports, and the evidence bucket's
configuration and IAM policies (deploy/aws) agree with the manifests and the code."""

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

from caf_runtime import topology
from caf_runtime.config import EvidenceSettings
from caf_runtime.topology import KEYED_PARTITIONS
from devstack.objectstore import PRINCIPALS as OBJECT_STORE_PRINCIPALS
from schemas.evidence import KEY_PREFIX
from services.caf_poster.config import CafPosterSettings

pytestmark = pytest.mark.integration

KUBERNETES_VERSION = "1.33.0"
ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
# each Deployment scaled on the lag of its service's base group (caf_runtime.topology)
CONSUMERS = {
    "intake": topology.INTAKE,
    "validator": topology.VALIDATOR,
    "caf-poster": topology.POSTER,
    "notifier": topology.NOTIFIER,
    "monitor": topology.MONITOR,
}
EVIDENCE_POLICIES = DEPLOY / "aws" / "evidence-bucket-policies.json"
# every process on Kubernetes, by the Deployment or Job that runs it
PROCESSES = {
    "intake",
    "validator",
    "caf-poster",
    "notifier",
    "monitor",
    "caf-query",
    "lag-exporter",
    "caf-provision",
}
IRSA_ROLE = "eks.amazonaws.com/role-arn"  # the ServiceAccount's IAM role (EKS pod identity webhook)
# what only the standard AWS credential chain (the pod's IAM role) may provide on Kubernetes
AWS_KEY_SETTINGS = {
    "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
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


def evidence_policies() -> dict[str, Any]:
    policies: dict[str, Any] = json.loads(EVIDENCE_POLICIES.read_text())
    return policies


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    """A policy's statements with Action and Resource as lists."""
    assert policy["Version"] == "2012-10-17"
    listed = []
    for statement in policy["Statement"]:
        as_lists = {
            key: [value] if isinstance(value, str) else value
            for key, value in statement.items()
            if key in {"Action", "Resource"}
        }
        listed.append({**statement, **as_lists})
    return listed


def granted(policy: dict[str, Any], service: str) -> set[str]:
    """The actions of `service` (`s3`, `kms`) that a role's policy allows."""
    return {
        action
        for statement in statements(policy)
        if statement["Effect"] == "Allow"
        for action in statement["Action"]
        if action.startswith(f"{service}:")
    }


def settings_from(config: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> CafPosterSettings:
    """The poster's settings as its pod reads them: the ConfigMap's data as its environment
    (envFrom), and nothing else that names the object store."""
    for name in (*AWS_KEY_SETTINGS, "S3_ENDPOINT", "CAF_EVIDENCE_KMS_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in config["data"].items():
        monkeypatch.setenv(name, value)
    return CafPosterSettings()


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
    for name, group in CONSUMERS.items():
        pod = deployments[name]["spec"]["template"]["spec"]
        container = pod["containers"][0]
        health_port = config["data"][f"{name.upper().replace('-', '_')}_HEALTH_PORT"]
        assert container["ports"] == [{"name": "http", "containerPort": int(health_port)}], name
        annotations = deployments[name]["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == health_port, name
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["resources"]["limits"]
        assert pod["terminationGracePeriodSeconds"] > graceful_s
        assert budgets[name]["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": name}
        spec = scaled[name]["spec"]
        assert spec["scaleTargetRef"]["name"] == name
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= KEYED_PARTITIONS
        (trigger,) = spec["triggers"]
        assert trigger["metadata"]["consumerGroup"] == group.name
        assert (trigger["metadata"]["topic"],) == group.topics
    assert "caf-secrets" not in json.dumps(of_kind(docs, "ConfigMap"))


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_no_key_is_committed_and_intake_takes_its_keys_from_the_cluster_secret(
    overlay: str,
) -> None:
    docs = build(overlay)
    assert not of_kind(docs, "Secret"), "keys come from the cluster's secret manager, not git"
    intake = of_kind(docs, "Deployment")["intake"]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in intake["containers"][0]["env"]}
    for name in (
        "INTAKE_TAXPAYER_REF_KEY",
        "CAF_ENVELOPE_KEYS",
        "INTAKE_TAXPAYER_REF_LAYERS",
        "INTAKE_PIN_KEYS",
    ):
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
    keyed = set()
    for name, deployment in of_kind(docs, "Deployment").items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        if "caf-secrets" in json.dumps(container):
            keyed.add(name)
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
        "monitor": {"caf-kafka-monitor"},
        "lag-exporter": {"caf-kafka-lag-exporter"},
        "caf-query": {"caf-kafka-query"},
    }
    assert keyed == {"intake", "caf-query"}  # the taxpayer_ref key; envelope keys: intake's


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


def test_each_process_runs_as_its_own_service_account_with_its_own_iam_role() -> None:
    """Least privilege on AWS: in each overlay every Deployment and Job runs as a ServiceAccount
    of its own that the overlay declares (none left unused), mounts no Kubernetes API token, and
    is bound (IRSA) to an IAM role of its own, caf-<env>-<ServiceAccount>; production's roles are
    in the account of its KMS keys, and the evidence policies (deploy/aws) are attached to the
    roles of caf-poster's and caf-query's ServiceAccounts, so no other pod gets them."""
    policies = evidence_policies()
    account = policies["kmsKey"].split(":")[4]
    for overlay in ("dev", "prod"):
        docs = build(overlay)
        accounts = of_kind(docs, "ServiceAccount")
        pods = {
            name: workload["spec"]["template"]["spec"]
            for kind in ("Deployment", "Job")
            for name, workload in of_kind(docs, kind).items()
        }
        assert set(pods) >= PROCESSES, overlay
        runs_as = {name: pod.get("serviceAccountName") for name, pod in pods.items()}
        assert len(set(runs_as.values())) == len(pods), (overlay, runs_as)
        assert set(runs_as.values()) == set(accounts), (overlay, runs_as)  # each one declared
        roles = {}
        for name, pod in pods.items():
            service_account = accounts[runs_as[name]]
            assert pod["automountServiceAccountToken"] is False, (overlay, name)
            assert service_account["automountServiceAccountToken"] is False, (overlay, name)
            role = service_account["metadata"].get("annotations", {}).get(IRSA_ROLE, "")
            named = rf"arn:aws:iam::\d{{12}}:role/caf-{overlay}-{runs_as[name]}"
            assert re.fullmatch(named, role), (overlay, name, role)
            roles[name] = role
        assert len(set(roles.values())) == len(roles), (overlay, roles)
        if overlay == "prod":
            assert {role.split(":")[4] for role in roles.values()} == {account}
            for service in ("caf-poster", "caf-query"):
                attached = policies["rolePolicies"][service]["role"]
                assert roles[service] == f"arn:aws:iam::{account}:role/{attached}", service


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
    sources = [
        ROOT / "caf_runtime" / "metrics.py",
        ROOT / "cafctl" / "lag_exporter.py",
        *sorted((ROOT / "services").glob("*/metrics.py")),  # a service's own, e.g. the monitor's
    ]
    for source in sources:
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
    assert "caf_misuse_suspected_total" in _used_metric_names(alert_exprs)
    assert "caf_misuse_suspected_total" in _used_metric_names(dashboard_exprs)


def test_the_compose_file_wires_every_service_with_the_shared_settings() -> None:
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    services = compose["services"]
    assert {
        "kafka",
        "dynamodb",
        "objectstore",
        "evidence-bucket",
        "provision",
        "prometheus",
        "grafana",
        "lag-exporter",
    } <= set(services)
    for name, module in (
        ("intake", "services.intake"),
        ("validator", "services.validator"),
        ("caf-poster", "services.caf_poster"),
        ("notifier", "services.notifier"),
        ("monitor", "services.monitor"),
        ("caf-query", "services.caf_query"),
    ):
        assert services[name]["command"] == ["python", "-m", module]
        assert services[name]["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    mounted = [v.split(":")[0] for v in services["grafana"]["volumes"]]
    for source in mounted:
        assert (DEPLOY / "compose" / source).resolve().exists(), source


def test_the_poster_may_only_write_evidence_once_and_the_read_side_only_read_it() -> None:
    """ES-03, ES-05, least privilege: caf-poster's role writes an evidence object only with
    If-None-Match (never a second version) and with its retention; caf-query's role only gets
    and lists; neither deletes; the bucket policy refuses every principal a deletion, a bypass of
    the lock, a write without If-None-Match and plain HTTP."""
    policies = evidence_policies()
    bucket = f"arn:aws:s3:::{policies['bucket']}"
    objects = f"{bucket}/{KEY_PREFIX}*"  # the content addresses the poster writes
    poster = policies["rolePolicies"]["caf-poster"]["policy"]
    query = policies["rolePolicies"]["caf-query"]["policy"]

    assert granted(poster, "s3") == {
        "s3:PutObject",
        "s3:PutObjectRetention",
        "s3:GetObjectRetention",
        "s3:ListBucket",
    }
    assert granted(poster, "kms") == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert granted(query, "s3") == {
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:GetObjectRetention",
        "s3:ListBucketVersions",
    }
    assert all(a.startswith(("s3:Get", "s3:List")) for a in granted(query, "s3"))
    assert granted(query, "kms") == {"kms:Decrypt"}
    for policy in (poster, query):
        for statement in statements(policy):
            assert statement["Effect"] == "Allow"
            assert not [a for a in statement["Action"] if "*" in a or "Delete" in a]
            assert "Bypass" not in json.dumps(statement["Action"])
            for action in statement["Action"]:
                if action in {"s3:ListBucket", "s3:ListBucketVersions"}:
                    assert statement["Resource"] == [bucket], action
                elif action.startswith("s3:"):
                    assert statement["Resource"] == [objects], action
    (put,) = [s for s in statements(poster) if "s3:PutObject" in s["Action"]]
    assert put["Action"] == ["s3:PutObject"]
    assert put["Condition"] == {"Null": {"s3:if-none-match": "false"}}  # If-None-Match: *
    (listing,) = [s for s in statements(query) if "s3:ListBucketVersions" in s["Action"]]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": f"{KEY_PREFIX}*"}}

    bucket_policy = statements(policies["bucketPolicy"])
    assert all(s["Effect"] == "Deny" and s["Principal"] == "*" for s in bucket_policy)
    unconditional = {
        a
        for s in bucket_policy
        if "Condition" not in s and f"{bucket}/*" in s["Resource"]
        for a in s["Action"]
    }
    assert {"s3:DeleteObjectVersion", "s3:BypassGovernanceRetention"} <= unconditional
    (unconditional_put,) = [s for s in bucket_policy if s["Action"] == ["s3:PutObject"]]
    assert unconditional_put["Resource"] == [f"{bucket}/*"]
    assert unconditional_put["Condition"] == {"Null": {"s3:if-none-match": "true"}}
    (plain_http,) = [s for s in bucket_policy if "aws:SecureTransport" in json.dumps(s)]
    assert plain_http["Action"] == ["s3:*"]
    assert set(plain_http["Resource"]) == {bucket, f"{bucket}/*"}
    assert plain_http["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_production_evidence_is_encrypted_under_its_kms_key_and_kept_seven_years(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The prod overlay, the bucket's configuration and the roles' policies name one bucket and
    one key; the bucket is made with Object Lock, COMPLIANCE for 2557 days by default as the
    poster locks each object, SSE-KMS under that key, never public; the poster reads AWS S3
    (no endpoint) as its IAM role (no key)."""
    (config,) = of_kind(build("prod"), "ConfigMap").values()
    policies = evidence_policies()
    settings = settings_from(config, monkeypatch)
    kms_key = config["data"]["CAF_EVIDENCE_KMS_KEY"]
    assert kms_key.startswith("arn:aws:kms:")
    assert settings.evidence_kms_key == kms_key == policies["kmsKey"]
    assert settings.evidence_retention_days == 2557  # 7 years (ES-03)
    assert settings.evidence_bucket == config["data"]["CAF_EVIDENCE_BUCKET"] == policies["bucket"]
    assert settings.s3_endpoint is None  # AWS S3
    assert settings.s3_access_key_id is None
    assert settings.s3_secret_access_key is None

    made = policies["bucketConfiguration"]
    assert made["CreateBucket"] == {
        "Bucket": settings.evidence_bucket,
        "ObjectLockEnabledForBucket": True,
    }
    assert made["VersioningConfiguration"] == {"Status": "Enabled"}
    assert made["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 2557}},
    }
    (encryption,) = made["ServerSideEncryptionConfiguration"]["Rules"]
    assert encryption["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": kms_key,
    }
    blocks = made["PublicAccessBlockConfiguration"]
    assert set(blocks) == {
        "BlockPublicAcls",
        "IgnorePublicAcls",
        "BlockPublicPolicy",
        "RestrictPublicBuckets",
    }
    assert all(blocks.values())
    # the roles may use the key only as the alias the overlay names, only through S3
    alias = kms_key.split(":", 5)[5]
    for role, attached in policies["rolePolicies"].items():
        (key_use,) = [
            s for s in statements(attached["policy"]) if s["Action"][0].startswith("kms:")
        ]
        assert key_use["Condition"]["ForAnyValue:StringEquals"] == {"kms:ResourceAliases": alias}, (
            role
        )
        assert key_use["Condition"]["StringEquals"]["kms:ViaService"].startswith("s3."), role


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_the_poster_and_the_read_side_take_the_evidence_settings_from_the_configmap(
    overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every environment has a bucket of its own (S3 bucket names are global), and both
    services that use it read its settings, valid, from caf-config."""
    docs = build(overlay)
    (config,) = of_kind(docs, "ConfigMap").values()
    deployments = of_kind(docs, "Deployment")
    for name in ("caf-poster", "caf-query"):
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        assert {"configMapRef": {"name": "caf-config"}} in container["envFrom"], name
    settings = settings_from(config, monkeypatch)
    assert settings.evidence_bucket == f"caf-{overlay}-signature-evidence"
    assert settings.evidence_retry_s == [5.0, 30.0, 120.0]
    assert settings.evidence_retry_every_s == 300.0
    assert EvidenceSettings().evidence_bucket == settings.evidence_bucket  # the read side's too


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_no_s3_key_is_committed_and_the_evidence_services_use_their_iam_role(
    overlay: str,
) -> None:
    """No Secret, no ConfigMap entry and no container variable carries an AWS or S3 access key
    (the standard chain finds the pod's IAM role), no container points at another S3
    endpoint, and nothing in deploy/k8s or deploy/aws looks like an AWS access key."""
    docs = build(overlay)
    assert not of_kind(docs, "Secret")
    (config,) = of_kind(docs, "ConfigMap").values()
    assert not AWS_KEY_SETTINGS & set(config["data"])
    assert "S3_ENDPOINT" not in config["data"]
    for kind in ("Deployment", "Job"):
        for name, workload in of_kind(docs, kind).items():
            for container in workload["spec"]["template"]["spec"]["containers"]:
                names = {e["name"] for e in container.get("env", [])}
                assert not AWS_KEY_SETTINGS & names, name
                assert "S3_ENDPOINT" not in names, name
    access_key = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")
    for path in [*(DEPLOY / "k8s").rglob("*.yaml"), EVIDENCE_POLICIES]:
        text = path.read_text()
        assert not access_key.search(text), path
        assert "aws_secret_access_key" not in text.lower(), path


def test_compose_keeps_evidence_in_an_object_store_with_one_key_per_service() -> None:
    """The compose object store (SeaweedFS) gives each principal the actions `make up` gives it
    (devstack/objectstore.py) and its own key; caf-poster and caf-query use theirs, no other
    service has one, and every secret comes from the environment, not from the file."""
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    services = compose["services"]
    store = services["objectstore"]
    assert store["image"].startswith("chrislusf/seaweedfs:")
    assert store["command"][:2] == ["server", "-s3"]
    assert "-s3.port=8333" in store["command"]
    assert store["environment"]["WEED_S3_SSE_KEY"].startswith("${")
    (mounted,) = store["configs"]
    assert f"-s3.config={mounted['target']}" in store["command"]
    identities = json.loads(compose["configs"][mounted["source"]]["content"])["identities"]
    keys = {}
    for identity in identities:
        assert identity["actions"] == OBJECT_STORE_PRINCIPALS[identity["name"]]
        (credential,) = identity["credentials"]
        assert credential["secretKey"].startswith("${"), identity["name"]
        keys[identity["name"]] = credential["accessKey"]
    assert set(keys) == {"provisioner", "poster", "query"}
    assert len(set(keys.values())) == len(keys)

    for service, principal in (
        ("evidence-bucket", "provisioner"),
        ("caf-poster", "poster"),
        ("caf-query", "query"),
    ):
        env = services[service]["environment"]
        assert env["S3_ENDPOINT"] == "http://objectstore:8333", service
        assert env["S3_ACCESS_KEY_ID"] == keys[principal], service
        assert env["S3_SECRET_ACCESS_KEY"].startswith("${"), service
        assert env["CAF_EVIDENCE_BUCKET"] == "caf-signature-evidence", service
    for service in ("caf-poster", "caf-query"):
        depends = services[service]["depends_on"]
        assert depends["evidence-bucket"] == {"condition": "service_completed_successfully"}
        assert depends["provision"] == {"condition": "service_completed_successfully"}
    for service in ("intake", "validator", "notifier", "monitor", "lag-exporter", "provision"):
        assert "S3_ACCESS_KEY_ID" not in services[service]["environment"], service
