#!/usr/bin/env python3
"""Build a TensorRT engine from an ONNX file: the studio's builder, and its stand-alone hand-off script.

This file imports only the standard library at module level; TensorRT (and, for the GPU's name and
compute capability, optionally torch) is imported inside :func:`build_engine`, so ``--help`` works on
any machine. The studio copies it verbatim next to a hand-off ONNX; on the GPU machine run::

    python build_engine.py MODEL.onnx --engine MODEL.engine --inputs-json MODEL.inputs.json --workspace-mb 4096

It writes ``MODEL.engine`` (atomically: a temporary name, then a rename), the builder's timing cache
``MODEL.engine.timing.cache`` (reused by later builds on the same GPU) and ``MODEL.engine.tensorrt.json``
(TensorRT version, GPU, compute capability, CUDA version, the engine's SHA-256, inputs and outputs).

Precision lives in the ONNX graph (an fp16 graph, or explicit QuantizeLinear/DequantizeLinear for
int8): TensorRT 11 removed the FP16/INT8 builder flags and the INT8 calibrators, so the network is
created *strongly typed* and TensorRT keeps the graph's types. On TensorRT 10 ``--weakly-typed
--precision fp16|int8`` sets the old builder flags instead.

Dynamic dimensions get one optimization profile: ``min`` 1, ``opt`` the example size, and ``max``
``max(example * 4, 16)`` on axis 0 (a batch-like axis) or ``example * 2`` on any other axis.
Engines only run on the GPU model (compute capability) and TensorRT version that built them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

INSTALL_HINT = "pip install tensorrt on a machine with an NVIDIA GPU"
MANIFEST_SUFFIX = ".tensorrt.json"
TIMING_CACHE_SUFFIX = ".timing.cache"


class EngineBuildError(RuntimeError):
    """The engine could not be built; the message is one line meant for the user."""


class BuildCancelled(EngineBuildError):
    """``should_cancel`` (or Ctrl-C) stopped the build."""


# -- shapes -------------------------------------------------------------------------------------

def dynamic_label(name: str, axis: int) -> str:
    """The label of a dynamic dimension that has none: ``batch`` on axis 0, ``NAME_dimAXIS`` elsewhere."""
    return "batch" if axis == 0 else f"{name}_dim{axis}"


def profile_range(axis: int, example: int) -> tuple[int, int, int]:
    """(min, opt, max) of one dynamic dimension: 1, the example, and 4x (at least 16) on axis 0 or 2x."""
    example = max(int(example), 1)
    high = max(example * 4, 16) if axis == 0 else example * 2
    return 1, example, high


def profile_for(name: str, dims: Sequence[int | str], example: Sequence[int] | None) -> tuple[list, list, list] | None:
    """Profile shapes for one input whose ``dims`` hold -1 or str labels where dynamic; None when static.

    ``example`` gives the opt size of each dynamic dim (default: 1 on axis 0, else an error)."""
    if not any(_is_dynamic(d) for d in dims):
        return None
    lo, opt, hi = [], [], []
    for axis, d in enumerate(dims):
        if not _is_dynamic(d):
            lo.append(int(d)), opt.append(int(d)), hi.append(int(d))
            continue
        if example and len(example) == len(dims) and int(example[axis]) > 0:
            ex = int(example[axis])
        elif axis == 0:
            ex = 1
        else:
            raise EngineBuildError(f"input {name!r}: dimension {axis} is dynamic and no example size was given; "
                                   "list it in --inputs-json as {\"name\": ..., \"shape\": [...], \"example\": [...]}")
        a, b, c = profile_range(axis, ex)
        lo.append(a), opt.append(b), hi.append(c)
    return lo, opt, hi


def _is_dynamic(d) -> bool:
    return isinstance(d, str) or (isinstance(d, int) and d < 0)


def trtexec_shape(name: str, dims: Sequence[int]) -> str:
    """``name:1x3x224x224`` as trtexec's --minShapes/--optShapes/--maxShapes take it (names with ':' or ',' quoted)."""
    if any(c in name for c in ":,'"):
        name = "'" + name.replace("'", "") + "'"
    return f"{name}:" + "x".join(str(int(d)) for d in dims)


# -- machine ------------------------------------------------------------------------------------

def gpu_info(device: int = 0) -> dict:
    """GPU name, compute capability ("8.6"), CUDA runtime version (torch's) and driver; None where unknown."""
    info: dict = {"gpu": None, "compute_capability": None, "cuda": None, "driver": None}
    try:
        import torch

        info["cuda"] = torch.version.cuda
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(device)
            major, minor = torch.cuda.get_device_capability(device)
            info["compute_capability"] = f"{major}.{minor}"
    except Exception:  # noqa: BLE001 - torch is optional here
        pass
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "-i", str(device), "--query-gpu=name,compute_cap,driver_version",
                                  "--format=csv,noheader"], capture_output=True, text=True, timeout=20).stdout
            fields = [f.strip() for f in out.strip().splitlines()[0].split(",")] if out.strip() else []
            if len(fields) >= 3:
                info["gpu"] = info["gpu"] or fields[0]
                if info["compute_capability"] is None and fields[1] and fields[1][0].isdigit():
                    info["compute_capability"] = fields[1]
                info["driver"] = fields[2]
        except (OSError, subprocess.SubprocessError, IndexError):
            pass
    return info


def import_tensorrt():
    """``import tensorrt``; one clear line when it is missing or broken (the PyPI stub raises at import)."""
    here = Path(__file__).resolve().parent
    saved = list(sys.path)
    if (here / "tensorrt.py").exists():
        # run as a script from the studio's converters/ folder: its tensorrt.py would shadow TensorRT
        sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    try:
        import tensorrt as trt
    except Exception as e:  # noqa: BLE001
        detail = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise EngineBuildError(f"TensorRT is not installed or cannot be imported ({detail}); {INSTALL_HINT}") from None
    finally:
        sys.path[:] = saved
    if not hasattr(trt, "Builder"):
        raise EngineBuildError(f"'import tensorrt' found {getattr(trt, '__file__', '?')}, not NVIDIA TensorRT; "
                               f"rename that file or {INSTALL_HINT}")
    return trt


def trt_major(trt) -> int:
    return int(str(trt.__version__).split(".")[0])


DTYPE_NAMES = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT8": "int8", "INT32": "int32",
               "INT64": "int64", "BOOL": "bool", "UINT8": "uint8", "FP8": "float8_e4m3fn", "INT4": "int4",
               "FP4": "float4_e2m1fn", "DOUBLE": "float64"}


def dtype_name(dt) -> str:
    """A TensorRT DataType as the studio's dtype string (``float32``, ``int64``, ...)."""
    key = getattr(dt, "name", None) or str(dt).split(".")[-1]
    return DTYPE_NAMES.get(key, key.lower())


# -- files --------------------------------------------------------------------------------------

def _atomic_write(path: Path, data) -> str:
    """Write ``data`` (bytes-like) to ``path`` via a temporary file and os.replace; return its SHA-256."""
    path = Path(path)
    # a fresh name opened exclusively (mkstemp would make the file 0600; this keeps the umask's mode)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    h = hashlib.sha256()
    try:
        with open(tmp, "xb") as f:
            view = memoryview(data).cast("B")
            h.update(view)
            f.write(view)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return h.hexdigest()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    # the twin of app.artifacts.atomic_output.sha256: this file is copied alone to GPU machines, so it imports nothing of ours
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


# -- TensorRT callbacks -------------------------------------------------------------------------

def _make_logger(trt, echo: bool):
    class Logger(trt.ILogger):
        """Keeps TensorRT's errors for the failure message; echoes warnings and errors to stderr if asked."""

        def __init__(self):
            trt.ILogger.__init__(self)
            self.errors: list[str] = []
            self.warnings: list[str] = []

        def log(self, severity, msg):
            if severity in (trt.ILogger.Severity.INTERNAL_ERROR, trt.ILogger.Severity.ERROR):
                self.errors.append(str(msg))
            elif severity == trt.ILogger.Severity.WARNING:
                self.warnings.append(str(msg))
            else:
                return
            if echo:
                print(f"[TensorRT] {msg}", file=sys.stderr, flush=True)

    return Logger()


def _make_monitor(trt, progress, should_cancel):
    class Monitor(trt.IProgressMonitor):
        """Reports top-level builder phases as (stage, fraction); step_complete returns False to cancel."""

        def __init__(self):
            trt.IProgressMonitor.__init__(self)
            self.lock = threading.Lock()
            self.steps: dict[str, tuple[str | None, int]] = {}
            self.cancelled = False
            self.last: tuple[str, float] | None = None

        def _report(self, phase: str, fraction: float | None):
            if progress is None:
                return
            if fraction is not None and self.last and self.last[0] == phase and fraction - self.last[1] < 0.01 \
                    and fraction < 1.0:
                return
            self.last = (phase, fraction or 0.0)
            try:
                progress(f"build TensorRT engine: {phase}", fraction)
            except Exception:  # noqa: BLE001 - a broken callback must not abort the build
                pass

        def phase_start(self, phase_name, parent_phase, num_steps):
            with self.lock:
                self.steps[phase_name] = (parent_phase, int(num_steps))
                if not parent_phase:
                    self._report(phase_name, 0.0)

        def step_complete(self, phase_name, step):
            try:
                with self.lock:
                    parent, total = self.steps.get(phase_name, (None, 0))
                    if not parent and total:
                        self._report(phase_name, min((int(step) + 1) / total, 1.0))
                if should_cancel is not None and should_cancel():
                    self.cancelled = True
            except KeyboardInterrupt:
                self.cancelled = True
            except Exception:  # noqa: BLE001
                pass
            return not self.cancelled

        def phase_finish(self, phase_name):
            with self.lock:
                parent, _ = self.steps.pop(phase_name, (None, 0))
                if not parent:
                    self._report(phase_name, 1.0)

    return Monitor()


# -- the build ----------------------------------------------------------------------------------

def build_engine(onnx_path, engine_path, *, inputs: list[dict] | None = None, workspace_mb: int = 4096,
                 progress: Callable[[str, float | None], None] | None = None,
                 should_cancel: Callable[[], bool] | None = None, timing_cache=None,
                 strongly_typed: bool = True, precision: str | None = None, echo_log: bool = False) -> dict:
    """Build ``engine_path`` from ``onnx_path`` and return what was built (also written as
    ``<engine>.tensorrt.json``).

    ``inputs``: ``[{"name": ..., "shape": [1, 3, "h", 224], "example": [1, 3, 224, 224]}, ...]``
    — dynamic dims as str labels (or -1), example sizes as the profile's opt. Inputs the ONNX leaves
    dynamic but ``inputs`` does not list get 1 on axis 0; other dynamic dims need an example.
    ``timing_cache``: path of the cache to reuse and update (default ``<engine>.timing.cache``).
    ``strongly_typed=False`` (TensorRT 10 only) builds a weakly typed network with the FP16/INT8
    flag for ``precision``. Raises :class:`EngineBuildError` (:class:`BuildCancelled` when cancelled).
    """
    started = time.perf_counter()
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    if not onnx_path.is_file():
        raise EngineBuildError(f"{onnx_path}: no such ONNX file")
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    cache_path = Path(timing_cache) if timing_cache else engine_path.with_name(engine_path.name + TIMING_CACHE_SUFFIX)
    given = {d["name"]: d for d in (inputs or [])}

    def stage(name: str, fraction: float | None = None):
        if should_cancel is not None and should_cancel():
            raise BuildCancelled("cancelled by the user")
        if progress is not None:
            progress(name, fraction)

    stage("load TensorRT")
    trt = import_tensorrt()
    major = trt_major(trt)
    logger = _make_logger(trt, echo_log)
    try:
        builder = trt.Builder(logger)
    except Exception as e:  # noqa: BLE001 - e.g. no CUDA device
        builder, logger.errors[:0] = None, [str(e)]
    if builder is None:
        raise EngineBuildError("TensorRT cannot create a builder (no usable NVIDIA GPU or CUDA driver?)"
                               + _errors(logger))

    # network: strongly typed where TensorRT supports it (required on 11: precision is in the graph)
    kinds = trt.NetworkDefinitionCreationFlag
    flags, flag_names = 0, []
    if major >= 11:
        strongly_typed = True
    if strongly_typed and hasattr(kinds, "STRONGLY_TYPED"):
        flags |= 1 << int(kinds.STRONGLY_TYPED)
        flag_names.append("STRONGLY_TYPED")
    elif strongly_typed:
        strongly_typed = False  # TensorRT < 10 has no strongly typed networks
    if major < 10 and hasattr(kinds, "EXPLICIT_BATCH"):
        flags |= 1 << int(kinds.EXPLICIT_BATCH)
        flag_names.append("EXPLICIT_BATCH")
    network = builder.create_network(flags)

    stage("parse ONNX")
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):  # resolves external data relative to the file
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        first = errors[0].strip().replace("\n", " ")[:400] if errors else "no details"
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise EngineBuildError(f"TensorRT's ONNX parser rejected {onnx_path.name}: {first}{more}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) * (1 << 20))
    builder_flags = []
    if not strongly_typed and precision in ("fp16", "int8"):
        # weakly typed (TensorRT 10 and older): let the builder pick fp16/int8 kernels; int8 still
        # needs explicit Q/DQ in the graph (no calibrator is set)
        for flag in ("FP16", "INT8") if precision == "int8" else ("FP16",):
            if hasattr(trt.BuilderFlag, flag):
                config.set_flag(getattr(trt.BuilderFlag, flag))
                builder_flags.append(flag)

    # one optimization profile covering every dynamic input
    profile_info: dict[str, dict] = {}
    input_specs, output_specs = [], []
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        dims = list(tensor.shape)
        spec = given.get(tensor.name, {})
        shape_given = list(spec.get("shape") or [])
        example = list(spec.get("example") or [])
        if shape_given and len(shape_given) != len(dims):
            raise EngineBuildError(f"input {tensor.name!r} has {len(dims)} dimensions in the ONNX, "
                                   f"but {len(shape_given)} in the inputs list")
        if not example and shape_given and all(isinstance(d, int) and d > 0 for d in shape_given):
            example = shape_given
        shapes = profile_for(tensor.name, dims, example)
        labels = [(shape_given[a] if a < len(shape_given) and isinstance(shape_given[a], str)
                   else dynamic_label(tensor.name, a)) if _is_dynamic(d) else int(d) for a, d in enumerate(dims)]
        opt = shapes[1] if shapes else [int(d) for d in dims]
        input_specs.append({"name": tensor.name, "dtype": dtype_name(tensor.dtype), "shape": labels, "example": opt})
        if shapes:
            if getattr(tensor, "is_shape_tensor", False):
                raise EngineBuildError(f"input {tensor.name!r} is a shape tensor; this builder handles "
                                       "execution tensors only (use trtexec with --minShapes etc.)")
            profile.set_shape(tensor.name, *(tuple(s) for s in shapes))
            profile_info[tensor.name] = {"min": shapes[0], "opt": shapes[1], "max": shapes[2]}
    if profile_info:
        config.add_optimization_profile(profile)
    for i in range(network.num_outputs):
        tensor = network.get_output(i)
        dims = list(tensor.shape)
        output_specs.append({"name": tensor.name, "dtype": dtype_name(tensor.dtype),
                             "shape": [dynamic_label(tensor.name, a) if _is_dynamic(d) else int(d)
                                       for a, d in enumerate(dims)]})

    # timing cache: reuse the one from an earlier build on this GPU, start empty otherwise
    cache_note = "new"
    cache_bytes = b""
    if cache_path.is_file():
        cache_bytes = read_regular(cache_path)
        cache_note = "reused"
    cache = config.create_timing_cache(cache_bytes)
    if cache is None or not config.set_timing_cache(cache, ignore_mismatch=False):
        cache = config.create_timing_cache(b"")  # from another GPU or TensorRT version: start over
        config.set_timing_cache(cache, ignore_mismatch=False)
        cache_note = "replaced (the old one was built on another GPU or TensorRT version)"

    monitor = None
    if hasattr(trt, "IProgressMonitor"):
        monitor = _make_monitor(trt, progress, should_cancel)
        config.progress_monitor = monitor

    stage("build TensorRT engine", 0.0)
    try:
        serialized = builder.build_serialized_network(network, config)
    except KeyboardInterrupt:
        raise BuildCancelled("cancelled by the user") from None
    if serialized is None:
        if (monitor is not None and monitor.cancelled) or (should_cancel is not None and should_cancel()):
            raise BuildCancelled("cancelled by the user")
        raise EngineBuildError(f"TensorRT could not build an engine from {onnx_path.name}" + _errors(logger))

    stage("write engine")
    digest = _atomic_write(engine_path, serialized)
    size = engine_path.stat().st_size
    try:
        _atomic_write(cache_path, config.get_timing_cache().serialize())
        cache_written = str(cache_path)
    except (OSError, AttributeError, TypeError) as e:
        cache_written, cache_note = None, f"not written ({e})"
    info = {
        "format_version": 1,
        "engine": engine_path.name,
        "onnx": onnx_path.name,
        "sha256": digest,
        "size_bytes": size,
        "tensorrt": str(trt.__version__),
        **gpu_info(),
        "strongly_typed": bool(strongly_typed),
        "network_flags": flag_names,
        "builder_flags": builder_flags,
        "precision": precision,
        "workspace_mb": int(workspace_mb),
        "profile": profile_info,
        "profile_rule": "min 1, opt the example, max max(example*4, 16) on axis 0 and example*2 on other axes",
        "inputs": input_specs,
        "outputs": output_specs,
        "timing_cache": cache_written,
        "timing_cache_state": cache_note,
        "seconds": round(time.perf_counter() - started, 3),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "platform": f"{platform.system()} {platform.machine()}",
        "warnings": logger.warnings[-20:],
    }
    manifest = engine_path.with_name(engine_path.name + MANIFEST_SUFFIX)
    recorded = dict(info)  # file names relative to the engine's folder: the files move together
    if cache_written and cache_path.parent.resolve() == engine_path.parent.resolve():
        recorded["timing_cache"] = cache_path.name
    _atomic_write(manifest, json.dumps(recorded, indent=2).encode())
    info["manifest"] = str(manifest)
    return info


def _errors(logger) -> str:
    if not logger.errors:
        return ""
    first = logger.errors[-1].strip().replace("\n", " ")[:400]
    return f": {first}"


# -- command line -------------------------------------------------------------------------------

def read_regular(path: Path, limit: int | None = None) -> bytes:
    """The bytes of ``path``, refused (OSError) unless it is a regular file (a FIFO is not waited on) or
    when it is larger than ``limit``. (The twin of app.artifacts.json_file's reader: this file imports
    nothing of ours.)"""
    import stat

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path} is not a regular file")
        if limit is not None and st.st_size > limit:
            raise OSError(f"{path} is larger than {limit >> 20} MB")
        return f.read() if limit is None else f.read(limit + 1)


def read_inputs_json(path: Path) -> list[dict]:
    """A list of ``{"name", "shape", "example"}`` (or ``{"inputs": [...]}``)."""
    try:
        data = json.loads(read_regular(Path(path), 16 << 20))
    except (OSError, ValueError, RecursionError) as e:
        raise EngineBuildError(f"--inputs-json {path}: cannot read it ({e})") from None
    if isinstance(data, dict):
        data = data.get("inputs")
    if not isinstance(data, list) or not all(isinstance(d, dict) and "name" in d for d in data):
        raise EngineBuildError(f"--inputs-json {path}: expected a list of {{\"name\", \"shape\", \"example\"}} objects")
    return data


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog=Path(sys.argv[0]).name if argv is None else "build_engine.py",
        description="Build a TensorRT engine from an ONNX file (strongly typed: fp16/int8 come from the graph). "
                    "Writes ENGINE, ENGINE.timing.cache and ENGINE.tensorrt.json. Engines only run on the GPU "
                    "model and TensorRT version that built them.")
    ap.add_argument("onnx", type=Path, help="the .onnx model (external-data files beside it are read too)")
    ap.add_argument("--engine", type=Path, help="engine to write (default: the ONNX name with .engine)")
    ap.add_argument("--inputs-json", type=Path,
                    help="JSON list of {name, shape (ints, or strings for dynamic dims), example} for the "
                         "optimization profile: min 1, opt example, max max(example*4,16) on axis 0 / example*2")
    ap.add_argument("--workspace-mb", type=int, default=4096, help="builder workspace limit in MiB (default 4096)")
    ap.add_argument("--timing-cache", type=Path, help="timing cache to reuse/update (default ENGINE.timing.cache)")
    ap.add_argument("--weakly-typed", action="store_true",
                    help="TensorRT 10 only: weakly typed network with the --precision builder flag")
    ap.add_argument("--precision", choices=("fp32", "fp16", "int8"), help="builder flag for --weakly-typed")
    ap.add_argument("--verbose", action="store_true", help="print TensorRT's warnings while building")
    args = ap.parse_args(argv)
    engine = args.engine or args.onnx.with_suffix(".engine")
    last = [""]

    def progress(stage: str, fraction: float | None) -> None:
        text = stage + (f" {fraction:4.0%}" if fraction is not None else "")
        if text != last[0]:
            last[0] = text
            print(text, file=sys.stderr, flush=True)

    try:
        inputs = read_inputs_json(args.inputs_json) if args.inputs_json else None
        info = build_engine(args.onnx, engine, inputs=inputs, workspace_mb=args.workspace_mb, progress=progress,
                            timing_cache=args.timing_cache, strongly_typed=not args.weakly_typed,
                            precision=args.precision, echo_log=args.verbose)
    except BuildCancelled as e:
        print(f"error: {e}", file=sys.stderr)
        return 130
    except EngineBuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: cancelled by the user", file=sys.stderr)
        return 130
    print(f"{engine} ({info['size_bytes'] / 1e6:.2f} MB, {info['seconds']:.1f} s) built with TensorRT "
          f"{info['tensorrt']} on {info['gpu'] or 'unknown GPU'} (compute capability "
          f"{info['compute_capability'] or '?'}, CUDA {info['cuda'] or '?'}); sha256 {info['sha256']}")
    print(f"  + {info['manifest']}")
    if info["timing_cache"]:
        print(f"  + {info['timing_cache']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
