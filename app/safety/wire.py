"""What a job's child process sends its parent: data, never code.

``multiprocessing``'s ``Connection.recv()`` is ``pickle.loads``: whatever runs in the fenced child (a
class the user approved, a native parser's bug) could send a pickle that runs code in the unfenced
parent. So messages travel as JSON: :func:`dumps` in the child, :func:`loads` in the parent. JSON
has no types beyond numbers, strings, lists and dicts, so the few the results need are tagged:

- ``{"$path": "..."}`` a :class:`pathlib.Path`; ``{"$tuple": [...]}``; ``{"$bytes": "base64"}``;
  ``{"$map": [[key, value], ...]}`` a dict whose keys are not all strings;
- ``{"$array": {"dtype": "float32", "shape": [...], "data": "base64"}}`` a numpy array of numbers or
  booleans (no object arrays: never unpickled);
- ``{"$dc": "module:Class", "fields": {...}}`` a dataclass — only the classes named in
  :data:`WIRE_TYPES`, built with their own ``__init__`` from decoded fields.

Anything else — an unknown tag, a class not in the list, a field the class does not have, a message
over :data:`MAX_MESSAGE_BYTES`, nesting past :data:`MAX_DEPTH` — is :class:`InvalidMessage`.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib
import json
import math
import os
from pathlib import Path, PurePath
from typing import Any

MAX_MESSAGE_BYTES = 512 << 20
MAX_DEPTH = 64
# what decoding costs beyond the message's bytes: each JSON value (a ``,``, ``[``, ``{`` or ``:`` starts
# or separates one) becomes a Python object, counted twice (parsed, then decoded), at most this many bytes
DECODE_BYTES_PER_VALUE = 160
DECODE_BYTES_PER_BYTE = 4  # the message, a base64 string in it, its decoded bytes, an array's copy

# the dataclasses a job returns ("module:Class"), no more: each one is a class the child can make the
# parent build (logged over a whole test run: every job kind's result, nested); a test checks each resolves
WIRE_TYPES = frozenset({
    "app.pipeline:ConversionResult", "app.accuracy.verify:Verification", "app.accuracy.verify:OutputMetrics",
    "app.accuracy.evaluation:Evaluation", "app.accuracy.diagnose:NodeError",
    "app.bench.harness:BenchResult", "app.bench.harness:Measurement", "app.bench.harness:Skipped",
    "app.bench.harness:BenchConfig", "app.bench.stats:LatencyStats",
    "app.bench.sweep:SweepResult", "app.bench.sweep:SweepPoint", "app.bench.sweep:Proposal",
    "app.bench.optimize:OptimizeResult",
    "app.bench.profile:Profile", "app.bench.profile:NodeTime", "app.bench.profile:OpGroup",
    "app.serving.triton:ServingBundle", "app.serving.triton:TritonModelConfig", "app.serving.triton:TritonTensor",
})


class InvalidMessage(ValueError):
    """A message from a job's process that is not one this module writes."""


def _name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _encode(obj: Any, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise InvalidMessage("nested too deep")
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, PurePath):
        return {"$path": str(obj)}
    if isinstance(obj, (bytes, bytearray)):
        return {"$bytes": base64.b64encode(bytes(obj)).decode()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {"$dc": _name(type(obj)),
                "fields": {f.name: _encode(getattr(obj, f.name), depth + 1) for f in dataclasses.fields(obj)}}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in obj):
            return {k: _encode(v, depth + 1) for k, v in obj.items()}
        return {"$map": [[_encode(k, depth + 1), _encode(v, depth + 1)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"$tuple": [_encode(v, depth + 1) for v in obj]}
    if isinstance(obj, (list, set, frozenset)):
        return [_encode(v, depth + 1) for v in obj]
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dependency
        np = None
    if np is not None:
        if isinstance(obj, np.generic):
            return _encode(obj.item(), depth + 1)
        if isinstance(obj, np.ndarray):
            if obj.dtype.kind not in "biufc":
                raise InvalidMessage(f"an array of {obj.dtype} cannot travel (numbers and booleans only)")
            a = np.ascontiguousarray(obj)
            return {"$array": {"dtype": a.dtype.str, "shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode()}}
    raise InvalidMessage(f"a {type(obj).__name__} cannot travel between processes")


def dumps(obj: Any) -> bytes:
    """``obj`` as the bytes of one message (raises :class:`InvalidMessage` for a type that cannot travel)."""
    return json.dumps(_encode(obj), separators=(",", ":"), allow_nan=True).encode()


def _resolve(name: Any, kind: str) -> type:
    if not isinstance(name, str) or name not in WIRE_TYPES:
        raise InvalidMessage(f"{kind} {str(name)[:80]!r} is not one a job returns")
    module, _, qualname = name.partition(":")
    cls = importlib.import_module(module)
    for part in qualname.split("."):
        cls = getattr(cls, part)
    return cls


def _decode(obj: Any, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise InvalidMessage("nested too deep")
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, list):
        return [_decode(v, depth + 1) for v in obj]
    if not isinstance(obj, dict):
        raise InvalidMessage(f"unexpected {type(obj).__name__}")
    tags = [k for k in obj if k.startswith("$")]
    if not tags:
        return {k: _decode(v, depth + 1) for k, v in obj.items()}
    tag = tags[0]
    body = obj[tag]
    if tag == "$path" and isinstance(body, str) and len(obj) == 1:
        return Path(body)
    if tag == "$tuple" and isinstance(body, list) and len(obj) == 1:
        return tuple(_decode(v, depth + 1) for v in body)
    if tag == "$bytes" and isinstance(body, str) and len(obj) == 1:
        return base64.b64decode(body, validate=True)
    if tag == "$map" and isinstance(body, list) and len(obj) == 1:
        out = {}
        for pair in body:
            if not (isinstance(pair, list) and len(pair) == 2):
                raise InvalidMessage("a malformed map")
            key = _decode(pair[0], depth + 1)
            if not isinstance(key, (str, int, float, bool, tuple, type(None))):
                raise InvalidMessage("an unhashable map key")
            out[key] = _decode(pair[1], depth + 1)
        return out
    if tag == "$array" and isinstance(body, dict) and len(obj) == 1:
        return _array(body)
    if tag == "$dc" and set(obj) == {"$dc", "fields"} and isinstance(obj["fields"], dict):
        cls = _resolve(body, "class")
        if not dataclasses.is_dataclass(cls):
            raise InvalidMessage(f"{body} is not a dataclass")
        known = {f.name: f for f in dataclasses.fields(cls)}
        values = {k: _decode(v, depth + 1) for k, v in obj["fields"].items()}
        if set(values) - set(known):
            raise InvalidMessage(f"{body} has no field {sorted(set(values) - set(known))[0]!r}")
        try:
            made = cls(**{k: v for k, v in values.items() if known[k].init})
        except (TypeError, ValueError, OverflowError) as e:
            raise InvalidMessage(f"{body}: {e}") from None
        for k, v in values.items():
            if not known[k].init:
                object.__setattr__(made, k, v)
        return made
    raise InvalidMessage(f"unknown tag {tag[:40]!r}")


def _array(body: dict):
    import numpy as np

    try:
        dtype = np.dtype(str(body["dtype"]))
        shape = [int(n) for n in body["shape"]]
        data = base64.b64decode(body["data"], validate=True)
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        raise InvalidMessage(f"a malformed array ({e})") from None
    if dtype.kind not in "biufc" or dtype.hasobject or any(n < 0 for n in shape):
        raise InvalidMessage(f"an array of {dtype} is not data")
    if len(data) != dtype.itemsize * math.prod(shape):
        raise InvalidMessage("an array whose data does not match its shape")
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def memory_budget() -> int:
    """Bytes the parent may spend decoding one message: ``DEPLOYSTUDIO_RESULT_MEMORY_MB``, else half the
    memory available now and at most 2 GiB (at least 256 MiB; 2 GiB where that cannot be read): the
    window's process must not give a job's result more (a real result — figures, arrays as raw bytes —
    needs a small part of it)."""
    if os.environ.get("DEPLOYSTUDIO_RESULT_MEMORY_MB"):
        return int(os.environ["DEPLOYSTUDIO_RESULT_MEMORY_MB"]) << 20
    from app.safety.sandbox import available_memory

    available = available_memory()
    return 2 << 30 if available is None else max(min(available // 2, 2 << 30), 256 << 20)


def message_limit() -> int:
    """The longest message the parent reads: :data:`MAX_MESSAGE_BYTES`, less where the memory budget
    could not decode even a message of base64 data that long."""
    return min(MAX_MESSAGE_BYTES, memory_budget() // DECODE_BYTES_PER_BYTE)


def decode_cost(data: bytes) -> int:
    """An upper bound of the memory (bytes) decoding ``data`` takes, from a scan of its bytes."""
    values = 1 + sum(data.count(c) for c in (b",", b"[", b"{", b":"))
    return DECODE_BYTES_PER_BYTE * len(data) + DECODE_BYTES_PER_VALUE * values


def loads(data: bytes) -> Any:
    """The object :func:`dumps` wrote; :class:`InvalidMessage` for anything else — a message over the
    limits, one whose decoding would take more memory than :func:`memory_budget`, one that is not JSON,
    one nested past :data:`MAX_DEPTH`, numbers a field cannot hold, or any failure of the classes'
    own checks."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise InvalidMessage(f"the message is too large (over {MAX_MESSAGE_BYTES >> 20} MiB)")
    cost, budget = decode_cost(data), memory_budget()
    if cost > budget:
        raise InvalidMessage(f"decoding it would take about {cost >> 20} MiB of memory, over the "
                             f"{budget >> 20} MiB this process may spend on it")
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError) as e:
        raise InvalidMessage(f"not JSON ({str(e)[:80]})") from None
    try:
        return _decode(parsed)
    except InvalidMessage:
        raise
    except RecursionError:
        raise InvalidMessage("nested too deep") from None
    except Exception as e:  # noqa: BLE001 - OverflowError, MemoryError, a class's own checks: all invalid
        raise InvalidMessage(f"it does not decode ({type(e).__name__}: {str(e)[:80]})") from None
