"""Rendering the Helm chart offline and reading the objects it makes, for the deploy tests."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import yaml

ROOT = Path(__file__).resolve().parents[3]
CHART_DIR = ROOT / "deploy" / "helm" / "switchboard"
PRODUCTION_VALUES = CHART_DIR / "values-production.example.yaml"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
DOCKERIGNORE = ROOT / "deploy" / "docker" / "Dockerfile.dockerignore"
RELEASE = "sb"
NAMESPACE = "switchboard"

#: Chart component → (values key, Python module); Envoy has no module of ours.
SERVICES: dict[str, tuple[str, str]] = {
    "gateway": ("gateway", "gateway"),
    "identity": ("identity", "identity"),
    "conversation": ("conversation", "conversation"),
    "llm-router": ("llmRouter", "llm_router"),
    "connectors": ("connectors", "connectors"),
}
COMPONENTS: dict[str, str] = {
    **{name: key for name, (key, _) in SERVICES.items()},
    "envoy": "envoy",
}
COMPONENT_LABEL = "app.kubernetes.io/component"


def production_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(PRODUCTION_VALUES.read_text())
    return values


@dataclass(frozen=True)
class Rendered:
    """The Kubernetes objects of one render (NOTES.txt left out)."""

    objects: tuple[dict[str, Any], ...]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        for obj in self.of_kind(kind):
            if obj["metadata"]["name"] == name:
                return obj
        raise KeyError(f"no {kind} named {name}")

    def of_component(self, component: str) -> list[dict[str, Any]]:
        return [
            obj
            for obj in self.objects
            if obj["metadata"].get("labels", {}).get(COMPONENT_LABEL) == component
        ]

    def deployment(self, component: str) -> dict[str, Any]:
        return self.get("Deployment", f"{RELEASE}-{component}")

    def container(self, component: str) -> dict[str, Any]:
        containers: list[dict[str, Any]] = self.deployment(component)["spec"]["template"]["spec"][
            "containers"
        ]
        assert len(containers) == 1
        return containers[0]

    def pod_templates(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for deployment in self.of_kind("Deployment"):
            yield deployment["metadata"]["name"], deployment["spec"]["template"]["spec"]


def render_manifests(
    chart: helm_python.Chart, values: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """Template path → rendered text, as `helm template sb -n switchboard` prints them."""
    return chart.render(dict(values) if values else None, name=RELEASE, namespace=NAMESPACE)


def render(chart: helm_python.Chart, values: Mapping[str, Any] | None = None) -> Rendered:
    objects: list[dict[str, Any]] = []
    for path, text in sorted(render_manifests(chart, values).items()):
        if not path.endswith(".yaml"):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return Rendered(tuple(objects))


def env_of(container: Mapping[str, Any]) -> dict[str, str]:
    """A container's plain environment variables (name → value)."""
    return {item["name"]: item["value"] for item in container.get("env", []) if "value" in item}


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge values (what `-f a.yaml -f b.yaml` does to maps)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged
