"""``torch.export`` archives (``.pt2``), checked before ``torch.export.load`` sees them
(:func:`app.safety.archives.check_pt2`); the signature recorded in them, else read from the graph."""

from __future__ import annotations

from app.errors import BadInput, ModelLoadError, first_line as _first_line
from app.loaders.checked import CheckedFile
from app.loaders.modules import SIGNATURE_FILE, recorded_signature
from app.model.loaded import LoadedModel, flatten_outputs
from app.model.specs import TensorSpec
from app.request import ModelSource
from app.runtimes.pytorch import runs_in_torch
from app.safety.archives import check_pt2


def load(file: CheckedFile, source: ModelSource, guess: bool = True) -> LoadedModel:
    """The ExportedProgram in ``file``, after :func:`app.safety.archives.check_pt2` has checked the entries of
    the archive the front door holds open (its signature is read from the graph: ``guess`` is moot)."""
    import torch

    path = file.path
    notes = check_pt2(path, allow_pickle=source.allow_pickle, run_code_from_file=source.run_code_from_file,
                      archive=file.archive)
    extra = {SIGNATURE_FILE: ""}
    reader = file.reader_path()
    try:
        ep = torch.export.load(reader, extra_files=extra)
    except Exception as e:
        raise ModelLoadError(f"{path} is a damaged torch.export archive ({_first_line(e)}); re-export it") from None
    inputs, outputs, details = recorded_signature(extra[SIGNATURE_FILE])
    if inputs is None:
        inputs, outputs = _exported_signature(ep)
    params = sum(int(t.numel()) for t in ep.state_dict.values())
    model = LoadedModel(path, "torch-export", inputs, outputs, params, file.size, module=ep,
                        details=dict(details), warnings=notes)
    model.make_runner = lambda: runs_in_torch(model)
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


def refuse_fixed_axes(model: LoadedModel, dynamic) -> None:
    """``--dynamic NAME:AXIS`` on an axis the ExportedProgram was exported with at a fixed size: its
    guards would reject every other size only after the export (``Guard failed: x.size()[0] == 1``);
    say so before any work, with how to export it with that axis dynamic."""
    import torch

    ep = model.module
    if ep is None or not dynamic:
        return
    nodes = {n.name: n for n in ep.graph.nodes if n.op == "placeholder"}
    for name, axis, label in dynamic:
        node = nodes.get(name)
        val = node.meta.get("val") if node is not None else None
        shape = getattr(val, "shape", None)
        if shape is None or not -len(shape) <= axis < len(shape):
            continue  # an unknown input or axis: apply_dynamic says so
        size = shape[axis]
        if isinstance(size, torch.SymInt):
            continue
        axis %= len(shape)
        raise BadInput(f"{model.path.name} was exported with input {name!r} axis {axis} fixed at {int(size)} "
                       f"(shape {'x'.join(str(d) for d in shape)}), so --dynamic {name}:{axis} cannot make it "
                       f"dynamic; export it with dynamic_shapes, e.g. torch.export.export(model, args, "
                       f'dynamic_shapes={{"{name}": {{{axis}: torch.export.Dim("{label}")}}}}), or convert the '
                       "Python model (its state dict with --arch) instead")
