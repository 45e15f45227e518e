"""Deployment bundles for NVIDIA Triton Inference Server: a model repository folder per artifact.

``build_bundle(artifact, out_repo)`` writes::

    out_repo/
      MODEL_NAME/
        config.pbtxt        platform, max_batch_size, inputs/outputs, batching, instance group
        README.md           the docker run / perf_analyzer command lines for this model
        1/
          model.onnx        onnxruntime_onnx   (plus its external-data files, if any)
          model.pt          pytorch_libtorch   (TorchScript only)
          model.plan        tensorrt_plan
          model.xml + .bin  backend openvino (OpenVINO IR; Triton's OpenVINO backend, CPU only)

Names, data types and dims come from the model itself; ``max_batch_size`` is non-zero only when
axis 0 of every input is dynamic and every output follows it (then ``dims`` leave the batch axis
out, as Triton expects). The folder is written into a temporary folder inside ``out_repo`` and
renamed into place, so Triton polling the repository never sees half a model.

TorchScript I/O names: TorchScript files carry no tensor names, so Triton's PyTorch backend maps
config names to ``forward()`` positions by convention. Current backends (since the 22.x releases)
accept (1) the names of ``forward()``'s arguments for inputs, or (2) ``<name>__<index>`` (e.g.
``INPUT__0``, ``OUTPUT__1``) for inputs and outputs; anything else falls back to the config's
order. We write the forward argument names for inputs when the artifact records them (they match
the model's signature and are what clients see), ``INPUT__<i>`` otherwise, and ``OUTPUT__<i>`` for
outputs (outputs have no names in TorchScript).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from app.artifacts import atomic_output as files
from app.artifacts.json_file import SideFileError, read_json_file
from app.artifacts.manifest import read_manifest
from app.errors import BadInput, OutputExists
from app.model.specs import TensorSpec

# The Triton release the README's commands name. A TensorRT plan only loads in a container whose
# TensorRT version built it: pick the release from the support matrix for yours.
TRITON_RELEASE = "25.11"
DEFAULT_MAX_BATCH = 8
ORT_TRT_WORKSPACE_BYTES = 1 << 30



def platform_of(fmt: str) -> tuple[str, str] | None:
    """(Triton platform or backend, the file's name in the version folder) of an artifact kind, as the
    kind declares it (:mod:`app.model.kinds`); None where Triton cannot serve it."""
    from app.loaders.kinds import get_kind

    return get_kind(fmt).triton


def backends() -> set[str]:
    """The kinds' Triton names given as ``backend:`` rather than ``platform:`` (Triton's OpenVINO backend
    reads model.xml and model.bin from the version folder)."""
    from app.loaders.kinds import all_kinds

    return {k.triton[0] for k in all_kinds() if k.triton and k.backend}

TRITON_DTYPES = {
    "bool": "TYPE_BOOL", "uint8": "TYPE_UINT8", "uint16": "TYPE_UINT16", "uint32": "TYPE_UINT32",
    "uint64": "TYPE_UINT64", "int8": "TYPE_INT8", "int16": "TYPE_INT16", "int32": "TYPE_INT32",
    "int64": "TYPE_INT64", "float16": "TYPE_FP16", "float32": "TYPE_FP32", "float64": "TYPE_FP64",
    "bfloat16": "TYPE_BF16", "string": "TYPE_STRING", "object": "TYPE_STRING",
}
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class TritonTensor:
    """One input or output as Triton sees it: ``dims`` exclude the batch axis when batching."""

    name: str               # the name in config.pbtxt
    model_name: str         # the name in the model's signature
    data_type: str          # TYPE_FP32 ...
    dims: tuple[int, ...]   # -1 for a dynamic dimension
    reshape: tuple[int, ...] | None = None  # for scalars: Triton needs dims [1], reshaped to []
    example: tuple[int, ...] = ()           # concrete sizes (batch axis left out when batching)
    is_float: bool = True


# the backend parameter that sets each instance's intra-op threads (Triton's onnxruntime, pytorch, openvino backends)
THREAD_PARAMETERS = {"onnxruntime_onnx": "intra_op_thread_count", "pytorch_libtorch": "INTRA_OP_THREAD_COUNT",
                     "openvino": "INFERENCE_NUM_THREADS"}


@dataclass(frozen=True)
class TritonModelConfig:
    """The content of one ``config.pbtxt``."""

    name: str
    platform: str
    max_batch_size: int
    inputs: tuple[TritonTensor, ...]
    outputs: tuple[TritonTensor, ...]
    instances: int = 1
    kind: str = "KIND_CPU"
    ort_tensorrt_precision: str | None = None   # "FP32"/"FP16": ONNX Runtime's TensorRT accelerator
    source: str = ""                            # shown in a comment
    preferred_batch_sizes: tuple[int, ...] = ()  # dynamic batching, from a deployment sweep
    max_queue_delay_us: int | None = None
    parameters: tuple[tuple[str, str], ...] = ()  # backend parameters (string values)

    def to_pbtxt(self) -> str:
        """The protobuf text format Triton reads."""
        lines = ["# Triton model configuration written by Model Deployment Studio",
                 *([f"# from {_comment(self.source)}"] if self.source else []),
                 f"name: {_quote(self.name)}",
                 f"backend: {_quote(self.platform)}" if self.platform in backends() else f"platform: {_quote(self.platform)}",
                 f"max_batch_size: {self.max_batch_size}"]
        for key, tensors in (("input", self.inputs), ("output", self.outputs)):
            lines.append(f"{key} [")
            for i, t in enumerate(tensors):
                lines += ["  {", f"    name: {_quote(t.name)}", f"    data_type: {t.data_type}",
                          f"    dims: [ {', '.join(str(d) for d in t.dims)} ]"]
                if t.reshape is not None:
                    lines.append(f"    reshape: {{ shape: [ {', '.join(str(d) for d in t.reshape)} ] }}")
                lines.append("  }" + ("," if i < len(tensors) - 1 else ""))
            lines.append("]")
        if self.max_batch_size > 0:
            batching = []
            if self.preferred_batch_sizes:
                batching.append(f"  preferred_batch_size: [ {', '.join(str(b) for b in self.preferred_batch_sizes)} ]")
            if self.max_queue_delay_us is not None:
                batching.append(f"  max_queue_delay_microseconds: {self.max_queue_delay_us}")
            lines += ["dynamic_batching {", *batching, "}"] if batching else ["dynamic_batching { }"]
        lines += ["instance_group [", "  {", f"    count: {self.instances}", f"    kind: {self.kind}", "  }", "]"]
        if self.ort_tensorrt_precision:
            lines += ["optimization {", "  execution_accelerators {", "    gpu_execution_accelerator: [",
                      "      {", '        name: "tensorrt"',
                      f'        parameters {{ key: "precision_mode" value: "{self.ort_tensorrt_precision}" }}',
                      f'        parameters {{ key: "max_workspace_size_bytes" value: "{ORT_TRT_WORKSPACE_BYTES}" }}',
                      "      }", "    ]", "  }", "}"]
        for key, value in self.parameters:
            lines += ["parameters {", f"  key: {_quote(key)}", f"  value: {{ string_value: {_quote(value)} }}", "}"]
        return "\n".join(lines) + "\n"


@dataclass
class ServingBundle:
    """What :func:`export_for_serving` wrote."""

    path: Path                      # out_repo/MODEL_NAME
    repository: Path                # out_repo
    config: TritonModelConfig
    files: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        c = self.config
        return {"model": str(self.path), "repository": str(self.repository), "name": c.name,
                "platform": c.platform, "max_batch_size": c.max_batch_size,
                "inputs": [{"name": t.name, "data_type": t.data_type, "dims": list(t.dims)} for t in c.inputs],
                "outputs": [{"name": t.name, "data_type": t.data_type, "dims": list(t.dims)} for t in c.outputs],
                "instance_group": {"count": c.instances, "kind": c.kind},
                "dynamic_batching": {"preferred_batch_size": list(c.preferred_batch_sizes),
                                     "max_queue_delay_microseconds": c.max_queue_delay_us},
                "parameters": dict(c.parameters),
                "files": [str(f) for f in self.files], "warnings": self.warnings,
                "docker": docker_command(self), "perf_analyzer": perf_analyzer_command(self)}


# ---------------------------------------------------------------------------- the artifact's signature
@dataclass
class _Signature:
    format: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    output_dims: list[tuple[int, ...]] | None   # from running the model at two sizes; -1 where they differ
    forward_names: list[str]
    precision: str | None
    data_files: list[Path]
    warnings: list[str]


def _manifest(path: Path) -> dict | None:
    """The conversion's manifest, else the engine builder's ``.tensorrt.json`` (both list the inputs)."""
    data = read_manifest(path)
    if data is None:
        try:
            data = read_json_file(path.with_name(path.name + ".tensorrt.json"), "TensorRT engine manifest")
        except SideFileError:
            return None
    return data if isinstance(data, dict) and isinstance(data.get("inputs"), list) else None


def _specs(data: dict, key: str) -> list[TensorSpec]:
    try:
        return [TensorSpec.from_json(d) for d in data.get(key) or []]
    except (KeyError, TypeError) as e:
        raise BadInput(f"the manifest's {key} are malformed ({e}); re-convert the model") from None


def read_signature(artifact: Path, inputs: list[TensorSpec] | None = None) -> _Signature:
    """Format, inputs and outputs of ``artifact``, from the file, its manifest or a user's ``inputs``."""
    from app.loaders.front_door import sniff_format

    kind = sniff_format(artifact)
    manifest = _manifest(artifact)
    precision = (manifest or {}).get("precision")
    if kind == "tensorrt":
        return _tensorrt_signature(artifact, manifest, precision)
    if platform_of(kind) is None:
        from app.loaders.kinds import all_kinds

        hint = {"torch-export": "Triton has no loader for .pt2 archives; "}.get(kind, "")
        served = ", ".join(f"{k.label} ({'/'.join(k.suffixes)})" for k in all_kinds() if k.triton)
        raise BadInput(f"{artifact.name} is a {kind} file; {hint}Triton serves {served} artifacts — convert it "
                       "first (--to onnx, openvino or torchscript-*)")
    from app.loaders.front_door import load_model, with_inputs
    from app.runtimes.onnxrt import onnx_external_files

    model = load_model(artifact, guess_inputs=inputs is None)
    warnings: list[str] = []
    if inputs:
        model = with_inputs(model, inputs)
    elif model.inputs_guessed and manifest:
        model = with_inputs(model, _specs(manifest, "inputs"))
    elif model.inputs_guessed:
        warnings.append("input shapes are a guess from the first layer (" + ", ".join(s.describe() for s in model.inputs)
                        + "); pass --input NAME:SHAPE[:DTYPE] and --dynamic NAME:0:batch to set them")
    if any(not s.shape for s in model.inputs):
        missing = [s.name for s in model.inputs if not s.shape]
        raise BadInput(f"{artifact.name}: the shapes of {', '.join(missing)} are unknown; pass --input NAME:SHAPE[:DTYPE]")
    data_files: list[Path] = []
    if kind == "onnx":
        import onnx

        proto = onnx.load(str(artifact), load_external_data=False)
        data_files = onnx_external_files(proto, artifact.parent, artifact)
    elif kind == "openvino":
        data_files = [artifact.with_suffix(".bin")]
    forward = list(model.details.get("input_names_from_forward") or []) if kind == "torchscript" else []
    output_dims = _probe_output_dims(model, warnings)
    return _Signature(kind, list(model.inputs), list(model.outputs), output_dims, forward,
                      precision or model.details.get("precision"), data_files, warnings)


def _tensorrt_signature(artifact: Path, manifest: dict | None, precision: str | None) -> _Signature:
    if manifest is not None:
        return _Signature("tensorrt", _specs(manifest, "inputs"), _specs(manifest, "outputs"), None, [],
                          precision, [], [])
    try:
        from app.runtimes.tensorrt import load_engine
    except ImportError:
        load_engine = None
    if load_engine is not None:
        try:
            model = load_engine(artifact)
        except Exception as e:
            raise BadInput(f"{artifact.name}: cannot read the engine's inputs and outputs ({str(e).strip()[:200]}) "
                           f"and there is no {artifact.name}.manifest.json beside it") from None
        return _Signature("tensorrt", list(model.inputs), list(model.outputs), None, [], precision, [], [])
    raise BadInput(f"{artifact.name}: TensorRT is not installed here and there is no {artifact.name}.manifest.json "
                   "beside it to read the engine's inputs and outputs from; keep the manifest the conversion wrote")


def _probe_output_dims(model, warnings: list[str]) -> list[tuple[int, ...]] | None:
    """Run the model at its example sizes and at a second size; output dims that change are dynamic.

    Output specs of torch models are probed at one size only, so a batch or sequence axis looks fixed
    there; running twice tells which output axes follow the inputs' dynamic axes.
    """
    from app.model.inputs import make_feeds, second_sizes

    if not any(s.dynamic_axes for s in model.inputs):
        return None
    from app.loaders.front_door import int_range_of

    int_high = int_range_of(model)
    try:
        first = model.run(make_feeds(model.inputs, seed=0, int_high=int_high))
        second = model.run(make_feeds(model.inputs, seed=1, sizes=second_sizes(model.inputs), int_high=int_high))
    except Exception as e:
        warnings.append(f"could not run the model to find its dynamic output axes ({str(e).strip()[:200]}); "
                        "used the recorded output shapes")
        return None
    if len(first) != len(second):
        return None
    dims = []
    for a, b in zip(first, second):
        if a.ndim != b.ndim:
            dims.append(tuple(-1 for _ in a.shape))
        else:
            dims.append(tuple(int(x) if x == y else -1 for x, y in zip(a.shape, b.shape)))
    return dims


# ---------------------------------------------------------------------------- the config
def model_name_for(artifact: Path) -> str:
    """A default Triton model name: the artifact's name without extension, dots as underscores."""
    from app.pipeline import model_stem

    name = re.sub(r"[^A-Za-z0-9_-]+", "_", model_stem(artifact)).strip("_-")
    return name or "model"


def plan_config(artifact: str | os.PathLike, *, name: str | None = None, max_batch: int | None = None,
                instances: int | None = None, kind: str | None = None, ort_tensorrt: bool = False,
                inputs: list[TensorSpec] | None = None,
                from_sweep: str | os.PathLike | None = None) -> tuple[TritonModelConfig, _Signature]:
    """Work out the Triton configuration of ``artifact`` without writing anything.

    ``from_sweep``: a saved ``bench --sweep --json`` result; its proposal for ``artifact`` sets the
    instance count, the threads per instance and the dynamic batching (preferred sizes, queue delay).
    """
    artifact = Path(artifact)
    proposal = None
    if from_sweep is not None:
        from app.bench.sweep import read_proposal

        if instances is not None:
            raise BadInput("--instances and --from-sweep: the sweep's proposal sets the instance count; give one")
        proposal = read_proposal(Path(from_sweep), artifact)
        instances = proposal.instances
    instances = 1 if instances is None else instances
    name = name or model_name_for(artifact)
    if not _NAME_RE.match(name) or name in (".", ".."):
        raise BadInput(f"--name {name!r}: use letters, digits, '_', '-' and '.' (it becomes a folder and a URL part)")
    if instances < 1:
        raise BadInput(f"--instances {instances}: give at least 1")
    if max_batch is not None and max_batch < 0:
        raise BadInput(f"--max-batch {max_batch}: give 0 (no batching) or more")
    sig = read_signature(artifact, inputs)
    platform, _ = platform_of(sig.format)
    kind = _instance_kind(sig.format, kind, ort_tensorrt)
    warnings = list(sig.warnings)
    out_dims, batchable = _batch_axis(sig, warnings)
    if max_batch and not batchable:
        raise BadInput(f"--max-batch {max_batch}: {artifact.name} has no dynamic batch axis (axis 0 of every input, "
                       "followed by every output); re-convert it with --dynamic NAME:0:batch, or use --max-batch 0")
    batching = batchable and max_batch != 0
    max_batch_size = (max_batch or DEFAULT_MAX_BATCH) if batching else 0
    if proposal is not None and batching and not max_batch:
        max_batch_size = max(max_batch_size, proposal.max_batch)
    if proposal is not None and proposal.preferred_batch_sizes and not batching:
        warnings.append(f"the sweep proposes dynamic batching ({list(proposal.preferred_batch_sizes)}), but this "
                        "configuration does not batch; left out")
    if sig.format == "tensorrt" and batching:
        warnings.append(f"max_batch_size {max_batch_size} must not exceed the largest batch of the engine's "
                        "optimization profile (set at conversion)")

    in_names = _input_names(sig)
    tensors_in = tuple(_tensor(n, s, tuple(d if isinstance(d, int) else -1 for d in s.shape),
                               s.example_shape(), batching) for n, s in zip(in_names, sig.inputs))
    out_names = ([f"OUTPUT__{i}" for i in range(len(sig.outputs))] if sig.format == "torchscript"
                 else [o.name for o in sig.outputs])
    tensors_out = tuple(_tensor(n, o, d, tuple(x if x > 0 else 1 for x in d), batching)
                        for n, o, d in zip(out_names, sig.outputs, out_dims))
    precision = None
    if ort_tensorrt:
        precision = "FP16" if (sig.precision == "fp16" or any(s.dtype == "float16" for s in sig.inputs)) else "FP32"
    source = f"{artifact.name} ({sig.format}{', ' + sig.precision if sig.precision else ''})"
    parameters: tuple[tuple[str, str], ...] = ()
    if sig.format == "openvino":
        # latency-oriented, one stream per instance; bf16 only for bf16 artifacts (HINT_BF16)
        parameters = (("PERFORMANCE_HINT", "LATENCY"),) + ((("HINT_BF16", "YES"),) if sig.precision == "bf16" else ())
    preferred, delay = (), None
    if proposal is not None:
        if THREAD_PARAMETERS.get(platform):
            parameters += ((THREAD_PARAMETERS[platform], str(proposal.threads_per_instance)),)
        if batching:
            preferred = tuple(b for b in proposal.preferred_batch_sizes if b <= max_batch_size)
            delay = proposal.max_queue_delay_us if preferred else None
        source += f"; settings from a deployment sweep: {proposal.why}"
    config = TritonModelConfig(name, platform, max_batch_size, tensors_in, tensors_out, instances,
                               "KIND_GPU" if kind == "gpu" else "KIND_CPU", precision, source,
                               preferred, delay, parameters)
    sig.warnings = warnings
    return config, sig


def _instance_kind(fmt: str, kind: str | None, ort_tensorrt: bool) -> str:
    """Where the instances run (``cpu`` or ``gpu``; TensorRT's default the GPU), refused where the
    backend cannot run there."""
    kind = (kind or ("gpu" if fmt == "tensorrt" else "cpu")).lower()
    if kind not in ("cpu", "gpu"):
        raise BadInput(f"--kind {kind!r}: choose cpu or gpu")
    if fmt == "tensorrt" and kind == "cpu":
        raise BadInput("a TensorRT plan runs on the GPU only; use --kind gpu")
    if fmt == "openvino" and kind == "gpu":
        raise BadInput("Triton's OpenVINO backend runs on the CPU only; use --kind cpu (or serve the ONNX on the GPU)")
    if ort_tensorrt and fmt != "onnx":
        raise BadInput("--ort-tensorrt is ONNX Runtime's TensorRT accelerator: it applies to .onnx artifacts only")
    if ort_tensorrt and kind != "gpu":
        raise BadInput("--ort-tensorrt runs on the GPU; add --kind gpu")
    return kind


def _batch_axis(sig: _Signature, warnings: list[str]) -> tuple[list[tuple[int, ...]], bool]:
    """The outputs' dims (-1 dynamic) and whether Triton may batch: axis 0 of every input is the one
    dynamic batch label, and every output follows it."""
    out_dims = sig.output_dims or [tuple(d if isinstance(d, int) else -1 for d in o.shape) for o in sig.outputs]
    batch_labels = {s.shape[0] for s in sig.inputs if s.shape and isinstance(s.shape[0], str)}
    batchable = (bool(sig.inputs) and all(s.shape and isinstance(s.shape[0], str) for s in sig.inputs)
                 and len(batch_labels) == 1 and all(len(d) >= 1 for d in out_dims))
    if batchable and sig.output_dims is None:
        # no run to tell: outputs follow the batch when their first axis is dynamic or, for torch
        # signatures probed at one size, equal to the inputs' example batch
        example_batch = {s.example_shape()[0] for s in sig.inputs}
        follows = all(d[0] == -1 or (len(example_batch) == 1 and d[0] in example_batch) for d in out_dims)
        if not follows:
            batchable = False
        elif any(d[0] != -1 for d in out_dims):
            warnings.append("assumed every output's first axis is the batch axis (it could not be checked by running "
                            "the model here)")
    elif batchable:
        batchable = all(d[0] == -1 for d in out_dims)
    return out_dims, batchable


def _input_names(sig: _Signature) -> list[str]:
    if sig.format != "torchscript":
        return [s.name for s in sig.inputs]
    forward = sig.forward_names
    if len(forward) == len(sig.inputs) and all(_IDENT_RE.match(n) and "__" not in n for n in forward):
        return forward
    return [f"INPUT__{i}" for i in range(len(sig.inputs))]


def _tensor(name: str, spec: TensorSpec, dims: tuple[int, ...], example: tuple[int, ...], batching: bool) -> TritonTensor:
    dtype = TRITON_DTYPES.get(spec.dtype)
    if dtype is None:
        raise BadInput(f"{spec.name}: Triton has no data type for {spec.dtype}")
    if batching:
        dims, example = dims[1:], tuple(example[1:])
    reshape = None
    if not dims:  # Triton needs at least one dim: a scalar (per batch item) is [1] reshaped to []
        dims, example, reshape = (1,), (1,), ()
    return TritonTensor(name, spec.name, dtype, tuple(dims), reshape, tuple(example), spec.is_float)


# ---------------------------------------------------------------------------- writing the bundle
def export_for_serving(artifact: str | os.PathLike, out_repo: str | os.PathLike, *, name: str | None = None,
                       max_batch: int | None = None, instances: int | None = None, kind: str | None = None,
                       ort_tensorrt: bool = False, overwrite: bool = False,
                       inputs: list[TensorSpec] | None = None,
                       from_sweep: str | os.PathLike | None = None) -> ServingBundle:
    """Write ``out_repo/NAME`` (config, README, version 1 with the model) atomically.

    ``kind`` is ``"cpu"`` or ``"gpu"`` (default: gpu for TensorRT plans, cpu otherwise);
    ``max_batch`` ``None`` means the default when the model has a dynamic batch axis, ``0`` no
    batching. Raises :class:`BadInput` (or :class:`OutputExists` without ``overwrite``).
    """
    artifact = Path(artifact)
    out_repo = Path(out_repo)
    config, sig = plan_config(artifact, name=name, max_batch=max_batch, instances=instances, kind=kind,
                              ort_tensorrt=ort_tensorrt, inputs=inputs, from_sweep=from_sweep)
    files.prepare_out_dir(out_repo)
    files.clean_stale_work_dirs(out_repo)
    dest = out_repo / config.name
    if artifact.resolve().is_relative_to(dest.resolve()):
        raise BadInput(f"refusing to write {dest}: the artifact lives inside it; choose another --out or --name")
    if dest.exists() and not overwrite:
        raise OutputExists(f"{dest} exists already; pass --overwrite to replace it, or choose another --name")
    work = files.work_dir(out_repo)
    try:
        staged = work / config.name
        version = staged / "1"
        version.mkdir(parents=True)
        _, filename = platform_of(sig.format)
        shutil.copyfile(artifact, version / filename)
        if sig.format == "openvino":  # the IR's weights: model.bin beside model.xml
            shutil.copyfile(sig.data_files[0], version / "model.bin")
        for data in sig.data_files if sig.format == "onnx" else ():  # ONNX external data: same relative location
            target = version / data.relative_to(artifact.parent.resolve())  # resolved, as checked
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(data, target)
        (staged / "config.pbtxt").write_text(config.to_pbtxt(), encoding="utf-8")  # names need not be ASCII
        bundle = ServingBundle(dest, out_repo, config, [], sig.warnings)
        (staged / "README.md").write_text(bundle_readme(bundle, artifact, sig), encoding="utf-8",
                                          errors="surrogateescape")  # a file name's undecodable bytes as they are
        written = sorted(p.relative_to(staged) for p in staged.rglob("*") if p.is_file())
        if dest.exists():  # overwrite: move the old folder aside first (a folder cannot be replaced by rename)
            os.replace(dest, work / (config.name + ".old"))
        os.replace(staged, dest)
        bundle.files = [dest / p for p in written]
        return bundle
    finally:
        files.remove_work_dir(work)


def servable_targets() -> tuple[str, ...]:
    """The conversion targets whose artifacts Triton can serve (each converter's artifact kind says:
    :attr:`app.model.kinds.ArtifactKind.triton`)."""
    from converters.base import all_converters

    return tuple(c.name for c in all_converters() if platform_of(c.kind) is not None)


def serve_bundle_job(kwargs: dict, progress=None, should_cancel=None) -> ServingBundle:
    """``serve-bundle`` in the fenced child (:func:`app.jobs.run_job`; it loads the artifact, which may be a
    TorchScript program): ``kwargs`` of :func:`export_for_serving`."""
    return export_for_serving(**kwargs)


def bundle_job(payload: dict, progress, should_cancel) -> str:
    """:func:`app.jobs.run_job` entry for the window: ``{"artifact", "repo"}`` -> the folder written."""
    progress("writing the Triton model folder", None)
    return str(export_for_serving(payload["artifact"], payload["repo"], overwrite=bool(payload.get("overwrite")),
                                  from_sweep=payload.get("from_sweep")).path)


def build_bundle(artifact: str | os.PathLike, out_repo: str | os.PathLike, name: str | None = None,
                 max_batch: int | None = None, instances: int = 1, kind: str | None = None,
                 ort_tensorrt: bool = False, *, overwrite: bool = False) -> Path:
    """Export ``artifact`` as a Triton model folder in ``out_repo``; returns ``out_repo/NAME``.

    The plain entry point for the window's "Export for serving…"; see :func:`export_for_serving`.
    """
    return export_for_serving(artifact, out_repo, name=name, max_batch=max_batch, instances=instances, kind=kind,
                              ort_tensorrt=ort_tensorrt, overwrite=overwrite).path


# ---------------------------------------------------------------------------- the README
def docker_command(bundle: ServingBundle) -> str:
    gpus = "--gpus all " if bundle.config.kind == "KIND_GPU" or bundle.config.ort_tensorrt_precision else ""
    repo = bundle.repository.resolve()
    return (f"docker run --rm {gpus}-p 8000:8000 -p 8001:8001 -p 8002:8002 -v {_shell(str(repo))}:/models "
            f"nvcr.io/nvidia/tritonserver:{TRITON_RELEASE}-py3 tritonserver --model-repository=/models")


def perf_analyzer_command(bundle: ServingBundle) -> str:
    c = bundle.config
    shapes = " ".join(f"--shape {_shell(t.name + ':' + ','.join(str(d) for d in t.example))}"
                      for t in c.inputs if any(d == -1 for d in t.dims))
    parts = [f"docker run --rm --net=host nvcr.io/nvidia/tritonserver:{TRITON_RELEASE}-py3-sdk",
             f"perf_analyzer -m {_shell(c.name)} -u localhost:8001 -i grpc --concurrency-range 1:8"]
    if c.max_batch_size > 0:
        parts.append(f"-b {min(4, c.max_batch_size)}")
    if shapes:
        parts.append(shapes)
    if any(not t.is_float for t in c.inputs):
        parts.append("--input-data zero")  # random integers would be out-of-range token ids
    return " ".join(parts)


def _torchscript_naming(c: TritonModelConfig) -> str:
    """The README's section on how Triton's LibTorch backend names a TorchScript model's tensors."""
    return (
        "\n## Tensor names (TorchScript)\n\n"
        "A TorchScript file carries no tensor names, so Triton's PyTorch (LibTorch) backend matches the names "
        "in `config.pbtxt` to `forward()` by convention. Current backends accept, for inputs, the names of "
        "`forward()`'s arguments, or `<name>__<index>` (`INPUT__0`, `INPUT__1`, ...) for the argument at that "
        "position; outputs have no names and use `<name>__<index>` (`OUTPUT__0` is the first tensor "
        "`forward()` returns, tuples/lists/dicts flattened in order). If the names follow neither convention "
        "Triton falls back to the order of the entries in the config.\n\n"
        + ("This config uses the forward argument names for the inputs"
           if not c.inputs or not c.inputs[0].name.startswith("INPUT__")
           else "This config uses `INPUT__<i>` for the inputs (the artifact records no usable forward "
                "argument names)")
        + " and `OUTPUT__<i>` for the outputs; clients send and request these names.\n")


def _runtime_notes(c: TritonModelConfig, sig: _Signature) -> tuple[str, str]:
    """The README's notes on the runtime: ONNX Runtime's TensorRT accelerator, and OpenVINO's or a
    TensorRT plan's conditions."""
    accel = ""
    if c.ort_tensorrt_precision:
        accel = (f"\nONNX Runtime runs the model through its TensorRT execution provider "
                 f"(`precision_mode` {c.ort_tensorrt_precision}); the first requests build TensorRT engines and are "
                 "slow.\n")
    plan_note = ""
    if sig.format == "openvino":
        plan_note = ("\nTriton's OpenVINO backend (`backend: \"openvino\"`, CPU only) reads `model.xml` and `model.bin`. "
                     + ("`HINT_BF16: YES` runs it in bfloat16, as it was verified (the CPU needs AVX-512 BF16 or AMX).\n"
                        if sig.precision == "bf16" else
                        "It was verified at fp32 inference precision; on CPUs with AVX-512 BF16/AMX, OpenVINO's CPU "
                        "plugin may default to bf16 unless the backend sets `INFERENCE_PRECISION_HINT` f32 — compare "
                        "a few outputs with the studio's before relying on fp32 accuracy.\n"))
    elif sig.format == "tensorrt":
        plan_note = ("\nA TensorRT plan is tied to the TensorRT version and GPU that built it: use the Triton "
                     "release whose TensorRT version matches the builder's (Triton's release notes list it), on "
                     "the same GPU model, or rebuild the engine there.\n")
    return accel, plan_note


def bundle_readme(bundle: ServingBundle, artifact: Path, sig: _Signature) -> str:
    c = bundle.config
    _, filename = platform_of(sig.format)

    def rows(tensors, specs):
        return "\n".join(f"| `{t.name}` | `{s.name}` | {t.data_type} | [{', '.join(str(d) for d in t.dims)}] |"
                         for t, s in zip(tensors, specs))

    naming = _torchscript_naming(c) if sig.format == "torchscript" else ""
    batching = (f"`max_batch_size: {c.max_batch_size}` with dynamic batching: axis 0 of every input is the batch "
                "axis, left out of `dims`; Triton batches concurrent requests up to that size."
                if c.max_batch_size else
                "`max_batch_size: 0`: the model has no dynamic batch axis (or batching was turned off), so `dims` "
                "are the full shapes and Triton does not batch requests.")
    accel, plan_note = _runtime_notes(c, sig)
    warn = "".join(f"\n> warning: {w}\n" for w in bundle.warnings)
    return f"""# {c.name} — Triton model

Written by Model Deployment Studio from `{artifact.name}` ({sig.format}{', ' + sig.precision if sig.precision else ''}).
{warn}
```
{bundle.repository.name}/            ← the model repository (pass it to --model-repository)
  {c.name}/
    config.pbtxt      {'backend' if c.platform in backends() else 'platform'} {c.platform}
    README.md         this file
    1/{filename}{'  (+ model.bin)' if sig.format == 'openvino' else ('  (+ ' + ', '.join(p.name for p in sig.data_files) + ')' if sig.data_files else '')}
```

| Triton name | model name | data type | dims |
|---|---|---|---|
{rows(c.inputs, sig.inputs)}
{rows(c.outputs, sig.outputs)}

{batching} Instances: {c.instances} × {c.kind}.
{accel}{plan_note}{naming}
## Serve it

On a machine with Docker{' and an NVIDIA GPU (NVIDIA Container Toolkit)' if 'gpus' in docker_command(bundle) else ''}:

```
{docker_command(bundle)}
```

`curl localhost:8000/v2/models/{c.name}/ready` answers 200 once the model is loaded;
`curl localhost:8000/v2/models/{c.name}/config` shows the configuration Triton uses. Copy the
repository folder to the serving machine first and adjust the `-v` path; the image tag names a
Triton release ({'for a TensorRT plan it must match, see above' if sig.format == 'tensorrt' else 'a newer one works as well'}).
KServe's Triton runtime serves the same repository folder from its `storageUri`.

## Load test

```
{perf_analyzer_command(bundle)}
```

perf_analyzer (in the `-sdk` image) sends requests at rising concurrency and prints throughput and
latency percentiles per level.
"""


_PBTXT_ESCAPES = {"\\": "\\\\", '"': '\\"', "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _quote(text: str) -> str:
    """``text`` as a protobuf text-format string (what Triton's parser reads): quotes, backslashes and
    control characters escaped, every other character as it is (the file is UTF-8)."""
    return '"' + "".join(_PBTXT_ESCAPES.get(c) or (f"\\{ord(c):03o}" if ord(c) < 0x20 or ord(c) == 0x7F else c)
                         for c in text) + '"'


def _comment(text: str) -> str:
    """``text`` fit for a one-line ``#`` comment: line breaks and other unprintable characters as '?'."""
    return "".join(c if c.isprintable() else "?" for c in text)


def _shell(text: str) -> str:
    import shlex

    return shlex.quote(text)
