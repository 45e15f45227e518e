"""An ONNX file's size as a graph, read from its protobuf wire format before anything parses it.

Parsing an ONNX model (``onnx.load``) makes one Python protobuf message per node, attribute, tensor,
value info, dimension...: about 200 bytes each however small the message is in the file, where an
empty node takes 2 bytes. A 40 MB file of empty nodes cost 4.2 GB to parse (107×). :func:`scan_onnx`
walks the file's wire format (memory-mapped: the weights are skipped, never read) counting the messages
a parse would make, and refuses the file in one line past :func:`max_messages` (2,000,000 by default,
~400 MB of parsing at worst; ``DEPLOYSTUDIO_ONNX_MAX_MESSAGES`` raises it) before anything parses it.
It also returns the tensors whose data lies in external files (name and ``external_data`` entries), all
the unfenced process needs of the graph (the files to copy beside it, their sizes): the window's graph
path and the memory check read those here and never parse the model.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass, field
from pathlib import Path

from app.errors import ModelLoadError

DEFAULT_MAX_MESSAGES = 2_000_000
MAX_NESTING = 100            # protobuf's own recursion limit: a parse fails deeper anyway
EXTERNAL = 1                 # TensorProto.DataLocation.EXTERNAL

# the message-typed fields of every message type that can hold further messages, by field number
# (onnx.proto); fields not listed are scalars, strings or bytes, skipped without reading them
_STRING_ENTRY = "StringStringEntryProto"
SCHEMA: dict[str, dict[int, str]] = {
    "ModelProto": {7: "GraphProto", 8: "OperatorSetIdProto", 14: _STRING_ENTRY, 20: "TrainingInfoProto",
                   25: "FunctionProto"},
    "GraphProto": {1: "NodeProto", 5: "TensorProto", 15: "SparseTensorProto", 11: "ValueInfoProto",
                   12: "ValueInfoProto", 13: "ValueInfoProto", 14: "TensorAnnotation", 16: _STRING_ENTRY},
    "NodeProto": {5: "AttributeProto", 9: _STRING_ENTRY},
    "AttributeProto": {5: "TensorProto", 6: "GraphProto", 22: "SparseTensorProto", 14: "TypeProto",
                       10: "TensorProto", 11: "GraphProto", 23: "SparseTensorProto", 15: "TypeProto"},
    "TensorProto": {3: "Segment", 13: _STRING_ENTRY, 16: _STRING_ENTRY},
    "SparseTensorProto": {1: "TensorProto", 2: "TensorProto"},
    "FunctionProto": {7: "NodeProto", 9: "OperatorSetIdProto", 11: "AttributeProto", 12: "ValueInfoProto",
                      14: _STRING_ENTRY},
    "TrainingInfoProto": {1: "GraphProto", 2: "GraphProto", 3: _STRING_ENTRY, 4: _STRING_ENTRY},
    "ValueInfoProto": {2: "TypeProto", 4: _STRING_ENTRY},
    "TensorAnnotation": {2: _STRING_ENTRY},
    "TypeProto": {1: "TypeTensor", 4: "TypeSequence", 5: "TypeMap", 7: "TypeOpaque", 8: "TypeTensor",
                  9: "TypeSequence"},
    "TypeTensor": {2: "TensorShapeProto"},
    "TypeSequence": {1: "TypeProto"},
    "TypeMap": {2: "TypeProto"},
    "TensorShapeProto": {1: "Dimension"},
}


def max_messages() -> int:
    """The most messages a graph may hold (``DEPLOYSTUDIO_ONNX_MAX_MESSAGES``, else 2,000,000)."""
    try:
        return max(1, int(os.environ.get("DEPLOYSTUDIO_ONNX_MAX_MESSAGES", DEFAULT_MAX_MESSAGES)))
    except ValueError:
        return DEFAULT_MAX_MESSAGES


@dataclass
class Entry:
    key: str
    value: str


@dataclass
class ScannedTensor:
    """A tensor whose data lies in an external file, as :func:`onnx.external_data_helper.ExternalDataInfo`
    and :func:`~onnx.external_data_helper.uses_external_data` read it."""

    name: str
    external_data: list[Entry] = field(default_factory=list)
    data_location: int = EXTERNAL

    def HasField(self, name: str) -> bool:  # noqa: N802 - protobuf's name
        return name == "data_location"


@dataclass
class OnnxScan:
    messages: int               # protobuf messages a parse makes (nodes, attributes, tensors, ...)
    nodes: int                  # NodeProto among them (every graph, subgraph and function)
    external: list[ScannedTensor]


class OnnxTooLarge(ModelLoadError):
    """More messages than :func:`max_messages`: refused before any parse."""


class OnnxDamaged(ModelLoadError):
    """The wire format does not hold together (truncated, a length past the end, a bad wire type)."""


class _Damaged(Exception):
    pass


def _varint(buf, i: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if i >= end or shift > 63:
            raise _Damaged(i)
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def _skip(buf, i: int, end: int, wire: int, number: int) -> int:
    """The position after a field's value of wire type ``wire`` starting at ``i``."""
    if wire == 0:
        return _varint(buf, i, end)[1]
    if wire == 1:
        i += 8
    elif wire == 5:
        i += 4
    elif wire == 2:
        n, i = _varint(buf, i, end)
        i += n
    elif wire == 3:  # a group (unknown fields only): skip to its end tag
        while True:
            tag, i = _varint(buf, i, end)
            if tag & 7 == 4:
                if tag >> 3 != number:
                    raise _Damaged(i)
                return i
            i = _skip(buf, i, end, tag & 7, tag >> 3)
    else:
        raise _Damaged(i)
    if i > end:
        raise _Damaged(i)
    return i


def _text(buf, start: int, end: int) -> str:
    return bytes(buf[start:end]).decode("utf-8", "replace")


def _tensor(buf, start: int, end: int) -> tuple[ScannedTensor | None, int]:
    """The TensorProto in ``buf[start:end]``: itself when its data is external (else None), and the
    messages inside it (external_data and metadata entries, its segment)."""
    name, location, entries, inside, i = "", 0, [], 0, start
    while i < end:
        tag, i = _varint(buf, i, end)
        number, wire = tag >> 3, tag & 7
        if number == 14 and wire == 0:
            location, i = _varint(buf, i, end)
        elif number in (3, 8, 13, 16) and wire == 2:
            n, i = _varint(buf, i, end)
            if i + n > end:
                raise _Damaged(i)
            if number == 8:
                name = _text(buf, i, i + n)
            else:
                inside += 1
                if number == 13:
                    entries.append(_entry(buf, i, i + n))
            i += n
        else:
            i = _skip(buf, i, end, wire, number)
    return (ScannedTensor(name, entries) if location == EXTERNAL else None), inside


def _entry(buf, start: int, end: int) -> Entry:
    key = value = ""
    i = start
    while i < end:
        tag, i = _varint(buf, i, end)
        if tag >> 3 in (1, 2) and tag & 7 == 2:
            n, i = _varint(buf, i, end)
            if i + n > end:
                raise _Damaged(i)
            if tag >> 3 == 1:
                key = _text(buf, i, i + n)
            else:
                value = _text(buf, i, i + n)
            i += n
        else:
            i = _skip(buf, i, end, tag & 7, tag >> 3)
    return Entry(key, value)


def _walk(buf, size: int, limit: int) -> OnnxScan:
    """Every message of the ModelProto in ``buf`` counted, depth first (stops past ``limit``), external
    tensors kept. The stack holds one frame per level of nesting: [message type, position, end]."""
    scan = OnnxScan(1, 0, [])
    stack = [["ModelProto", 0, size]]
    while stack:
        frame = stack[-1]
        kind, i, end = frame
        fields, child = SCHEMA[kind], None
        while i < end:
            tag, i = _varint(buf, i, end)
            number, wire = tag >> 3, tag & 7
            sub = fields.get(number) if wire == 2 else None
            if sub is None:
                i = _skip(buf, i, end, wire, number)
                continue
            n, i = _varint(buf, i, end)
            if i + n > end:
                raise _Damaged(i)
            scan.messages += 1
            if sub == "NodeProto":
                scan.nodes += 1
            if scan.messages > limit:
                return scan
            if sub == "TensorProto":
                tensor, inside = _tensor(buf, i, i + n)
                scan.messages += inside
                if tensor is not None:
                    scan.external.append(tensor)
            elif sub in SCHEMA:
                child = [sub, i, i + n]
                i += n
                break
            i += n
        if i > end:
            raise _Damaged(i)
        if child is None:
            stack.pop()
            continue
        frame[1] = i  # resume after the child once it is done
        if len(stack) >= MAX_NESTING:
            raise _Damaged(child[1])
        stack.append(child)
    return scan


def scan_onnx(path: str | os.PathLike, *, limit: int | None = None, fileno: int | None = None) -> OnnxScan:
    """Count the messages parsing ``path`` (an ONNX file; ``fileno``: the same file, already open) would
    make and list its external-data tensors, without parsing it. Raises :class:`ModelLoadError` (one line)
    when it holds more than ``limit`` (:func:`max_messages`: :class:`OnnxTooLarge`) or its wire format is
    damaged (:class:`OnnxDamaged`)."""
    path = Path(path)
    limit = max_messages() if limit is None else limit
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)) if fileno is None else fileno
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            raise ModelLoadError(f"{path} is empty (0 bytes); re-export or re-download the model")
        with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as buf:
            scan = _walk(buf, size, limit)
    except _Damaged as e:
        raise OnnxDamaged(f"{path} is not a readable ONNX model: its protobuf is damaged or truncated "
                             f"(near byte {e.args[0]:,})") from None
    except (OSError, ValueError) as e:  # not mappable (not a regular file)
        raise ModelLoadError(f"{path}: cannot read ({getattr(e, 'strerror', None) or e})") from None
    finally:
        if fileno is None:
            os.close(fd)
    if scan.messages > limit:
        raise OnnxTooLarge(
            f"{path}: its graph holds more than {limit:,} nodes, tensors and other entries ({scan.nodes:,} nodes "
            f"among the first {limit:,}); refused before parsing it, which would take {limit * 200 / 2**30:.1f} GB "
            "or more (DEPLOYSTUDIO_ONNX_MAX_MESSAGES raises the limit)")
    return scan
