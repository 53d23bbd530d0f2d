"""The echo contract used to test the edge and the supervisor: compiled at test time."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from grpc_tools import protoc

FIXTURES = Path(__file__).parent / "fixtures"
REPO_ROOT = Path(__file__).resolve().parents[3]
ECHO_SERVICE = "switchboard.devtest.v1.EchoService"


@dataclass(frozen=True)
class EchoProtos:
    descriptor: Path
    pb2: ModuleType
    pb2_grpc: ModuleType


def _googleapis_include() -> Path:
    vendored = REPO_ROOT / "third_party" / "googleapis"
    if (vendored / "google" / "api" / "annotations.proto").is_file():
        return vendored
    # Before the vendored copy exists: googleapis-common-protos ships the same .proto files.
    import google.api

    return Path(next(iter(google.api.__path__))).parent.parent


def compile_echo_protos(out: Path) -> Path:
    """Compile echo.proto into `out` (descriptor set with imports and source info, as
    `make proto` builds it, plus Python modules); return the descriptor's path."""
    descriptor = out / "descriptor.binpb"
    code = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{FIXTURES}",
            f"-I{_googleapis_include()}",
            f"-I{Path(protoc.__file__).parent / '_proto'}",
            "--include_imports",
            "--include_source_info",
            f"--descriptor_set_out={descriptor}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            "echo.proto",
        ]
    )
    if code != 0:
        raise RuntimeError("protoc failed on echo.proto")
    return descriptor


def import_echo_modules(descriptor: Path) -> EchoProtos:
    """Import the generated modules; their directory must be on sys.path."""
    return EchoProtos(
        descriptor=descriptor,
        pb2=importlib.import_module("echo_pb2"),
        pb2_grpc=importlib.import_module("echo_pb2_grpc"),
    )
