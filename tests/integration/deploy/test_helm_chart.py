"""The Helm chart, rendered offline by Helm's own Go SDK and checked as a cluster would check it."""

from __future__ import annotations

import base64
import dataclasses
import importlib
import re
from collections.abc import Mapping
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from switchboard_devstack.envoy_config import origin_regex
from switchboard_devstack.stack_config import default_services
from switchboard_runtime.settings import env_name, load_settings
from tests.integration.deploy.chart_support import (
    CHART_DIR,
    COMPONENT_LABEL,
    COMPONENTS,
    NAMESPACE,
    RELEASE,
    ROOT,
    SERVICES,
    Rendered,
    env_of,
    merge,
    production_values,
    render,
)

#: The newest Kubernetes the bundled schemas describe.
KUBERNETES_VERSION = latest_version()
WARNING = 2

MAKE_RUN_SERVICES = {service.name: service for service in default_services({})}


def _lint_findings(values: Mapping[str, Any] | None) -> list[str]:
    report = helm_python.lint(CHART_DIR, dict(values) if values else None, strict=True)
    findings = [m["error"] for m in report["messages"] if m["severity"] >= WARNING]
    return findings + list(report["errors"])


@pytest.mark.parametrize("values_file", ["values.yaml", "values-production.example.yaml"])
def test_the_chart_lints_clean_in_strict_mode(values_file: str) -> None:
    values = production_values() if values_file != "values.yaml" else None
    assert _lint_findings(values) == []


def test_every_rendered_object_passes_strict_kubernetes_schema_validation(
    rendered: Rendered,
) -> None:
    failures = []
    for obj in rendered.objects:
        # SchemaNotFoundError (an unknown kind or apiVersion) fails the test too.
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = ".".join(str(part) for part in error.path)
            failures.append(f"{obj['kind']}/{obj['metadata']['name']} {where}: {error.message}")
    assert failures == []
    assert len(rendered.of_kind("Deployment")) == 6


def test_strict_schema_validation_rejects_a_field_kubernetes_does_not_know(
    default_render: Rendered,
) -> None:
    deployment = default_render.deployment("gateway")
    typo = merge(deployment, {"spec": {"template": {"spec": {"terminationGracePeriod": 30}}}})
    with pytest.raises(kubernetes_validate.ValidationError, match="terminationGracePeriod"):
        kubernetes_validate.validate(typo, KUBERNETES_VERSION, strict=True)


def test_every_container_runs_non_root_read_only_without_capabilities(
    rendered: Rendered,
) -> None:
    for name, pod in rendered.pod_templates():
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        tmp_volumes = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True, name
            assert context["runAsUser"] == 10001, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
            tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert len(tmp) == 1 and tmp[0]["name"] in tmp_volumes, name


@pytest.mark.parametrize("component", SERVICES)
def test_every_service_has_native_grpc_probes_and_a_service_port_named_grpc(
    rendered: Rendered, component: str
) -> None:
    port = MAKE_RUN_SERVICES[component].grpc_port
    container = rendered.container(component)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["grpc"] == port
    assert ports["metrics"] == MAKE_RUN_SERVICES[component].metrics_port
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"] == {"port": port}, probe
    service = rendered.get("Service", f"{RELEASE}-{component}")
    grpc = [p for p in service["spec"]["ports"] if p["name"] == "grpc"]
    assert grpc == [
        {
            "name": "grpc",
            "port": port,
            "targetPort": "grpc",
            "protocol": "TCP",
            "appProtocol": "kubernetes.io/h2c",
        }
    ]
    assert service["spec"]["selector"][COMPONENT_LABEL] == component
    resources = container["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]
    template = rendered.deployment(component)["spec"]["template"]
    assert template["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert template["metadata"]["annotations"]["prometheus.io/port"] == str(ports["metrics"])


def test_pods_outlive_their_drain_and_pause_before_it(rendered: Rendered) -> None:
    for name, pod in rendered.pod_templates():
        container = pod["containers"][0]
        pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        grace = float(env_of(container).get("SHUTDOWN_GRACE_SECONDS", "0"))
        assert pause > 0, name
        assert pod["terminationGracePeriodSeconds"] > pause + grace, name


def test_a_termination_grace_period_shorter_than_the_drain_is_refused(
    chart: helm_python.Chart,
) -> None:
    values = {"global": {"preStopSleepSeconds": 5, "shutdownGraceSeconds": 30}}
    with pytest.raises(helm_python.HelmRenderError, match="terminationGracePeriodSeconds"):
        render(chart, values)


def test_each_service_runs_its_own_module_of_the_image(rendered: Rendered) -> None:
    for component, (_, module) in SERVICES.items():
        command = rendered.container(component)["command"]
        assert command == ["python", "-m", module]
        package = ROOT / "services" / component / module
        assert (package / "__main__.py").is_file(), f"{command} names no module in {package}"


@pytest.mark.parametrize("component", SERVICES)
def test_the_rendered_environment_loads_into_each_services_settings(
    default_render: Rendered, component: str
) -> None:
    """Chart env + the chart's Secret, fed to the service's own settings loader."""
    settings_classes = {
        "gateway": ("gateway.settings", "GatewaySettings"),
        "identity": ("identity.settings", "IdentitySettings"),
        "conversation": ("conversation.settings", "ConversationSettings"),
        "llm-router": ("llm_router.settings", "RouterSettings"),
        "connectors": ("connectors.settings", "ConnectorsSettings"),
    }
    module_name, class_name = settings_classes[component]
    settings_class = getattr(importlib.import_module(module_name), class_name)
    container = default_render.container(component)
    (secret_ref,) = container["envFrom"]
    secret = default_render.get("Secret", secret_ref["secretRef"]["name"])
    environ = {**secret["stringData"], **env_of(container)}
    settings = load_settings(settings_class, environ)
    # The peers are where the chart's Services are, on the ports `make run` uses.
    for peer in ("identity", "conversation", "llm-router", "connectors"):
        attribute = peer.replace("-", "_") + "_addr"
        if hasattr(settings, attribute):
            port = MAKE_RUN_SERVICES[peer].grpc_port
            assert getattr(settings, attribute) == f"{RELEASE}-{peer}:{port}"
            assert default_render.get("Service", f"{RELEASE}-{peer}")
    assert settings.grpc_port == MAKE_RUN_SERVICES[component].grpc_port
    if component == "gateway":
        assert settings.body_check_port == int(MAKE_RUN_SERVICES["gateway"].env["BODY_CHECK_PORT"])
    # Every variable the chart sets is one the service reads: a typo would be ignored silently.
    known = {env_name(field) for field in dataclasses.fields(settings_class)}
    assert set(environ) <= known


def test_every_service_presents_a_client_secret_identity_accepts(
    default_render: Rendered,
) -> None:
    identity = default_render.get("Secret", f"{RELEASE}-identity")["stringData"]
    accepted = dict(pair.split("=", 1) for pair in identity["SERVICE_CLIENT_SECRETS"].split(","))
    assert set(accepted) == {"gateway", "conversation", "llm-router", "connectors", "operator"}
    for component in ("gateway", "conversation", "llm-router", "connectors"):
        secret = default_render.get("Secret", f"{RELEASE}-{component}")["stringData"]
        client_id = env_of(default_render.container(component))["SERVICE_CLIENT_ID"]
        assert accepted[client_id] == secret["SERVICE_CLIENT_SECRET"]
        assert len(secret["SERVICE_CLIENT_SECRET"]) >= 32
    assert len(base64.b64decode(identity["SIGNING_KEY_ENCRYPTION_KEY"], validate=True)) == 32
    annotations = default_render.get("Secret", f"{RELEASE}-identity")["metadata"]["annotations"]
    assert annotations["helm.sh/resource-policy"] == "keep"


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"gateway": {"replicas": "3"}}, "/gateway/replicas"),
        ({"replicaCount": 2}, "replicaCount"),
        ({"identity": {"replica": 2}}, "/identity"),
        ({"conversation": {"env": {"GRPC_PORT": "6000"}}}, "/conversation/env"),
        ({"global": {"image": {"pullPolicy": "Sometimes"}}}, "/global/image/pullPolicy"),
        ({"connectors": {"secret": {"databaseUrl": "mysql://x/y"}}}, "databaseUrl"),
        ({"networkPolicy": {"enabled": "yes"}}, "/networkPolicy/enabled"),
    ],
    ids=[
        "string replica count",
        "unknown top-level key",
        "unknown service key",
        "a variable the chart sets",
        "unknown pull policy",
        "not a Postgres URL",
        "string for a boolean",
    ],
)
def test_values_that_break_the_schema_are_rejected(
    chart: helm_python.Chart, values: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(helm_python.HelmValuesError, match=re.escape(complaint)):
        render(chart, values)


@pytest.mark.parametrize("component", COMPONENTS)
def test_create_false_removes_every_object_of_that_component(
    chart: helm_python.Chart, component: str
) -> None:
    values = merge(production_values(), {COMPONENTS[component]: {"create": False}})
    if component == "identity":
        values = merge(values, {"identity": {"secret": {"existingSecret": ""}}})
    full = render(chart, production_values())
    without = render(chart, values)
    assert full.of_component(component)
    assert without.of_component(component) == []
    others = {
        (obj["kind"], obj["metadata"]["name"])
        for obj in full.objects
        if obj not in full.of_component(component)
    }
    assert others <= {(obj["kind"], obj["metadata"]["name"]) for obj in without.objects}


def test_production_values_scale_out_behind_budgets_with_secrets_managed_outside(
    production_render: Rendered,
) -> None:
    for component in COMPONENTS:
        deployment = production_render.deployment(component)
        autoscaler = [
            hpa
            for hpa in production_render.of_kind("HorizontalPodAutoscaler")
            if hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
        ]
        replicas = (
            autoscaler[0]["spec"]["minReplicas"] if autoscaler else deployment["spec"]["replicas"]
        )
        assert replicas > 1, component
        budget = production_render.get("PodDisruptionBudget", f"{RELEASE}-{component}")
        assert (
            budget["spec"]["selector"]["matchLabels"]
            == deployment["spec"]["selector"]["matchLabels"]
        )
        assert deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert production_render.of_kind("Secret") == []
    for component in SERVICES:
        (source,) = production_render.container(component)["envFrom"]
        assert source["secretRef"]["name"] == f"switchboard-{component}"
    assert production_render.of_kind("NetworkPolicy")


def test_the_router_config_from_values_is_mounted_and_valid_for_the_router(
    production_render: Rendered,
) -> None:
    from llm_router.config import parse_config

    config_map = production_render.get("ConfigMap", f"{RELEASE}-llm-router")
    container = production_render.container("llm-router")
    path = env_of(container)["LLM_ROUTER_CONFIG"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "config"]
    assert path == f"{mount['mountPath']}/config.yaml"
    keys = {"OPENAI_API_KEY": "sk-test", "ANTHROPIC_API_KEY": "sk-ant-test"}
    config = parse_config(config_map["data"]["config.yaml"], environ=keys)
    assert {model.alias for model in config.models} == {"default"}
    annotations = production_render.deployment("llm-router")["spec"]["template"]["metadata"][
        "annotations"
    ]
    assert annotations["checksum/config"]


def test_without_a_router_config_the_router_serves_its_built_in_one(
    default_render: Rendered,
) -> None:
    assert "LLM_ROUTER_CONFIG" not in env_of(default_render.container("llm-router"))
    assert not [
        obj
        for obj in default_render.of_kind("ConfigMap")
        if obj["metadata"]["name"].endswith("router")
    ]


def test_cors_origin_globs_mean_the_same_at_the_edge_as_in_make_run(
    chart: helm_python.Chart,
) -> None:
    origins = ["https://app.example.com", "http://localhost:*", "https://*.example.org"]
    rendered = render(chart, {"envoy": {"corsAllowedOrigins": origins}})
    config_map = rendered.get("ConfigMap", f"{RELEASE}-envoy")
    config = yaml.safe_load(config_map["data"]["envoy.yaml"])
    (listener,) = [x for x in config["static_resources"]["listeners"] if x["name"] == "edge"]
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    (host,) = manager["route_config"]["virtual_hosts"]
    matchers = host["typed_per_filter_config"]["envoy.filters.http.cors"][
        "allow_origin_string_match"
    ]
    chart_regexes = [re.compile(m["safe_regex"]["regex"]) for m in matchers]
    make_run_regexes = [re.compile(origin_regex(origin)) for origin in origins]
    samples = [
        "https://app.example.com",
        "https://appxexample.com",
        "http://localhost",
        "http://localhost:5173",
        "http://localhost:5173/x",
        "https://a.example.org",
        "https://a.b.example.org",
        "https://example.org",
        "https://evil.com",
    ]
    for sample in samples:
        chart_allows = any(r.fullmatch(sample) for r in chart_regexes)
        make_run_allows = any(r.fullmatch(sample) for r in make_run_regexes)
        assert chart_allows == make_run_allows, sample
    assert any(r.fullmatch("http://localhost:5173") for r in chart_regexes)
    assert not any(r.fullmatch("https://evil.com") for r in chart_regexes)


# -- NetworkPolicy ------------------------------------------------------------------------


_NAMESPACE_LABELS = {"kubernetes.io/metadata.name": NAMESPACE}
_Pod = tuple[Mapping[str, str], Mapping[str, str]]  # (namespace labels, pod labels)


def _selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    if selector is None:
        return True
    assert set(selector) <= {"matchLabels"}, "the evaluator only knows matchLabels"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def _peer_matches(peer: Mapping[str, Any], pod: _Pod) -> bool:
    namespace, labels = pod
    if "ipBlock" in peer:
        return False
    if "namespaceSelector" not in peer:
        return namespace == _NAMESPACE_LABELS and _selects(peer.get("podSelector"), labels)
    return _selects(peer["namespaceSelector"], namespace) and _selects(
        peer.get("podSelector"), labels
    )


def _rule_allows(rule: Mapping[str, Any], side: str, peer: _Pod, port: int, proto: str) -> bool:
    peers = rule.get(side)
    if peers and not any(_peer_matches(p, peer) for p in peers):
        return False
    ports = rule.get("ports")
    return not ports or any(p["port"] == port and p.get("protocol", "TCP") == proto for p in ports)


def _allowed(
    policies: list[dict[str, Any]], kind: str, subject: _Pod, peer: _Pod, port: int, proto: str
) -> bool:
    """Whether `subject` may receive from (Ingress) or send to (Egress) `peer` on `port`."""
    if subject[0] != _NAMESPACE_LABELS:
        return True  # outside the release's namespace: no policy of ours applies
    applying = [
        p
        for p in policies
        if _selects(p["spec"]["podSelector"], subject[1]) and kind in p["spec"]["policyTypes"]
    ]
    if not applying:
        return True
    side = "from" if kind == "Ingress" else "to"
    return any(
        _rule_allows(rule, side, peer, port, proto)
        for policy in applying
        for rule in policy["spec"].get(kind.lower(), [])
    )


def _reachable(
    policies: list[dict[str, Any]], source: _Pod, target: _Pod, port: int, proto: str = "TCP"
) -> bool:
    return _allowed(policies, "Egress", source, target, port, proto) and _allowed(
        policies, "Ingress", target, source, port, proto
    )


def _component_pod(rendered: Rendered, component: str) -> _Pod:
    labels = rendered.deployment(component)["spec"]["template"]["metadata"]["labels"]
    return (_NAMESPACE_LABELS, labels)


def test_the_network_policy_allows_exactly_the_paths_of_the_architecture(
    chart: helm_python.Chart,
) -> None:
    rendered = render(chart, {"networkPolicy": {"enabled": True}})
    policies = rendered.of_kind("NetworkPolicy")
    serving = {name: [s.grpc_port] for name, s in MAKE_RUN_SERVICES.items()}
    serving["envoy"] = [8080]
    allowed = {
        (source, target)
        for source in COMPONENTS
        for target in COMPONENTS
        if source != target
        and any(
            _reachable(
                policies,
                _component_pod(rendered, source),
                _component_pod(rendered, target),
                port,
            )
            for port in serving[target]
        )
    }
    assert allowed == {
        ("envoy", "gateway"),
        ("envoy", "connectors"),
        ("gateway", "identity"),
        ("gateway", "conversation"),
        ("gateway", "llm-router"),
        ("gateway", "connectors"),
        ("conversation", "identity"),
        ("conversation", "llm-router"),
        ("llm-router", "identity"),
        ("connectors", "identity"),
    }
    # Envoy reaches the gateway's JSON body check too.
    body_check = int(MAKE_RUN_SERVICES["gateway"].env["BODY_CHECK_PORT"])
    assert _reachable(
        policies, _component_pod(rendered, "envoy"), _component_pod(rendered, "gateway"), body_check
    )


def test_the_network_policy_opens_the_edge_dns_and_each_services_own_datastores(
    chart: helm_python.Chart,
) -> None:
    rendered = render(chart, {"networkPolicy": {"enabled": True}})
    policies = rendered.of_kind("NetworkPolicy")
    outsider: _Pod = ({"kubernetes.io/metadata.name": "elsewhere"}, {"app": "browser-proxy"})
    assert _reachable(policies, outsider, _component_pod(rendered, "envoy"), 8080)
    for component in SERVICES:
        port = MAKE_RUN_SERVICES[component].grpc_port
        assert not _reachable(policies, outsider, _component_pod(rendered, component), port)
    dns: _Pod = ({"kubernetes.io/metadata.name": "kube-system"}, {"k8s-app": "kube-dns"})
    stores: dict[str, tuple[_Pod, int, set[str]]] = {
        "postgres": (
            (_NAMESPACE_LABELS, {"app.kubernetes.io/name": "postgresql"}),
            5432,
            {"identity", "conversation", "connectors"},
        ),
        "redis": (
            (_NAMESPACE_LABELS, {"app.kubernetes.io/name": "redis"}),
            6379,
            {"gateway", "llm-router"},
        ),
        "nats": (
            (_NAMESPACE_LABELS, {"app.kubernetes.io/name": "nats"}),
            4222,
            {"identity", "conversation", "connectors"},
        ),
    }
    for component in COMPONENTS:
        pod = _component_pod(rendered, component)
        assert _reachable(policies, pod, dns, 53, "UDP"), component
        for store, (store_pod, port, users) in stores.items():
            assert _reachable(policies, pod, store_pod, port) == (component in users), (
                component,
                store,
            )
    default_deny = rendered.get("NetworkPolicy", f"{RELEASE}-default-deny")
    assert default_deny["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in default_deny["spec"] and "egress" not in default_deny["spec"]
    for component in COMPONENTS:
        assert _selects(default_deny["spec"]["podSelector"], _component_pod(rendered, component)[1])


def test_the_default_render_has_no_network_policy_and_no_disruption_budget(
    default_render: Rendered,
) -> None:
    assert default_render.of_kind("NetworkPolicy") == []
    assert default_render.of_kind("PodDisruptionBudget") == []
    assert default_render.of_kind("HorizontalPodAutoscaler") == []
    for component in COMPONENTS:
        assert default_render.deployment(component)["spec"]["replicas"] == 1
        assert default_render.get("ServiceAccount", f"{RELEASE}-{component}")
