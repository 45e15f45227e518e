"""``tensorrt``: an ONNX graph with the precision in it, built into a TensorRT engine.

Precision is written into the ONNX first (:func:`converters.onnx_export.build_onnx` with
``for_tensorrt=True``: an fp16 graph, or symmetric signed int8 Q/DQ) and the engine is built from
a strongly typed network (:mod:`app.runtimes.tensorrt_build`): TensorRT 11 has no FP16/INT8 builder
flags and no INT8 calibrators any more.

Where TensorRT or an NVIDIA GPU is missing the target runs in *hand-off* mode: the artifact is the
TensorRT-ready ONNX ``{stem}.tensorrt.{precision}.onnx``, verified with ONNX Runtime, plus what
builds the engine on the GPU machine: a ``trtexec`` script, a verbatim copy of
``tensorrt_build.py`` and its inputs list. (``DEPLOY_STUDIO_TENSORRT_HANDOFF=1`` forces hand-off
mode on a machine that could build, e.g. to build for another GPU.)
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

from app.errors import Cancelled, ConversionFailed
from app.loaders.front_door import load_model
from app.model.loaded import LoadedModel
from app.model.specs import TensorSpec
from app.runtimes import tensorrt as trt_runtime, tensorrt_build
from app.runtimes.onnxrt import OnnxRuntimeRunner
from app.runtimes.tensorrt import load_engine
from converters.base import ALL_SOURCES, ConversionContext, Converter
from converters.onnx_export import EXPORT_OPTIONS, build_onnx
from converters.onnx_precision import CALIBRATION_METHOD, QUANTIZATION
from converters.options import Option

WORKSPACE_MB = Option("workspace_mb", ("--workspace-mb",), int, 4096, help="TensorRT builder workspace limit (MiB)",
                      metavar="MB")

FORCE_HANDOFF_ENV = "DEPLOY_STUDIO_TENSORRT_HANDOFF"
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")


VERIFIED_AS = ("Q/DQ simulated in float by ONNX Runtime (graph optimisations off): the arithmetic of TensorRT's "
               "int8 layers (int8 products, 32-bit sums), not this CPU's int8 kernels")


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
    options = (*EXPORT_OPTIONS, QUANTIZATION, CALIBRATION_METHOD, WORKSPACE_MB)
    pinned = {"int8": {"quantization": "static"}}   # explicit Q/DQ: TensorRT takes no dynamic int8

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return trt_runtime.available()

    # -- names: the primary file is the engine, or in hand-off mode the ONNX it will be built from
    def artifact_name(self, stem: str, precision: str) -> str:
        return self.handoff_onnx_name(stem, precision) if _handoff_reason() else self.engine_name(stem, precision)

    @staticmethod
    def engine_name(stem: str, precision: str) -> str:
        return f"{stem}.{precision}.engine"

    @staticmethod
    def handoff_onnx_name(stem: str, precision: str) -> str:
        return f"{stem}.tensorrt.{precision}.onnx"

    def declared_files(self, stem: str, precision: str) -> tuple[str, ...]:
        engine, onnx_name = self.engine_name(stem, precision), self.handoff_onnx_name(stem, precision)
        base = f"{stem}.tensorrt.{precision}"
        names = (engine, engine + tensorrt_build.TIMING_CACHE_SUFFIX, engine + tensorrt_build.MANIFEST_SUFFIX,
                 onnx_name, onnx_name + ".data", f"{base}.trtexec.sh", f"{base}.build_engine.py", f"{base}.inputs.json")
        primary = self.artifact_name(stem, precision)
        return (primary, *(n for n in names if n != primary))

    def model_files(self, stem: str, precision: str) -> tuple[str, ...]:
        """The engine, or in hand-off mode the ONNX (and its external data) it will be built from."""
        primary = self.artifact_name(stem, precision)
        return (primary, primary + ".data") if primary.endswith(".onnx") else (primary,)

    @classmethod
    def _stem(cls, ctx: ConversionContext) -> str:
        precision = ctx.request.precision
        for suffix in (f".tensorrt.{precision}.onnx", f".{precision}.engine"):
            if ctx.artifact_name.endswith(suffix):
                return ctx.artifact_name[: -len(suffix)]
        return Path(ctx.artifact_name).stem

    # -- the work
    def convert(self, ctx: ConversionContext) -> list[Path]:
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
                                               workspace_mb=WORKSPACE_MB.of(ctx.request), progress=ctx.progress,
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
                      f"--inputs-json {shlex.quote(inputs_json.name)} --workspace-mb {WORKSPACE_MB.of(ctx.request)}")
        trtexec = ctx.work_dir / f"{base}.trtexec.sh"
        trtexec.write_text(trtexec_script(onnx_name, engine_name, ctx.inputs, WORKSPACE_MB.of(ctx.request), python_cmd,
                                          trtexec.name))
        for f in (script, trtexec):
            f.chmod(0o755)
        profile = {s.name: dict(zip(("min", "opt", "max"), shapes)) for s in ctx.inputs
                   if (shapes := profile_shapes(s))}
        if precision == "int8":
            ctx.record["verified_as"] = VERIFIED_AS
        ctx.record.update(
            handoff=True, handoff_reason=reason, tensorrt_engine=engine_name, tensorrt_profile=profile,
            tensorrt_workspace_mb=WORKSPACE_MB.of(ctx.request),
            handoff_files=[onnx_name, trtexec.name, script.name, inputs_json.name],
            handoff_message=(f"TensorRT is unavailable here — {reason}; wrote the TensorRT-ready {onnx_name} with "
                             f"{trtexec.name}, {script.name} and {inputs_json.name}; to build {engine_name}, run "
                             f"on the GPU machine in their folder: sh {trtexec.name}   (or: {python_cmd})"))
        return [*onnx_files, trtexec, script, inputs_json]

    def load_artifact(self, path: Path) -> LoadedModel:
        path = Path(path)
        if path.suffix.lower() in ENGINE_SUFFIXES:
            return load_engine(path)

        model = load_model(path)
        ops = model.details.get("operators", {})
        if "QuantizeLinear" in ops or "DequantizeLinear" in ops:
            # the int8 hand-off is verified as TensorRT computes it (int8 products, 32-bit sums): Q/DQ
            # simulated in float, not through this CPU's int8 kernels (which saturate without VNNI)
            # (see VERIFIED_AS)
            model.make_runner = lambda: OnnxRuntimeRunner(path, path.name, model=model, map_weights=True,
                                                          simulate_quantization=True)
        return model


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


