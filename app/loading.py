"""load_model(path, ...) -> LoadedModel for every supported file format.

Formats are recognised by content, not by extension: TorchScript and ``torch.export`` archives and
``torch.save`` files are zip archives told apart by their members; safetensors by its JSON header;
ONNX by parsing the protobuf. Every ``torch.load`` is ``weights_only=True``; a full pickled module
loads through the same unpickler with the globals the user approved (``app.unpickling``). Zip
archives are recognised by their first bytes, as torch does.
"""

from __future__ import annotations

import inspect
import json
import os
import struct
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.errors import BadInput, ModelLoadError, StudioError, UnsafeModelError, describe
from app.errors import first_line as _first_line
from app.model import LoadedModel, flatten_outputs, torch_runner
from app.security import check_zip_sizes
from app.specs import TensorSpec

SIGNATURE_FILE = "deploystudio_signature.json"  # recorded inside TorchScript/.pt2 archives we write

# file names the loaders read (longest first where one ends another, e.g. .pt2 before .pt)
MODEL_SUFFIXES = (".safetensors", ".onnx", ".pt2", ".pth", ".pt", ".bin", ".ckpt", ".engine", ".plan", ".xml")
SUPPORTED = (".pt, .pth, .bin, .ckpt (TorchScript, state dict or pickled module), .pt2 (torch.export), "
             ".safetensors, .onnx, .engine/.plan (TensorRT), .xml + .bin (OpenVINO IR)")


def sniff_format(path: Path) -> str:
    """Return torchscript | torch-export | torch-save | safetensors | onnx | tensorrt | openvino."""
    if not path.exists():
        raise ModelLoadError(f"{path}: no such file")
    if path.is_dir():
        raise ModelLoadError(f"{path} is a folder; give the model file itself ({SUPPORTED})")
    size = path.stat().st_size
    if size == 0:
        raise ModelLoadError(f"{path} is empty (0 bytes); re-export or re-download the model")
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise ModelLoadError(f"{path}: cannot read ({e.strerror})") from None
    from app.unpickling import ZIP_MAGIC, check_not_polyglot

    if head[:4] == ZIP_MAGIC:
        check_not_polyglot(path)
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
                check_zip_sizes(path, z.infolist())
                # torch's reader does not check the members' CRC32s: a flipped bit in the weights
                # would load silently, so check them here (about 1 s per GB)
                broken = z.testzip()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as e:
            raise ModelLoadError(f"{path} is a damaged zip archive ({e}); re-export the model") from None
        if broken is not None:
            raise ModelLoadError(f"{path} is damaged (checksum mismatch in {broken}); re-export or re-download it")
        if any("/code/__torch__" in n for n in names) and any(n.endswith("constants.pkl") for n in names):
            return "torchscript"
        if any(n.endswith("models/model.json") or n.endswith("archive_format") for n in names):
            return "torch-export"
        if any(n.endswith("data.pkl") for n in names):
            return "torch-save"
        raise ModelLoadError(f"{path} is a zip archive but not a PyTorch file; supported: {SUPPORTED}")
    if len(head) >= 9 and head[8:9] == b"{":
        (n,) = struct.unpack("<Q", head[:8])
        if 0 < n < size:
            return "safetensors"
        raise ModelLoadError(f"{path} looks like safetensors but its header claims {n:,} bytes in a "
                             f"{size:,}-byte file (truncated or forged); re-download it")
    if head[:1] == b"\x80" and path.suffix.lower() not in (".onnx",):
        check_not_polyglot(path)
        return "torch-save"  # legacy (non-zip) torch.save or a plain pickle
    if path.suffix.lower() in (".engine", ".plan", ".trt"):
        return "tensorrt"
    if head.lstrip().startswith(b"<") and path.suffix.lower() == ".xml":
        return "openvino"  # an OpenVINO IR graph; its weights are the .bin beside it
    return "onnx"  # parsed (and rejected with a clear message if it is not ONNX) by the ONNX loader


def load_model(path: str | os.PathLike, *, arch: str | None = None, arch_kwargs: dict | None = None,
               allow_pickle: bool = False, trusted_globals: tuple[str, ...] = (),
               run_code_from_file: bool = False, guess_inputs: bool = True) -> LoadedModel:
    """Load any supported model file. Raises :class:`ModelLoadError`/:class:`UnsafeModelError`.

    ``allow_pickle`` approves nn.Module classes from torch.nn and ``arch`` in a full pickled module,
    ``trusted_globals`` any other global it names; ``run_code_from_file`` unpickles without any
    check (files the user made themselves). ``guess_inputs=False`` skips proposing (and
    test-running) input shapes for bare modules, for callers about to set them from ``--input``.
    """
    path = Path(path)
    try:
        return _load(path, arch, arch_kwargs, PickleTrust(allow_pickle, tuple(trusted_globals), run_code_from_file),
                     guess_inputs)
    except StudioError:
        raise
    except MemoryError:
        raise ModelLoadError(f"{path} asks for more memory than a job may use (layer sizes from the file; "
                             "DEPLOYSTUDIO_JOB_MEMORY_MB sets the limit)") from None
    except Exception as e:  # noqa: BLE001 - damaged files fail deep inside the readers in many ways (fuzzing)
        raise ModelLoadError(f"{path} could not be loaded: {describe(e)}; it is damaged or not a "
                             f"supported model ({SUPPORTED})") from None


def _load(path: Path, arch, arch_kwargs, trust: PickleTrust, guess_inputs: bool) -> LoadedModel:
    kind = sniff_format(path)
    if kind == "onnx":
        return _load_onnx(path)
    if kind == "tensorrt":
        from converters.tensorrt import load_engine

        return load_engine(path)
    if kind == "openvino":
        from converters.openvino import load_ir

        return load_ir(path)
    if kind == "torchscript":
        return _load_torchscript(path, guess_inputs)
    if kind == "torch-export":
        return _load_exported(path, trust)
    if kind == "safetensors":
        return _load_state_dict(path, _read_safetensors(path), arch, arch_kwargs, guess_inputs)
    return _load_torch_save(path, arch, arch_kwargs, trust, guess_inputs)


# ---------------------------------------------------------------------------- sizes and params
def file_size_with_data(path: Path, extra: list[Path] = ()) -> int:
    return path.stat().st_size + sum(p.stat().st_size for p in extra if p.exists())


def _module_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------------------- torch.save / state dicts
def _read_safetensors(path: Path) -> dict:
    try:
        from safetensors.torch import load_file  # maps the file: tensors stay in the page cache, not copied

        return load_file(str(path))
    except Exception as e:
        raise ModelLoadError(f"{path} is not a readable safetensors file ({e}); re-export it") from None


@dataclass(frozen=True)
class PickleTrust:
    """What the user approved for a full pickled module (see :mod:`app.unpickling`)."""

    allow_pickle: bool = False
    trusted_globals: tuple[str, ...] = ()
    run_code_from_file: bool = False


def _load_torch_save(path: Path, arch, arch_kwargs, trust: PickleTrust, guess: bool = True) -> LoadedModel:
    import pickle

    import torch

    try:
        from app.unpickling import starts_like_zip

        # zip archives are memory-mapped: the weights stay in the page cache, not copied (issue 16)
        obj = torch.load(str(path), map_location="cpu", weights_only=True, mmap=starts_like_zip(path))
    except pickle.UnpicklingError as e:
        if "Weights only load failed" not in str(e) and "Unsupported global" not in str(e):
            raise ModelLoadError(f"{path} is damaged or not a PyTorch file ({_first_line(e)}); re-export it") from None
        return _load_pickled_module(path, arch, arch_kwargs, trust, guess)
    except Exception as e:  # noqa: BLE001 - torch's readers fail on damage with many types (found by fuzzing)
        raise ModelLoadError(f"{path} is damaged or truncated ({_first_line(e)}); re-export the model") from None
    if isinstance(obj, torch.nn.Module):  # allowed by weights_only only for trivial modules
        return _from_module(path, obj, "pickle", guess=guess)
    state = _find_state_dict(obj)
    if state is None:
        raise ModelLoadError(f"{path} holds a {type(obj).__name__}, not a state dict or model; "
                             "save model.state_dict() or the model itself")
    return _load_state_dict(path, state, arch, arch_kwargs, guess)


def _find_state_dict(obj: Any) -> dict | None:
    import torch

    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    if isinstance(obj, dict):  # training checkpoints: {"state_dict": ..., "optimizer": ...}
        for key in ("state_dict", "model_state_dict", "model", "module", "net", "ema"):
            if key in obj:
                found = _find_state_dict(obj[key])
                if found is not None:
                    return found
    return None


def _load_state_dict(path: Path, state: dict, arch: str | None, arch_kwargs: dict | None,
                     guess: bool = True) -> LoadedModel:
    import torch

    params = sum(int(t.numel()) for t in state.values() if isinstance(t, torch.Tensor))
    if not arch:
        # A state dict alone cannot run; inspect still shows what it holds.
        return LoadedModel(path, "state-dict", [], [], params, path.stat().st_size,
                           details={"tensors": len(state)},
                           warnings=[f"{path.name} holds weights only; pass --arch file.py:Factory "
                                     "(the class or function that builds the network) to convert it"])
    state = {k.removeprefix("module."): v for k, v in state.items()}  # DataParallel checkpoints
    module, result = _module_with_weights(arch, arch_kwargs, state)
    missing, unexpected = list(result.missing_keys), list(result.unexpected_keys)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} (e.g. {', '.join(unexpected[:3])})")
        raise BadInput(f"{path.name} does not fit --arch {arch}: {'; '.join(parts)}; "
                       "check the architecture and --arch-kwargs")
    return _from_module(path, module, "state-dict", guess=guess)


def _module_with_weights(arch: str, arch_kwargs: dict | None, state: dict):
    """Build ``arch`` and give it ``state``'s weights: (module, load_state_dict's result).

    The network is first built on the meta device (no memory, no random init) and the state dict's
    tensors — memory-mapped from the file — are assigned rather than copied, so the weights exist
    once. Architectures that cannot be built on meta, buffers the state dict lacks, or dtypes that
    differ from the module's fall back to a normal build and copy."""
    import torch

    from app.arch import build_module

    try:
        with torch.device("meta"):
            module = build_module(arch, arch_kwargs)
        own = dict(module.state_dict(keep_vars=True))
        fits = all(k in state and state[k].dtype == v.dtype for k, v in own.items())
        if fits:
            result = module.load_state_dict(state, strict=False, assign=True)
            if not any(t.is_meta for t in [*module.parameters(), *module.buffers()]):
                return module, result
    except StudioError:
        raise
    except Exception:  # noqa: BLE001 - e.g. an __init__ that computes on its tensors: build it normally
        pass
    module = build_module(arch, arch_kwargs)
    return module, module.load_state_dict(state, strict=False)


def _load_pickled_module(path: Path, arch, arch_kwargs, trust: PickleTrust, guess: bool = True) -> LoadedModel:
    import torch

    from app.unpickling import load_pickled_module

    obj = load_pickled_module(path, allow_pickle=trust.allow_pickle, arch=arch, trusted=trust.trusted_globals,
                              run_code_from_file=trust.run_code_from_file)
    if not isinstance(obj, torch.nn.Module):
        state = _find_state_dict(obj)
        if state is not None:
            return _load_state_dict(path, state, arch, arch_kwargs, guess)
        raise ModelLoadError(f"{path} holds a {type(obj).__name__}, not an nn.Module")
    return _from_module(path, obj, "pickle", guess=guess)


# ---------------------------------------------------------------------------- modules: signature
def forward_input_names(module) -> list[str]:
    """Names of the required positional parameters of ``module.forward``."""
    try:
        schema = getattr(module.forward, "schema", None)  # ScriptModule
        if schema is not None:
            return [a.name for a in schema.arguments[1:] if not a.has_default_value()]
        sig = inspect.signature(module.forward)
    except (TypeError, ValueError, AttributeError):
        return ["input"]
    names = [p.name for p in sig.parameters.values()
             if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    return names or ["input"]


def guess_inputs(module, names: list[str]) -> list[TensorSpec] | None:
    """Propose input shapes from the first layer (a guess, reported as such)."""
    from app import layers

    for _, sub in layers.named_layers(module):
        kind = layers.kind_of(sub)
        shape: tuple[int, ...] | None = None
        dtype = "float32"
        if kind in ("Conv1d", "Conv2d", "Conv3d") and layers.in_channels(sub):
            c = layers.in_channels(sub)
            shape = {"Conv1d": (1, c, 128), "Conv2d": (1, c, 224, 224), "Conv3d": (1, c, 16, 112, 112)}[kind]
        elif kind == "Linear" and layers.in_features(sub):
            shape = (1, layers.in_features(sub))
        elif kind == "Embedding":
            shape, dtype = (1, 16), "int64"
        elif kind in ("LSTM", "GRU", "RNN") and layers.rnn_input_size(sub):
            size = layers.rnn_input_size(sub)
            shape = (1, 16, size) if getattr(sub, "batch_first", False) else (16, 1, size)
        if shape is None:
            continue
        if len(names) == 1 or dtype == "int64":
            return [TensorSpec(n, dtype, shape, shape) for n in names]
        return None
    return None


def output_specs(outputs: list, names: list[str] | None = None) -> list[TensorSpec]:
    specs = []
    for i, t in enumerate(outputs):
        name = names[i] if names and i < len(names) else ("output" if len(outputs) == 1 else f"output_{i}")
        specs.append(TensorSpec(name, str(t.dtype).removeprefix("torch."), tuple(t.shape), tuple(t.shape)))
    return specs


def probe_outputs(fn, inputs: list[TensorSpec]) -> list:
    """Run ``fn`` once on zeros-like example inputs; returns the flat output tensors."""
    import torch

    from app.inputs import make_feeds

    feeds = make_feeds(inputs, seed=0)
    args = [torch.from_numpy(feeds[s.name]) for s in inputs]
    with torch.inference_mode():
        return flatten_outputs(fn(*args))


def _from_module(path: Path, module, fmt: str, inputs: list[TensorSpec] | None = None,
                 outputs: list[TensorSpec] | None = None, details: dict | None = None,
                 guess: bool = True) -> LoadedModel:
    module.eval()
    names = forward_input_names(module)
    guessed = False
    warnings: list[str] = []
    if inputs is None and guess:
        inputs = guess_inputs(module, names)
        guessed = inputs is not None
        if guessed:
            warnings.append("input shapes are a guess from the first layer ("
                            + ", ".join(s.describe() for s in inputs) + "); pass --input NAME:SHAPE[:DTYPE] to set them")
    model = LoadedModel(path, fmt, inputs or [TensorSpec(n) for n in names], outputs or [],
                        _module_params(module), path.stat().st_size, module=module,
                        inputs_guessed=guessed, details=dict(details or {}), warnings=warnings)
    model.details["input_names_from_forward"] = names
    if inputs and not outputs:
        try:
            model.outputs = output_specs(probe_outputs(module, inputs))
        except Exception as e:
            if guessed:
                model.inputs = [TensorSpec(n) for n in names]
                model.inputs_guessed = False
                model.warnings = [f"could not guess the input shapes ({_first_line(e)}); "
                                  "pass --input NAME:SHAPE[:DTYPE] for " + ", ".join(names)]
            else:
                model.warnings.append(f"running the model on its recorded inputs failed: {_first_line(e)}")
    model._runner = torch_runner(module, model.inputs)
    return model


def with_inputs(model: LoadedModel, inputs: list[TensorSpec]) -> LoadedModel:
    """The same model with a user-given signature; re-probes the outputs of torch models."""
    model.inputs = inputs
    model.inputs_guessed = False
    model.warnings = [w for w in model.warnings if "guess" not in w and "--input" not in w]
    if model.is_torch and model.module is not None:
        fn = model.module.module() if model.format == "torch-export" else model.module
        try:
            names = [o.name for o in model.outputs] if model.outputs else None
            model.outputs = output_specs(probe_outputs(fn, inputs), names)
        except Exception as e:
            raise BadInput(f"{model.path.name} does not run on the given inputs "
                           f"({', '.join(s.describe() for s in inputs)}): {_first_line(e)}") from None
        model._runner = torch_runner(fn, inputs)
    elif model.format == "onnx":
        model._runner = model._runner  # ONNX feeds are cast by LoadedModel.run
    return model


# ---------------------------------------------------------------------------- TorchScript / torch.export
def _recorded_signature(raw: str | bytes | None) -> tuple[list[TensorSpec] | None, list[TensorSpec] | None, dict]:
    if not raw:
        return None, None, {}
    try:
        data = json.loads(raw)
        return ([TensorSpec.from_json(d) for d in data["inputs"]],
                [TensorSpec.from_json(d) for d in data["outputs"]], data.get("details", {}))
    except (ValueError, KeyError, TypeError):
        return None, None, {}


def _load_torchscript(path: Path, guess: bool = True) -> LoadedModel:
    import torch

    extra = {SIGNATURE_FILE: ""}
    try:
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as e:
        raise ModelLoadError(f"{path} is a damaged TorchScript archive ({_first_line(e)}); re-export it") from None
    inputs, outputs, details = _recorded_signature(extra[SIGNATURE_FILE])
    model = _from_module(path, module, "torchscript", inputs, outputs, details, guess=guess)
    from app.archives import TORCHSCRIPT_NOTE

    model.warnings.insert(0, TORCHSCRIPT_NOTE)
    return model


def _load_exported(path: Path, trust: PickleTrust = PickleTrust()) -> LoadedModel:
    import torch

    from app.archives import check_pt2

    notes = check_pt2(path, allow_pickle=trust.allow_pickle, run_code_from_file=trust.run_code_from_file)
    extra = {SIGNATURE_FILE: ""}
    try:
        ep = torch.export.load(str(path), extra_files=extra)
    except Exception as e:
        raise ModelLoadError(f"{path} is a damaged torch.export archive ({_first_line(e)}); re-export it") from None
    inputs, outputs, details = _recorded_signature(extra[SIGNATURE_FILE])
    if inputs is None:
        inputs, outputs = _exported_signature(ep)
    params = sum(int(t.numel()) for t in ep.state_dict.values())
    model = LoadedModel(path, "torch-export", inputs, outputs, params, path.stat().st_size, module=ep,
                        details=dict(details), warnings=notes)
    model._runner = torch_runner(ep.module(), inputs)
    return model


def _exported_signature(ep) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Input/output specs from an ExportedProgram's graph: symbolic dims become dynamic labels."""
    import torch

    user_inputs = list(ep.graph_signature.user_inputs)
    examples: list = []
    if ep.example_inputs is not None:
        args, kwargs = ep.example_inputs
        examples = list(args) + list(kwargs.values())
    nodes = {n.name: n for n in ep.graph.nodes if n.op == "placeholder"}
    labels: dict[str, str] = {}
    inputs = []
    for i, name in enumerate(user_inputs):
        val = nodes[name].meta.get("val")
        if val is None or not hasattr(val, "shape"):
            continue
        dims = []
        for axis, d in enumerate(val.shape):
            if isinstance(d, torch.SymInt):
                sym = str(d)
                labels.setdefault(sym, "batch" if axis == 0 and not labels else f"{name}_dim{axis}")
                dims.append(labels[sym])
            else:
                dims.append(int(d))
        ex = tuple(examples[i].shape) if i < len(examples) and hasattr(examples[i], "shape") else ()
        inputs.append(TensorSpec(name, str(val.dtype).removeprefix("torch."), tuple(dims), ex))
    out_node = next(n for n in ep.graph.nodes if n.op == "output")
    outs = flatten_outputs(tuple(a.meta.get("val") for a in out_node.args[0] if hasattr(a, "meta")))
    outputs = []
    for i, v in enumerate(outs):
        shape = tuple(int(d) if not isinstance(d, torch.SymInt) else labels.get(str(d), f"out{i}_dim{j}")
                      for j, d in enumerate(v.shape))
        outputs.append(TensorSpec("output" if len(outs) == 1 else f"output_{i}",
                                  str(v.dtype).removeprefix("torch."), shape))
    return inputs, outputs


# ---------------------------------------------------------------------------- ONNX
def _graph_tensors(graph):
    """Every tensor of ``graph``: initializers, sparse initializers, node attributes (Constant
    values), and the same inside subgraphs (If branches, Loop and Scan bodies)."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    yield from _nodes_tensors(graph.node)


def _nodes_tensors(nodes):
    for node in nodes:
        for a in node.attribute:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors
            if a.HasField("sparse_tensor"):
                yield a.sparse_tensor.values
                yield a.sparse_tensor.indices
            for s in a.sparse_tensors:
                yield s.values
                yield s.indices
            if a.HasField("g"):
                yield from _graph_tensors(a.g)
            for g in a.graphs:
                yield from _graph_tensors(g)


def onnx_tensors(model):
    """Every tensor in an ONNX model: the main graph, its subgraphs, and local functions' nodes."""
    yield from _graph_tensors(model.graph)
    for function in model.functions:
        yield from _nodes_tensors(function.node)


def onnx_external_files(model, folder: Path, source: Path) -> list[Path]:
    """Files the model's tensors point to, each checked to lie inside ``folder`` (no climbing out)."""
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    files: list[Path] = []
    root = folder.resolve()
    for tensor in onnx_tensors(model):
        if not uses_external_data(tensor):
            continue
        location = ExternalDataInfo(tensor).location
        candidate = folder / location
        if os.path.isabs(location) or ".." in Path(location).parts:
            raise ModelLoadError(f"{source}: external data location {location!r} points outside the model's "
                                 "folder; refused (a crafted ONNX file can read any file this way)")
        if candidate.is_symlink() or not candidate.resolve().is_relative_to(root):
            raise ModelLoadError(f"{source}: external data file {location!r} is a link leading outside the "
                                 "model's folder; refused")
        if not candidate.exists():
            raise ModelLoadError(f"{source}: its weights live in {location!r}, which is missing; "
                                 "keep the data file beside the .onnx")
        if candidate not in files:
            files.append(candidate)
    return files


def _onnx_dims(value_info, name: str) -> tuple:
    dims = []
    for axis, d in enumerate(value_info.type.tensor_type.shape.dim):
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        else:
            dims.append(d.dim_param or f"{name}_dim{axis}")
    return tuple(dims)


def onnx_specs(graph) -> tuple[list[TensorSpec], list[TensorSpec]]:
    from onnx.helper import tensor_dtype_to_np_dtype

    init = {i.name for i in graph.initializer}

    def spec(v):
        elem = v.type.tensor_type.elem_type
        dtype = str(tensor_dtype_to_np_dtype(elem)) if elem else "float32"
        return TensorSpec(v.name, dtype, _onnx_dims(v, v.name))

    return [spec(v) for v in graph.input if v.name not in init], [spec(v) for v in graph.output]


def _load_onnx(path: Path) -> LoadedModel:
    import onnx
    from google.protobuf.message import DecodeError

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except (DecodeError, RuntimeError, ValueError, OSError) as e:
        raise ModelLoadError(f"{path} is not a readable model: not ONNX, truncated or damaged "
                             f"({_first_line(e)}); supported: {SUPPORTED}") from None
    if not proto.graph.node and not proto.graph.output:
        raise ModelLoadError(f"{path} is not a model file (no ONNX graph in it); supported: {SUPPORTED}")
    data_files = onnx_external_files(proto, path.parent, path)
    inputs, outputs = onnx_specs(proto.graph)
    ops = Counter((f"{n.domain}::" if n.domain not in ("", "ai.onnx") else "") + n.op_type for n in proto.graph.node)
    params = 0
    for t in proto.graph.initializer:
        n = 1
        for d in t.dims:
            n *= d
        params += n
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    details = {"opset": opset, "ir_version": proto.ir_version, "producer": f"{proto.producer_name} {proto.producer_version}".strip(),
               "operators": dict(ops.most_common()), "external_data": [p.name for p in data_files]}
    model = LoadedModel(path, "onnx", inputs, outputs, params, file_size_with_data(path, data_files),
                        module=path, details=details)
    session: list = []

    def run(feeds):
        if not session:
            session.append(ort_session(path, map_weights=bool(data_files)))
        return session[0].run(None, feeds)

    model._runner = run
    model._release = session.clear
    return model


def ort_session(path: Path, providers: list[str] | None = None, threads: int | None = None, *,
                map_weights: bool = False):
    """An ONNX Runtime session for ``path``; errors become one clear line.

    ``map_weights``: keep external-data weights in the file's memory mapping (the page cache) instead
    of copying them into pre-packed buffers — a verification run does not need pre-packing's speed,
    and a multi-GB model then costs no second copy."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if map_weights:
        opts.add_session_config_entry("session.disable_prepacking", "1")
    if threads:
        opts.intra_op_num_threads = threads
    providers = providers or ["CPUExecutionProvider"]
    try:
        return ort.InferenceSession(str(path), opts, providers=providers)
    except Exception as e:
        error = e
    if "external" in str(error).lower():
        # ONNX Runtime's shape inference cannot read small constants (e.g. ReduceMean axes) that an
        # exporter put in external data; give it the model with its data loaded in memory instead
        import onnx

        proto = onnx.load(str(path))
        if proto.ByteSize() < 2**31 - 1:
            try:
                return ort.InferenceSession(proto.SerializeToString(), opts, providers=providers)
            except Exception as e:
                error = e
    raise ModelLoadError(f"ONNX Runtime cannot load {path.name}: {_first_line(error)}") from None

