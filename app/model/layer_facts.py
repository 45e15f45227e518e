"""Facts about a model's layers read the same way from every source format.

Eager modules carry ``in_channels``/``num_embeddings``; a ``torch.jit.trace``'d module keeps only its
parameters (``RecursiveScriptModule`` has no such attributes), an ``ExportedProgram`` has no
submodules at all, and ONNX has initializers. These helpers read sizes from the weights, which
every format keeps.
"""

from __future__ import annotations

from typing import Any, Iterator

from app.model.loaded import LoadedModel


def kind_of(module: Any) -> str:
    """``Conv2d``, ``Embedding``...: the eager class name, also for scripted/traced submodules."""
    return getattr(module, "original_name", None) or type(module).__name__


def _size(module: Any, attr: str, weight: str, axis: int) -> int | None:
    """``module.attr`` when the module has it, else ``module.<weight>.shape[axis]``."""
    try:
        value = getattr(module, attr)
        if value is not None:
            return int(value)
    except (AttributeError, RuntimeError, TypeError, ValueError):
        pass
    try:
        return int(getattr(module, weight).shape[axis])
    except (AttributeError, IndexError, RuntimeError, TypeError):
        return None


def in_channels(module: Any) -> int | None:
    """Input channels of a convolution (weight is out × in/groups × k...)."""
    # a traced conv keeps no ``groups``; a grouped conv then reads as its per-group channel count
    return _size(module, "in_channels", "weight", 1)


def in_features(module: Any) -> int | None:
    """Input features of a Linear (weight is out × in)."""
    return _size(module, "in_features", "weight", 1)


def num_embeddings(module: Any) -> int | None:
    """Rows of an Embedding table (weight is rows × dim)."""
    return _size(module, "num_embeddings", "weight", 0)


def rnn_input_size(module: Any) -> int | None:
    """Input size of an LSTM/GRU/RNN (weight_ih_l0 is gates·hidden × input)."""
    return _size(module, "input_size", "weight_ih_l0", 1)


def named_layers(module: Any) -> Iterator[tuple[str, Any]]:
    """``named_modules()`` of an eager or TorchScript module; nothing for other objects."""
    named = getattr(module, "named_modules", None)
    if named is None:
        return iter(())
    return iter(named())


def embedding_sizes(model: LoadedModel) -> list[int]:
    """Rows of every embedding table the model's integer inputs may index, from any source format."""
    if model.format == "onnx":
        return _onnx_embedding_sizes(model)
    if model.format == "torch-export" and model.module is not None:
        return _exported_embedding_sizes(model.module)
    if model.is_torch and model.module is not None:
        sizes = [num_embeddings(m) for _, m in named_layers(model.module) if kind_of(m) == "Embedding"]
        return [s for s in sizes if s]
    return []


def _exported_embedding_sizes(ep: Any) -> list[int]:
    import torch

    sizes = []
    for node in ep.graph.nodes:
        if node.op == "call_function" and node.target in (torch.ops.aten.embedding.default,):
            weight = node.args[0]
            val = getattr(weight, "meta", {}).get("val")
            if val is not None and len(val.shape) == 2:
                sizes.append(int(val.shape[0]))
    return sizes


def gather_tables(graph: Any) -> tuple[tuple[str, int], ...]:
    """(index input, rows) of each Gather in an ONNX graph whose table is an initializer."""
    inits = {i.name: i for i in graph.initializer}
    return tuple((n.input[1], int(inits[n.input[0]].dims[0])) for n in graph.node
                 if n.op_type == "Gather" and len(n.input) > 1 and n.input[0] in inits and inits[n.input[0]].dims)


def _onnx_embedding_sizes(model: LoadedModel) -> list[int]:
    tables = model.gather_tables
    if tables is None:  # a model its loader did not read them for
        import onnx

        tables = gather_tables(onnx.load(str(model.path), load_external_data=False).graph)
    names = {s.name for s in model.inputs}
    return [rows for name, rows in tables if name in names]
