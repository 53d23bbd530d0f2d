#!/usr/bin/env python3
"""Recreate buf/validate/validate.proto from the descriptor embedded in protovalidate.

The installed ``protovalidate`` wheel does not ship validate.proto as text, but its
generated module ``protovalidate/_gen/buf/validate/validate_pb.py`` passes the full
serialized ``FileDescriptorProto`` to ``file_desc(...)``. This script pulls that bytes
literal out of the module source (with ``ast``, so we get the exact embedded bytes and
nothing is executed), and prints an equivalent .proto source file, including custom
option values such as ``(buf.validate.predefined).cel = {...}``.

Regenerate:

    .venv/bin/python tools/proto_vendor/descriptor_to_proto.py \\
        -o third_party/protovalidate/buf/validate/validate.proto

Check (compiles the output with protoc and compares descriptors):

    .venv/bin/python tools/proto_vendor/check_validate_proto.py

The renderer is deliberately generic (proto2, proto3 and editions files; messages,
nested types, maps, oneofs, enums, services, extensions, reserved/extension ranges,
defaults, json_name and any option, standard or custom), but it only has to be
exactly right for validate.proto; the check script is what proves that. Comments
cannot be recovered: the embedded descriptor has no source_code_info.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.metadata
import importlib.util
import math
import struct
import sys
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, unknown_fields
from google.protobuf.descriptor import FieldDescriptor

PROTO_NAME = "buf/validate/validate.proto"
GEN_MODULE_REL = Path("_gen/buf/validate/validate_pb.py")
REGEN_CMD = (
    ".venv/bin/python tools/proto_vendor/descriptor_to_proto.py"
    " -o third_party/protovalidate/buf/validate/validate.proto"
)

# --------------------------------------------------------------------------------------
# Loading the embedded descriptor
# --------------------------------------------------------------------------------------


def generated_module_path() -> Path:
    spec = importlib.util.find_spec("protovalidate")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("protovalidate is not installed in this interpreter")
    return Path(next(iter(spec.submodule_search_locations))) / GEN_MODULE_REL


def embedded_descriptor_bytes(path: Path | None = None) -> bytes:
    """Return the bytes literal passed as first argument to ``file_desc(...)``."""
    path = path or generated_module_path()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "file_desc"
        ):
            data = ast.literal_eval(node.args[0])
            if not isinstance(data, bytes):
                raise SystemExit(f"{path}: first argument of file_desc() is not bytes")
            return data
    raise SystemExit(f"{path}: no file_desc(...) call found")


def licence_header(path: Path | None = None) -> list[str]:
    """The leading ``#`` comment block of the generated module (Buf's licence notice)."""
    path = path or generated_module_path()
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].removeprefix(" ").rstrip())
    return lines


def protovalidate_version() -> str:
    return importlib.metadata.version("protovalidate")


def build_pool(file_bytes: bytes) -> descriptor_pool.DescriptorPool:
    """A fresh pool with the file and its (well-known-type) dependencies.

    Having validate.proto itself in the pool means that descriptor.proto's *Options
    messages, when instantiated from this pool, know the buf.validate extensions, so
    custom options are parsed as extensions instead of unknown fields.
    """
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def add_dep(name: str) -> None:
        if name in added:
            return
        if not name.startswith("google/protobuf/"):
            raise SystemExit(f"don't know where to get dependency {name!r}")
        stem = name.removeprefix("google/protobuf/").removesuffix(".proto")
        module = importlib.import_module(f"google.protobuf.{stem}_pb2")
        proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(proto)
        for dep in proto.dependency:
            add_dep(dep)
        pool.Add(proto)
        added.add(name)

    fdp = descriptor_pb2.FileDescriptorProto.FromString(file_bytes)
    for dep in ("google/protobuf/descriptor.proto", *fdp.dependency):
        add_dep(dep)
    pool.Add(fdp)
    return pool


def parse_file_descriptor(file_bytes: bytes, pool: descriptor_pool.DescriptorPool):
    """Parse bytes as FileDescriptorProto using *pool*'s classes (extensions resolved)."""
    cls = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("google.protobuf.FileDescriptorProto")
    )
    msg = cls.FromString(file_bytes)
    assert_no_unknown_fields(msg, "file")
    return msg


def assert_no_unknown_fields(msg, where: str) -> None:
    if len(unknown_fields.UnknownFieldSet(msg)):
        raise SystemExit(f"{where}: unknown fields left after parsing (missing extension?)")
    for field, value in msg.ListFields():
        if field.message_type is None:
            continue
        for i, sub in enumerate(value if field.is_repeated else [value]):
            assert_no_unknown_fields(sub, f"{where}.{field.name}[{i}]")


# --------------------------------------------------------------------------------------
# Literals
# --------------------------------------------------------------------------------------

_SIMPLE_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def quote_str(value: str) -> str:
    """Double-quoted literal valid in .proto and text format. Single quotes stay as-is
    (CEL uses lots of them); non-ASCII is kept as UTF-8."""
    out = []
    for ch in value:
        if ch in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\{ord(ch):03o}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def quote_bytes(value: bytes) -> str:
    out = []
    for b in value:
        ch = chr(b)
        if ch in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[ch])
        elif 0x20 <= b < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'


def format_float(value: float, single: bool) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if single:  # shortest repr that round-trips through float32
        packed = struct.pack("<f", value)
        for digits in range(1, 18):
            text = f"{value:.{digits}g}"
            if struct.pack("<f", float(text)) == packed:
                return text
    return repr(value)


def scalar_literal(field: FieldDescriptor, value) -> str:
    """A field value (from a parsed options message) as a .proto / text-format literal."""
    if field.type == FieldDescriptor.TYPE_ENUM:
        enum_value = field.enum_type.values_by_number.get(value)
        return enum_value.name if enum_value else str(value)
    if field.type == FieldDescriptor.TYPE_BOOL:
        return "true" if value else "false"
    if field.type == FieldDescriptor.TYPE_STRING:
        return quote_str(value)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return quote_bytes(value)
    if field.type in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return format_float(value, single=field.type == FieldDescriptor.TYPE_FLOAT)
    return str(value)


def text_format_lines(msg, indent: str = "  ") -> list[str]:
    """Protobuf text format body of *msg* (one field per line), with our string quoting."""
    lines = []
    for field, value in msg.ListFields():
        name = f"[{field.full_name}]" if field.is_extension else field.name
        for item in value if field.is_repeated else [value]:
            if field.message_type is not None:
                body = text_format_lines(item, indent)
                if body:
                    lines.append(f"{name} {{")
                    lines += [indent + line for line in body]
                    lines.append("}")
                else:
                    lines.append(f"{name} {{}}")
            else:
                lines.append(f"{name}: {scalar_literal(field, item)}")
    return lines


# --------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------


def option_assignments(options, prefix: str = "") -> list[tuple[str, list[str]]]:
    """Flatten an *Options message into ``(option_name, value_lines)`` assignments.

    Singular sub-messages become dotted paths (``(buf.validate.predefined).cel``,
    ``features.field_presence``); repeated fields get one assignment per element, which
    protoc appends in order; message elements use the aggregate ``{ ... }`` syntax.
    """
    result: list[tuple[str, list[str]]] = []
    for field, value in options.ListFields():
        name = prefix + (f"({field.full_name})" if field.is_extension else field.name)
        if field.message_type is not None and not field.is_repeated:
            nested = option_assignments(value, name + ".")
            result += nested or [(name, ["{}"])]
            continue
        for item in value if field.is_repeated else [value]:
            if field.message_type is not None:
                body = ["  " + line for line in text_format_lines(item)]
                result.append((name, ["{", *body, "}"] if body else ["{}"]))
            else:
                result.append((name, [scalar_literal(field, item)]))
    return result


def render_assignment(name: str, value_lines: list[str], indent: str) -> list[str]:
    """``name = value`` where continuation lines of the value are indented by *indent*."""
    return [f"{name} = {value_lines[0]}", *(indent + line for line in value_lines[1:])]


# --------------------------------------------------------------------------------------
# Renderer
# --------------------------------------------------------------------------------------

_SCALAR_TYPES = {
    FieldDescriptor.TYPE_DOUBLE: "double",
    FieldDescriptor.TYPE_FLOAT: "float",
    FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_UINT64: "uint64",
    FieldDescriptor.TYPE_INT32: "int32",
    FieldDescriptor.TYPE_FIXED64: "fixed64",
    FieldDescriptor.TYPE_FIXED32: "fixed32",
    FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BYTES: "bytes",
    FieldDescriptor.TYPE_UINT32: "uint32",
    FieldDescriptor.TYPE_SFIXED32: "sfixed32",
    FieldDescriptor.TYPE_SFIXED64: "sfixed64",
    FieldDescriptor.TYPE_SINT32: "sint32",
    FieldDescriptor.TYPE_SINT64: "sint64",
}
_LABELS = {
    descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL: "optional",
    descriptor_pb2.FieldDescriptorProto.LABEL_REQUIRED: "required",
    descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED: "repeated",
}
MAX_FIELD_NUMBER = 536870911  # 2**29 - 1; "max" in message reserved/extension ranges
MAX_ENUM_NUMBER = 2147483647  # "max" in enum reserved ranges
INLINE_LIMIT = 100


def default_json_name(name: str) -> str:
    """protoc's ToJsonName: drop underscores, upper-case the following character."""
    out, upper = [], False
    for ch in name:
        if ch == "_":
            upper = True
        elif upper:
            out.append(ch.upper())
            upper = False
        else:
            out.append(ch)
    return "".join(out)


class ProtoRenderer:
    def __init__(self, fdp, pool: descriptor_pool.DescriptorPool):
        self.fdp = fdp
        self.out: list[str] = []
        if fdp.syntax in ("", "proto2"):
            self.syntax = "proto2"
        elif fdp.syntax == "proto3":
            self.syntax = "proto3"
        elif fdp.syntax == "editions":
            self.syntax = "editions"
        else:
            raise SystemExit(f"unsupported syntax {fdp.syntax!r}")
        self.symbols = self._collect_symbols(fdp, pool)

    # ---- name resolution -------------------------------------------------------------

    def _collect_symbols(self, fdp, pool) -> set[str]:
        symbols: set[str] = set()

        def add_package(package: str) -> None:
            parts = package.split(".") if package else []
            for i in range(1, len(parts) + 1):
                symbols.add(".".join(parts[:i]))

        def add_enum(scope: str, enum) -> None:
            symbols.add(f"{scope}{enum.name}")
            for value in enum.value:  # enum values are siblings of their enum
                symbols.add(f"{scope}{value.name}")

        def add_message(scope: str, msg) -> None:
            full = f"{scope}{msg.name}"
            symbols.add(full)
            for item in (*msg.field, *msg.extension, *msg.oneof_decl):
                symbols.add(f"{full}.{item.name}")
            for enum in msg.enum_type:
                add_enum(full + ".", enum)
            for nested in msg.nested_type:
                add_message(full + ".", nested)

        def add_file(proto) -> None:
            add_package(proto.package)
            scope = proto.package + "." if proto.package else ""
            for msg in proto.message_type:
                add_message(scope, msg)
            for enum in proto.enum_type:
                add_enum(scope, enum)
            for item in (*proto.extension, *proto.service):
                symbols.add(f"{scope}{item.name}")

        add_file(fdp)
        for dep in fdp.dependency:
            dep_proto = descriptor_pb2.FileDescriptorProto()
            pool.FindFileByName(dep).CopyToProto(dep_proto)
            add_file(dep_proto)
        return symbols

    def _lookup(self, name: str, scope: str) -> str | None:
        """Conservative model of protoc's scoped lookup of a relative name."""
        first = name.split(".")[0]
        scope_parts = scope.split(".") if scope else []
        for i in range(len(scope_parts), -1, -1):
            prefix = ".".join(scope_parts[:i])
            if (f"{prefix}.{first}" if prefix else first) in self.symbols:
                full = f"{prefix}.{name}" if prefix else name
                return full if full in self.symbols else None
        return None

    def type_ref(self, type_name: str, scope: str) -> str:
        """Shortest name for fully-qualified *type_name* (".a.b.C") that resolves
        back to it from *scope*; falls back to the fully-qualified form."""
        full = type_name.lstrip(".")
        parts = full.split(".")
        for i in range(len(parts) - 1, -1, -1):
            candidate = ".".join(parts[i:])
            if self._lookup(candidate, scope) == full:
                return candidate
        return "." + full

    # ---- output helpers ---------------------------------------------------------------

    def emit(self, indent: str, line: str = "") -> None:
        self.out.append(indent + line if line else "")

    def emit_options(self, options, indent: str) -> None:
        for name, value_lines in option_assignments(options):
            lines = render_assignment(name, value_lines, indent)
            self.emit(indent, "option " + lines[0])
            self.out.extend(lines[1:])
            self.out[-1] += ";"

    def inline_options(self, head: str, items: list[tuple[str, list[str]]], indent: str) -> None:
        """Emit ``head [a = b, c = {...}];`` (or just ``head;``)."""
        if not items:
            self.emit(indent, head + ";")
            return
        if len(items) == 1:
            lines = render_assignment(*items[0], indent)
            self.emit(indent, f"{head} [{lines[0]}")
            self.out.extend(lines[1:])
            self.out[-1] += "];"
            return
        if all(len(value) == 1 for _, value in items):
            flat = ", ".join(f"{name} = {value[0]}" for name, value in items)
            if len(indent) + len(head) + len(flat) + 4 <= INLINE_LIMIT:
                self.emit(indent, f"{head} [{flat}];")
                return
        self.emit(indent, head + " [")
        inner = indent + "  "
        for i, (name, value_lines) in enumerate(items):
            lines = render_assignment(name, value_lines, inner)
            self.emit(inner, lines[0])
            self.out.extend(lines[1:])
            if i < len(items) - 1:
                self.out[-1] += ","
        self.emit(indent, "];")

    @staticmethod
    def range_text(start: int, end: int, max_value: int) -> str:
        """Inclusive range as ``N``, ``N to M`` or ``N to max``."""
        if start == end:
            return str(start)
        return f"{start} to {'max' if end == max_value else end}"

    # ---- file -------------------------------------------------------------------------

    def render(self, header: list[str]) -> str:
        fdp = self.fdp
        for line in header:
            self.emit("", f"// {line}".rstrip())
        self.emit("")
        if self.syntax == "editions":
            edition = descriptor_pb2.Edition.Name(fdp.edition).removeprefix("EDITION_")
            self.emit("", f'edition = "{edition}";')
        else:
            self.emit("", f'syntax = "{self.syntax}";')
        self.emit("")
        if fdp.package:
            self.emit("", f"package {fdp.package};")
            self.emit("")
        public = set(fdp.public_dependency)
        weak = set(fdp.weak_dependency)
        for i, dep in enumerate(fdp.dependency):
            modifier = "public " if i in public else "weak " if i in weak else ""
            self.emit("", f'import {modifier}"{dep}";')
        if fdp.dependency:
            self.emit("")
        if fdp.HasField("options"):
            self.emit_options(fdp.options, "")
            self.emit("")
        scope = fdp.package
        for msg in fdp.message_type:
            self.render_message(msg, scope, "")
            self.emit("")
        for enum in fdp.enum_type:
            self.render_enum(enum, "")
            self.emit("")
        for service in fdp.service:
            self.render_service(service, scope)
            self.emit("")
        self.render_extensions(fdp.extension, scope, "")
        while self.out and self.out[-1] == "":
            self.out.pop()
        return "\n".join(self.out) + "\n"

    # ---- messages ---------------------------------------------------------------------

    def render_message(self, msg, parent_scope: str, indent: str) -> None:
        scope = f"{parent_scope}.{msg.name}" if parent_scope else msg.name
        inner = indent + "  "
        self.emit(indent, f"message {msg.name} {{")
        if msg.HasField("options"):
            self.emit_options(msg.options, inner)

        map_entries = {
            f"{scope}.{nested.name}": nested
            for nested in msg.nested_type
            if nested.options.map_entry
        }
        for enum in msg.enum_type:
            self.render_enum(enum, inner)
        # Nested messages go before the fields, except that protoc creates a map field's
        # entry type at the point where the map field is declared: emit fields up to each
        # map field before the nested types that follow its entry, to keep nested_type order.
        fields = list(msg.field)
        emitted = 0
        for nested in msg.nested_type:
            entry_name = f"{scope}.{nested.name}"
            if entry_name in map_entries:
                map_field = next(
                    i for i, f in enumerate(fields) if f.type_name.lstrip(".") == entry_name
                )
                self.render_fields(msg, fields[emitted : map_field + 1], scope, inner, map_entries)
                emitted = map_field + 1
            else:
                self.render_message(nested, scope, inner)
        self.render_fields(msg, fields[emitted:], scope, inner, map_entries)
        # Oneofs without fields can't be expressed in .proto source.
        declared = {f.oneof_index for f in msg.field if f.HasField("oneof_index")}
        if len(declared) != len(msg.oneof_decl):
            raise SystemExit(f"{scope}: oneof without fields")
        self.render_extensions(msg.extension, scope, inner)

        max_excl = MAX_FIELD_NUMBER + 1
        for ext_range in msg.extension_range:
            text = self.range_text(ext_range.start, ext_range.end - 1, max_excl - 1)
            items = option_assignments(ext_range.options) if ext_range.HasField("options") else []
            self.inline_options(f"extensions {text}", items, inner)
        if msg.reserved_range:
            ranges = ", ".join(
                self.range_text(r.start, r.end - 1, max_excl - 1) for r in msg.reserved_range
            )
            self.emit(inner, f"reserved {ranges};")
        if msg.reserved_name:
            self.emit(inner, f"reserved {self.reserved_names(msg.reserved_name)};")
        self.emit(indent, "}")

    def render_fields(self, msg, fields, scope: str, indent: str, map_entries) -> None:
        """Render consecutive *fields* of *msg*, wrapping oneof members in ``oneof`` blocks.

        A oneof's members are contiguous in the descriptor, so a block never spans two
        calls (map fields, where calls are split, cannot be oneof members)."""
        synthetic = {
            f.oneof_index for f in msg.field if f.proto3_optional and f.HasField("oneof_index")
        }
        current_oneof = None
        for field in fields:
            in_oneof = field.HasField("oneof_index") and field.oneof_index not in synthetic
            oneof_index = field.oneof_index if in_oneof else None
            if oneof_index != current_oneof:
                if current_oneof is not None:
                    self.emit(indent, "}")
                if oneof_index is not None:
                    oneof = msg.oneof_decl[oneof_index]
                    self.emit(indent, f"oneof {oneof.name} {{")
                    if oneof.HasField("options"):
                        self.emit_options(oneof.options, indent + "  ")
                current_oneof = oneof_index
            field_indent = indent + "  " if in_oneof else indent
            self.render_field(
                field, scope, field_indent, in_oneof=in_oneof, map_entries=map_entries
            )
        if current_oneof is not None:
            self.emit(indent, "}")

    def reserved_names(self, names) -> str:
        if self.syntax == "editions":  # editions use identifiers, not strings
            return ", ".join(names)
        return ", ".join(quote_str(n) for n in names)

    def field_type(self, field, scope: str, map_entries) -> str:
        if field.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_ENUM):
            entry = map_entries.get(field.type_name.lstrip("."))
            if entry is not None:
                key, value = (self.field_type(f, scope, {}) for f in entry.field)
                return f"map<{key}, {value}>"
            return self.type_ref(field.type_name, scope)
        if field.type == FieldDescriptor.TYPE_GROUP:
            if self.syntax != "editions":
                raise SystemExit(f"{scope}.{field.name}: proto2 groups are not supported")
            return self.type_ref(field.type_name, scope)  # DELIMITED, carried by features
        return _SCALAR_TYPES[field.type]

    def field_label(self, field, in_oneof: bool, is_map: bool) -> str:
        if in_oneof or is_map:
            return ""
        if field.label == descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED:
            return "repeated "
        if self.syntax == "proto2":
            return _LABELS[field.label] + " "
        if self.syntax == "proto3" and field.proto3_optional:
            return "optional "
        return ""

    def default_literal(self, field, scope: str) -> str:
        value = field.default_value
        if field.type == FieldDescriptor.TYPE_STRING:
            return quote_str(value)
        if field.type == FieldDescriptor.TYPE_BYTES:
            return f'"{value}"'  # already C-escaped in the descriptor
        return value  # numbers, inf/-inf/nan, true/false, enum value names

    def render_field(self, field, scope: str, indent: str, *, in_oneof: bool, map_entries) -> None:
        type_text = self.field_type(field, scope, map_entries)
        label = self.field_label(field, in_oneof, type_text.startswith("map<"))
        head = f"{label}{type_text} {field.name} = {field.number}"
        items: list[tuple[str, list[str]]] = []
        if field.HasField("default_value"):
            items.append(("default", [self.default_literal(field, scope)]))
        if (
            not field.HasField("extendee")
            and field.HasField("json_name")
            and field.json_name != default_json_name(field.name)
        ):
            items.append(("json_name", [quote_str(field.json_name)]))
        if field.HasField("options"):
            items += option_assignments(field.options)
        self.inline_options(head, items, indent)

    # ---- enums, services, extensions ----------------------------------------------------

    def render_enum(self, enum, indent: str) -> None:
        inner = indent + "  "
        self.emit(indent, f"enum {enum.name} {{")
        if enum.HasField("options"):
            self.emit_options(enum.options, inner)
        for value in enum.value:
            items = option_assignments(value.options) if value.HasField("options") else []
            self.inline_options(f"{value.name} = {value.number}", items, inner)
        if enum.reserved_range:
            ranges = ", ".join(
                self.range_text(r.start, r.end, MAX_ENUM_NUMBER) for r in enum.reserved_range
            )
            self.emit(inner, f"reserved {ranges};")
        if enum.reserved_name:
            self.emit(inner, f"reserved {self.reserved_names(enum.reserved_name)};")
        self.emit(indent, "}")

    def render_service(self, service, scope: str) -> None:
        self.emit("", f"service {service.name} {{")
        if service.HasField("options"):
            self.emit_options(service.options, "  ")
        for method in service.method:
            req = self.type_ref(method.input_type, scope)
            resp = self.type_ref(method.output_type, scope)
            req = ("stream " if method.client_streaming else "") + req
            resp = ("stream " if method.server_streaming else "") + resp
            head = f"  rpc {method.name}({req}) returns ({resp})"
            if method.HasField("options"):
                self.out.append(head + " {")
                self.emit_options(method.options, "    ")
                self.emit("  ", "}")
            else:
                self.out.append(head + ";")
        self.emit("", "}")

    def render_extensions(self, extensions, scope: str, indent: str) -> None:
        """``extend X { ... }`` blocks, grouping consecutive extensions of the same
        extendee so that declaration order is preserved."""
        group: list = []
        for i, ext in enumerate(extensions):
            group.append(ext)
            if i + 1 < len(extensions) and extensions[i + 1].extendee == ext.extendee:
                continue
            self.emit(indent, f"extend {self.type_ref(ext.extendee, scope)} {{")
            for member in group:
                self.render_field(member, scope, indent + "  ", in_oneof=False, map_entries={})
            self.emit(indent, "}")
            if indent == "":
                self.emit("")
            group = []


# --------------------------------------------------------------------------------------


def generate() -> str:
    module_path = generated_module_path()
    data = embedded_descriptor_bytes(module_path)
    pool = build_pool(data)
    fdp = parse_file_descriptor(data, pool)
    if fdp.name != PROTO_NAME:
        raise SystemExit(f"embedded descriptor is {fdp.name!r}, expected {PROTO_NAME!r}")
    version = protovalidate_version()
    header = [
        *licence_header(module_path),
        "",
        "GENERATED FILE - DO NOT EDIT.",
        f"Reconstructed from the FileDescriptorProto embedded in protovalidate {version}",
        "(PyPI wheel, Apache-2.0, Copyright Buf Technologies, Inc.):",
        f"  site-packages/protovalidate/{GEN_MODULE_REL.as_posix()}",
        "The embedded descriptor carries no comments; see https://github.com/bufbuild/protovalidate",
        "(or the docstrings of the module above) for documentation of each rule.",
        "",
        "Regenerate with:",
        f"  {REGEN_CMD}",
        "Verify with:",
        "  .venv/bin/python tools/proto_vendor/check_validate_proto.py",
    ]
    return ProtoRenderer(fdp, pool).render(header)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    args = parser.parse_args(argv)
    text = generate()
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
