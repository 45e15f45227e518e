"""``tensorrt``: an ONNX graph with the precision in it, built into a TensorRT engine.

Precision is written into the ONNX first (:func:`converters.onnx_export.build_onnx` with
``for_tensorrt=True``: an fp16 graph, or symmetric signed int8 Q/DQ) and the engine is built from
a strongly typed network (:mod:`converters.tensorrt_build`): TensorRT 11 has no FP16/INT8 builder
flags and no INT8 calibrators any more.

Where TensorRT or an NVIDIA GPU is missing the target runs in *hand-off* mode: the artifact is the
TensorRT-ready ONNX ``{stem}.tensorrt.{precision}.onnx``, verified with ONNX Runtime, plus what
builds the engine on the GPU machine: a ``trtexec`` script, a verbatim copy of
``tensorrt_build.py`` and its inputs list. (``DEPLOY_STUDIO_TENSORRT_HANDOFF=1`` forces hand-off
mode on a machine that could build, e.g. to build for another GPU.)
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import threading
from pathlib import Path

from app.errors import Cancelled, ConversionFailed, ModelLoadError
from app.model import LoadedModel
from app.specs import TensorSpec
from converters import tensorrt_build
from converters.base import ALL_SOURCES, ConversionContext, Converter

FORCE_HANDOFF_ENV = "DEPLOY_STUDIO_TENSORRT_HANDOFF"
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")


@functools.lru_cache(maxsize=1)
def _probe() -> tuple[bool, str]:
    try:
        import tensorrt  # noqa: F401
    except Exception:  # noqa: BLE001 - the PyPI stub raises at import, broken installs raise anything
        return False, "TensorRT is not installed (pip install tensorrt on a machine with an NVIDIA GPU)"
    try:
        import torch

        if not torch.cuda.is_available():
            return False, "no NVIDIA GPU visible (torch.cuda.is_available() is False)"
    except Exception as e:  # noqa: BLE001
        return False, f"no NVIDIA GPU visible (torch cannot query CUDA: {type(e).__name__})"
    return True, ""


def _handoff_reason() -> str:
    """Why this run writes a hand-off ONNX instead of an engine; "" when it builds the engine."""
    ok, why = TensorRTConverter.available()
    if not ok:
        return why
    if os.environ.get(FORCE_HANDOFF_ENV, "").strip() not in ("", "0"):
        return f"{FORCE_HANDOFF_ENV} is set"
    return ""


class TensorRTConverter(Converter):
    """A TensorRT engine (fp32/fp16/int8 from the ONNX graph), or a hand-off ONNX + build scripts."""

    name = "tensorrt"
    label = "TensorRT"
    extension = ".engine"
    precisions = ("fp32", "fp16", "int8")
    sources = ALL_SOURCES

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return _probe()

    # -- names: the primary file is the engine, or in hand-off mode the ONNX it will be built from
    def artifact_name(self, stem: str, precision: str) -> str:
        return self.handoff_onnx_name(stem, precision) if _handoff_reason() else self.engine_name(stem, precision)

    @staticmethod
    def engine_name(stem: str, precision: str) -> str:
        return f"{stem}.{precision}.engine"

    @staticmethod
    def handoff_onnx_name(stem: str, precision: str) -> str:
        return f"{stem}.tensorrt.{precision}.onnx"

    @classmethod
    def _stem(cls, ctx: ConversionContext) -> str:
        precision = ctx.request.precision
        for suffix in (f".tensorrt.{precision}.onnx", f".{precision}.engine"):
            if ctx.artifact_name.endswith(suffix):
                return ctx.artifact_name[: -len(suffix)]
        return Path(ctx.artifact_name).stem

    # -- the work
    def convert(self, ctx: ConversionContext) -> list[Path]:
        from converters.onnx_export import build_onnx

        precision = ctx.request.precision
        stem = self._stem(ctx)
        reason = _handoff_reason()
        onnx_path = ctx.work_dir / self.handoff_onnx_name(stem, precision)
        # int8: biases stay float (QuantizeBias off in onnx_precision.to_int8): TensorRT's Q/DQ take int8 only
        onnx_files = build_onnx(ctx, precision, onnx_path, for_tensorrt=True)
        ctx.record["tensorrt_precision"] = ("precision in the ONNX graph (" + {
            "fp32": "float32", "fp16": "float16 weights and compute, float32 inputs/outputs",
            "int8": "explicit symmetric int8 QuantizeLinear/DequantizeLinear"}[precision]
            + "), built strongly typed")
        if reason:
            return self._handoff(ctx, stem, onnx_files, reason)
        return self._build(ctx, stem, onnx_files)

    def _build(self, ctx: ConversionContext, stem: str, onnx_files: list[Path]) -> list[Path]:
        engine = ctx.work_dir / self.engine_name(stem, ctx.request.precision)
        try:
            info = tensorrt_build.build_engine(onnx_files[0], engine, inputs=build_inputs(ctx.inputs),
                                               workspace_mb=ctx.request.workspace_mb, progress=ctx.progress,
                                               should_cancel=ctx.should_cancel, precision=ctx.request.precision)
        except tensorrt_build.BuildCancelled:
            raise Cancelled("cancelled by the user") from None
        except tensorrt_build.EngineBuildError as e:
            raise ConversionFailed(str(e)) from None
        finally:
            for f in onnx_files:  # the intermediate ONNX is not an artifact here
                f.unlink(missing_ok=True)
        ctx.record["tensorrt"] = {k: info.get(k) for k in (
            "tensorrt", "gpu", "compute_capability", "cuda", "driver", "sha256", "seconds", "strongly_typed",
            "network_flags", "builder_flags", "workspace_mb", "profile", "profile_rule", "timing_cache_state")}
        ctx.warnings.append(f"the engine only runs on {info.get('gpu') or 'this GPU model'} (compute capability "
                            f"{info.get('compute_capability') or '?'}) with TensorRT {info.get('tensorrt')}")
        files = [engine]
        if info.get("timing_cache"):
            files.append(Path(info["timing_cache"]))
        files.append(Path(info["manifest"]))
        return files

    def _handoff(self, ctx: ConversionContext, stem: str, onnx_files: list[Path], reason: str) -> list[Path]:
        precision = ctx.request.precision
        onnx_name = onnx_files[0].name
        base = f"{stem}.tensorrt.{precision}"
        engine_name = self.engine_name(stem, precision)
        ctx.stage("write TensorRT hand-off scripts")
        inputs = build_inputs(ctx.inputs)
        inputs_json = ctx.work_dir / f"{base}.inputs.json"
        inputs_json.write_text(json.dumps(inputs, indent=2) + "\n")
        script = ctx.work_dir / f"{base}.build_engine.py"
        script.write_bytes(Path(tensorrt_build.__file__).read_bytes())
        python_cmd = (f"python {shlex.quote(script.name)} {shlex.quote(onnx_name)} --engine {shlex.quote(engine_name)} "
                      f"--inputs-json {shlex.quote(inputs_json.name)} --workspace-mb {ctx.request.workspace_mb}")
        trtexec = ctx.work_dir / f"{base}.trtexec.sh"
        trtexec.write_text(trtexec_script(onnx_name, engine_name, ctx.inputs, ctx.request.workspace_mb, python_cmd,
                                          trtexec.name))
        for f in (script, trtexec):
            f.chmod(0o755)
        profile = {s.name: dict(zip(("min", "opt", "max"), shapes)) for s in ctx.inputs
                   if (shapes := profile_shapes(s))}
        ctx.record.update(
            handoff=True, handoff_reason=reason, tensorrt_engine=engine_name, tensorrt_profile=profile,
            tensorrt_workspace_mb=ctx.request.workspace_mb,
            handoff_files=[onnx_name, trtexec.name, script.name, inputs_json.name],
            handoff_message=(f"TensorRT is unavailable here — {reason}; wrote the TensorRT-ready {onnx_name} with "
                             f"{trtexec.name}, {script.name} and {inputs_json.name}; to build {engine_name}, run "
                             f"on the GPU machine in their folder: sh {trtexec.name}   (or: {python_cmd})"))
        return [*onnx_files, trtexec, script, inputs_json]

    def load_artifact(self, path: Path) -> LoadedModel:
        path = Path(path)
        if path.suffix.lower() in ENGINE_SUFFIXES:
            return load_engine(path)
        from app.loading import load_model

        return load_model(path)


# -- shapes for builders --------------------------------------------------------------------------

def build_inputs(specs: list[TensorSpec]) -> list[dict]:
    """The inputs list of :func:`tensorrt_build.build_engine` (and of the hand-off inputs.json)."""
    return [{"name": s.name, "dtype": s.dtype, "shape": list(s.shape) if s.shape else list(s.example_shape()),
             "example": list(s.example_shape())} for s in specs]


def profile_shapes(spec: TensorSpec) -> tuple[list[int], list[int], list[int]] | None:
    """(min, opt, max) for a spec with dynamic dims (see :func:`tensorrt_build.profile_range`); None if static."""
    if not spec.dynamic_axes:
        return None
    return tensorrt_build.profile_for(spec.name, list(spec.shape), list(spec.example_shape()))


def trtexec_script(onnx_name: str, engine_name: str, specs: list[TensorSpec], workspace_mb: int,
                   python_cmd: str, script_name: str = "build.trtexec.sh") -> str:
    """A POSIX shell script that builds ``engine_name`` with trtexec, strongly typed, from its own folder."""
    args = [f"--onnx={onnx_name}", f"--saveEngine={engine_name}", "--stronglyTyped"]
    dynamic = [(s, shapes) for s in specs if (shapes := profile_shapes(s))]
    if dynamic:
        for flag, k in (("--minShapes", 0), ("--optShapes", 1), ("--maxShapes", 2)):
            args.append(f"{flag}=" + ",".join(tensorrt_build.trtexec_shape(s.name, shapes[k]) for s, shapes in dynamic))
    args += [f"--memPoolSize=workspace:{int(workspace_mb)}M", f"--timingCacheFile={engine_name}.timing.cache",
             "--skipInference"]
    command = " \\\n    ".join(["trtexec"] + [shlex.quote(a) for a in args]) + ' \\\n    "$@"'
    ranges = "; ".join(f"{s.name}: min {'x'.join(map(str, p[0]))}, opt {'x'.join(map(str, p[1]))}, "
                       f"max {'x'.join(map(str, p[2]))}" for s, p in dynamic) or "none (all inputs are static)"
    return f"""#!/bin/sh
# Build the TensorRT engine {engine_name} from {onnx_name}, on the machine that will run it:
# an NVIDIA GPU with TensorRT installed (trtexec on PATH; it ships with the TensorRT tar/zip packages
# and NVIDIA's containers). Engines only run on the GPU model and TensorRT version that built them.
#
# --stronglyTyped: the precision is already in the ONNX graph (TensorRT 11 has no --fp16/--int8).
# Dynamic-shape profile: {ranges}
#   (min 1, opt the example, max max(example*4, 16) on axis 0 and example*2 on other axes)
# Extra trtexec flags can be appended: sh {script_name} --verbose
#
# Without trtexec (pip install tensorrt), the same build in Python, also writing
# {engine_name}.tensorrt.json (TensorRT version, GPU, SHA-256) for the studio to check when loading:
#   {python_cmd}
set -e
cd "$(dirname "$0")"
{command}
"""


# -- loading engines --------------------------------------------------------------------------------

def _current_compute_capability() -> str | None:
    try:
        import torch

        major, minor = torch.cuda.get_device_capability()
        return f"{major}.{minor}"
    except Exception:  # noqa: BLE001
        return None


def _check_manifest(path: Path, trt) -> dict | None:
    """Refuse an engine that does not match its ``.tensorrt.json`` or this machine (before deserialising)."""
    manifest_path = path.with_name(path.name + tensorrt_build.MANIFEST_SUFFIX)
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{manifest_path.name} beside the engine is unreadable ({e}); rebuild the engine") from None
    if not isinstance(manifest, dict):
        raise ModelLoadError(f"{manifest_path.name} beside the engine is malformed; rebuild the engine")
    want = manifest.get("sha256")
    if want and tensorrt_build.sha256_file(path) != want:
        raise ModelLoadError(f"{path.name} does not match {manifest_path.name} (its SHA-256 differs: the engine was "
                             "modified, truncated or replaced); rebuild it")
    built_with, here = manifest.get("tensorrt"), str(trt.__version__)
    if built_with and built_with != here:
        raise ModelLoadError(f"{path.name} was built with TensorRT {built_with}, this machine has TensorRT {here}; "
                             "engines only run on the TensorRT version that built them — rebuild it here")
    cc, cc_here = manifest.get("compute_capability"), _current_compute_capability()
    if cc and cc_here and cc != cc_here:
        raise ModelLoadError(f"{path.name} was built for compute capability {cc} ({manifest.get('gpu')}), this GPU "
                             f"is {cc_here}; engines only run on the GPU model that built them — rebuild it here")
    return manifest


TORCH_DTYPES = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16", "int8": "int8",
                "int32": "int32", "int64": "int64", "bool": "bool", "uint8": "uint8"}


def load_engine(path) -> LoadedModel:
    """Deserialise a TensorRT engine and run it with torch CUDA tensors (format ``tensorrt``)."""
    path = Path(path)
    ok, why = TensorRTConverter.available()
    if not ok:
        raise ModelLoadError(f"{path.name} is a TensorRT engine and cannot be loaded here: {why}; engines only run "
                             "on the GPU and TensorRT version they were built for")
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such file")
    import tensorrt as trt

    manifest = _check_manifest(path, trt)
    logger = tensorrt_build._make_logger(trt, echo=False)
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(path.read_bytes())
    if engine is None:
        detail = logger.errors[-1].strip().splitlines()[0][:300] if logger.errors else "not a valid engine"
        raise ModelLoadError(f"TensorRT {trt.__version__} cannot load {path.name} ({detail}); engines only run on the "
                             "GPU and TensorRT version they were built for — rebuild it here")
    labels = {d["name"]: d.get("shape") or [] for d in (manifest or {}).get("inputs", []) if isinstance(d, dict)}
    inputs, outputs, io_dtypes = [], [], {}
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        dims = list(engine.get_tensor_shape(name))
        dtype = tensorrt_build.dtype_name(engine.get_tensor_dtype(name))
        io_dtypes[name] = dtype
        known = labels.get(name, [])
        shape = tuple((known[a] if a < len(known) and isinstance(known[a], str) else tensorrt_build.dynamic_label(name, a))
                      if d < 0 else int(d) for a, d in enumerate(dims))
        if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
            example: tuple[int, ...] = ()
            if any(d < 0 for d in dims):
                try:
                    example = tuple(int(x) for x in engine.get_tensor_profile_shape(name, 0)[1])
                except Exception:  # noqa: BLE001
                    example = ()
            inputs.append(TensorSpec(name, dtype, shape, example))
        else:
            outputs.append(TensorSpec(name, dtype, shape))
    details = {"tensorrt": str(trt.__version__), "engine_manifest": manifest is not None,
               **{k: (manifest or {}).get(k) for k in ("gpu", "compute_capability", "cuda", "strongly_typed")}}
    model = LoadedModel(path, "tensorrt", inputs, outputs, 0, path.stat().st_size, module=engine, details=details)
    model._runner = _engine_runner(runtime, engine, inputs, outputs, io_dtypes)
    return model


def _engine_runner(runtime, engine, inputs: list[TensorSpec], outputs: list[TensorSpec], io_dtypes: dict):
    state: dict = {}
    lock = threading.Lock()

    def run(feeds):
        import numpy as np
        import torch

        with lock:
            if "context" not in state:
                state["context"] = engine.create_execution_context()
                if state["context"] is None:
                    raise RuntimeError("TensorRT cannot create an execution context (out of GPU memory?)")
            context = state["context"]
            keep = []
            for spec in inputs:
                dtype = getattr(torch, TORCH_DTYPES.get(io_dtypes[spec.name], "float32"))
                t = torch.from_numpy(np.ascontiguousarray(feeds[spec.name])).to(device="cuda", dtype=dtype).contiguous()
                if not context.set_input_shape(spec.name, tuple(t.shape)):
                    raise RuntimeError(f"input {spec.name}: shape {tuple(t.shape)} is outside the engine's "
                                       "optimization profile")
                context.set_tensor_address(spec.name, t.data_ptr())
                keep.append(t)
            results = []
            for spec in outputs:
                shape = tuple(context.get_tensor_shape(spec.name))
                if any(d < 0 for d in shape):
                    raise RuntimeError(f"output {spec.name} has a data-dependent shape {shape}; "
                                       "this runner needs output shapes known from the input shapes")
                dtype = getattr(torch, TORCH_DTYPES.get(io_dtypes[spec.name], "float32"))
                t = torch.empty(shape, dtype=dtype, device="cuda")
                context.set_tensor_address(spec.name, t.data_ptr())
                results.append(t)
            stream = torch.cuda.current_stream()
            if not context.execute_async_v3(stream.cuda_stream):
                raise RuntimeError("TensorRT failed to run the engine (execute_async_v3 returned False)")
            stream.synchronize()
            del keep
            return [(t.float() if t.dtype in (torch.float16, torch.bfloat16) else t).cpu().numpy() for t in results]

    run.runtime = runtime  # the runtime must outlive the engine
    return run
