#!/usr/bin/env python3
"""Check that the vendored validate.proto is equivalent to protovalidate's embedded descriptor.

Compiles third_party/protovalidate/buf/validate/validate.proto with grpc_tools.protoc
(--descriptor_set_out, no source info) and compares the resulting FileDescriptorProto
with the one embedded in the installed protovalidate wheel. Both are parsed with a
descriptor pool that knows the buf.validate extensions, so custom option values are
compared field by field, not as opaque unknown bytes. Also checks that regenerating
the .proto from the descriptor reproduces the checked-in file exactly.

Usage:
    .venv/bin/python tools/proto_vendor/check_validate_proto.py [--proto PATH]

Exit status: 0 if equivalent, 1 on any difference.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2, text_format
from grpc_tools import protoc

sys.path.insert(0, str(Path(__file__).resolve().parent))
import descriptor_to_proto as d2p

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PROTO = REPO_ROOT / "third_party/protovalidate" / d2p.PROTO_NAME


def compile_descriptor(proto: Path) -> bytes:
    """Serialized FileDescriptorProto of *proto* as compiled by grpc_tools.protoc."""
    include_root = proto.resolve().parents[len(Path(d2p.PROTO_NAME).parts) - 1]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "validate.binpb"
        # protoc.main() does not add grpc_tools' bundled well-known types itself
        # (only `python -m grpc_tools.protoc` does), so add them explicitly.
        wkt_include = Path(protoc.__file__).parent / "_proto"
        rc = protoc.main(
            [
                "protoc",
                f"-I{include_root}",
                f"-I{wkt_include}",
                f"--descriptor_set_out={out}",
                d2p.PROTO_NAME,
            ]
        )
        if rc != 0:
            raise SystemExit(f"protoc failed with exit code {rc}")
        fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    [fdp] = [f for f in fds.file if f.name == d2p.PROTO_NAME]
    fdp.ClearField("source_code_info")
    return fdp.SerializeToString()


def as_text(msg) -> list[str]:
    return text_format.MessageToString(msg, as_utf8=True).splitlines()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proto", type=Path, default=DEFAULT_PROTO)
    args = parser.parse_args(argv)

    ok = True
    embedded_bytes = d2p.embedded_descriptor_bytes()
    pool = d2p.build_pool(embedded_bytes)
    embedded = d2p.parse_file_descriptor(embedded_bytes, pool)
    if embedded.HasField("source_code_info"):
        embedded.ClearField("source_code_info")

    compiled = d2p.parse_file_descriptor(compile_descriptor(args.proto), pool)

    # 1. Semantic equality of the descriptors (options parsed with extensions known).
    same = embedded == compiled and embedded.SerializeToString(
        deterministic=True
    ) == compiled.SerializeToString(deterministic=True)
    if same:
        print(
            f"OK: {args.proto} compiles to the embedded descriptor "
            f"(protovalidate {d2p.protovalidate_version()})."
        )
    else:
        ok = False
        print("DIFFERENCE between embedded (---) and compiled (+++) descriptor:")
        sys.stdout.writelines(
            line + "\n"
            for line in difflib.unified_diff(
                as_text(embedded), as_text(compiled), "embedded", "compiled", lineterm=""
            )
        )

    # 2. Byte identity. The wheel's serializer writes some fields in a different order
    #    than protoc (e.g. json_name before options), so compare the embedded bytes both
    #    raw and after canonical re-serialization by the C++/upb runtime.
    compiled_bytes = compile_descriptor(args.proto)
    canonical = descriptor_pb2.FileDescriptorProto.FromString(embedded_bytes).SerializeToString()
    if compiled_bytes == embedded_bytes:
        print("OK: serialized bytes are identical.")
    elif compiled_bytes == canonical:
        print(
            "OK: serialized bytes are identical after canonical re-serialization "
            "(raw embedded bytes differ only in field order)."
        )
    else:
        ok = False
        print("DIFFERENCE: serialized bytes differ even after canonical re-serialization.")

    # 3. The checked-in file is what the generator currently produces.
    expected = d2p.generate()
    actual = args.proto.read_text(encoding="utf-8")
    if expected == actual:
        print("OK: file is up to date with the generator.")
    else:
        ok = False
        print(
            f"STALE: {args.proto} differs from generator output; regenerate with:\n"
            f"  {d2p.REGEN_CMD}"
        )
        sys.stdout.writelines(
            line + "\n"
            for line in difflib.unified_diff(
                actual.splitlines(), expected.splitlines(), "checked-in", "generated", lineterm=""
            )
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
