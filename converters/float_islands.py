"""Nodes kept in float in a static QDQ int8 graph (the accuracy-budget loop's node stage).

ONNX Runtime's ``nodes_to_exclude`` only stops *that node's* quantizer from marking tensors: in QDQ
format a Conv/Gemm/MatMul also quantizes its own output, and each consumer quantizes its input. An
excluded Add between two convolutions (a residual connection) therefore still reads
``DequantizeLinear(QuantizeLinear(x))`` and its output is still requantized for the next Conv: the
quantized model is byte-identical (measured on EfficientNet-Lite0: ``node_add_2`` excluded or not,
same SHA-256). For a Conv the exclusion keeps its weights in float, but its input is still requantized.

:func:`keep_in_float` finishes the job on the quantized graph: an excluded node reads the float tensors
behind the ``QuantizeLinear → DequantizeLinear`` pairs on its inputs, and its consumers read its float
output — except int8 compute ops (Conv, MatMul, Gemm, ConvTranspose) that are not excluded, which keep
their quantized input (that is their int8 kernel). Pairs left without a consumer are removed. Names are
matched by node name, else by the tensor a node computes (stable through pre-processing).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import NamedTuple

INT8_COMPUTE = {"Conv", "ConvTranspose", "MatMul", "Gemm"}
QDQ = {"QuantizeLinear", "DequantizeLinear"}


@dataclass(frozen=True)
class GraphNode:
    """A node of the graph the budget loop keeps nodes of in float: its name there, its op, the module
    path it comes from (``_blocks.6._project_conv``; None where the exporter left none) and its block."""

    name: str
    op_type: str
    module: str | None
    block: str | None
    layer: bool = True      # the module's own operation (a Conv of an nn.Conv2d), not one in its forward

    @property
    def label(self) -> str:
        """The name a user recognises: the module path (``_blocks.6._project_conv``), an op inside a
        module's forward as ``_blocks.6/add_2``, else the graph's node name."""
        if self.module is None:
            return self.name
        return self.module if self.layer else f"{self.module}/{self.name.removeprefix('node_')}"


class RankedNode(NamedTuple):
    """One operation of a target's own graph and the error at its output (the fields the budget loop reads,
    as :class:`app.accuracy.diagnose.NodeError` has them for ONNX)."""

    node: str
    op_type: str
    output: str
    error: float
    added: float


def resolve(graph, names) -> tuple[list[str], dict[str, str]]:
    """``names`` as node names of ``graph``: a node's name, else the node that computes the tensor of that
    name; and, for those not found, why."""
    nodes = {n.name for n in graph.node if n.name}
    by_output = {o: n.name for n in graph.node for o in n.output if n.name}
    found, missing = [], {}
    for name in names:
        if name in nodes:
            found.append(name)
        elif name in by_output:
            found.append(by_output[name])
        else:
            missing[name] = "no node or tensor of that name in the graph the quantizer saw"
    return list(dict.fromkeys(found)), missing


def _index(graph):
    producer = {o: n for n in graph.node for o in n.output}
    consumers = defaultdict(list)
    for n in graph.node:
        for k, t in enumerate(n.input):
            consumers[t].append((n, k))
    return producer, consumers


FOLDED = ("Relu", "Clip")


def _unfolded(graph, reference, tensor: str, producer) -> str:
    """``tensor`` as the float graph computes it: static QDQ removes a Relu/Clip (ReLU6) after a quantized
    Conv — the output range clips instead — and gives its output name to the Conv, whose float output is
    then unclipped; read behind the Q/DQ pair, the activation is put back (once)."""
    if reference is None:
        return tensor
    ref = next((n for n in reference.node if tensor in n.output), None)
    now = producer.get(tensor)
    if ref is None or ref.op_type not in FOLDED or now is None or now.op_type == ref.op_type:
        return tensor
    name = f"{tensor}_float_{ref.op_type}"
    if name not in producer:
        import copy

        have = {t.name for t in graph.initializer} | {o for n in graph.node for o in n.output}
        for i in ref.input[1:]:      # a Clip's bounds, if the quantizer dropped them
            if i and i not in have:
                bound = next((t for t in reference.initializer if t.name == i), None)
                const = next((n for n in reference.node if i in n.output), None)
                if bound is not None:
                    graph.initializer.append(copy.deepcopy(bound))
                elif const is not None:
                    graph.node.append(copy.deepcopy(const))
        act = copy.deepcopy(ref)
        act.name, act.input[0], act.output[0] = name, tensor, name
        del act.metadata_props[:]
        graph.node.append(act)
        producer[name] = act
    return name


def _sort(graph) -> None:
    """Topological order (nodes appended at the end must come before their consumers)."""
    have = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, order = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(i in have for i in n.input)]
        if not ready:
            order += pending
            break
        for n in ready:
            order.append(n)
            have.update(n.output)
        pending = [n for n in pending if n not in ready]
    del graph.node[:]
    graph.node.extend(order)


def keep_in_float(proto, names, reference=None) -> dict[str, str]:
    """Rewire the QDQ graph of ``proto`` (in place) so the nodes ``names`` compute in float from float
    inputs and hand on a float output; ``reference``: the float graph the quantizer read (to put back the
    activations it folded). Returns, for each name that changed nothing, the reason."""
    graph = proto.graph
    weights = {t.name for t in graph.initializer}
    found, unchanged = resolve(graph, names)
    excluded = set(found)
    by_name = {n.name: n for n in graph.node}
    outputs = {o.name for o in graph.output}
    for name in found:
        node = by_name[name]
        producer, consumers = _index(graph)
        changed = False
        for k, t in enumerate(node.input):           # inputs: the float tensor behind Q → DQ
            dq = producer.get(t)
            if dq is None or dq.op_type != "DequantizeLinear":
                continue
            q = producer.get(dq.input[0])
            if q is None or q.op_type != "QuantizeLinear" or q.input[0] in weights:
                continue
            node.input[k] = _unfolded(graph, reference, q.input[0], producer)
            changed = True
        for o in node.output:                         # output: consumers read it unquantized
            for q, _ in list(consumers.get(o, [])):
                if q.op_type != "QuantizeLinear":
                    continue
                for dq, _ in list(consumers.get(q.output[0], [])):
                    if dq.op_type != "DequantizeLinear":
                        continue
                    for c, k in list(consumers.get(dq.output[0], [])):
                        if c.op_type in INT8_COMPUTE and c.name not in excluded:
                            continue
                        c.input[k] = o
                        changed = True
        if not changed:
            ops = {n.op_type for n in graph.node if any(i in node.input for i in n.output)}
            unchanged[name] = (f"ONNX Runtime left no Q/DQ pair around it ({node.op_type} reading "
                               f"{', '.join(sorted(ops)) or 'graph inputs'}): it already ran in float")
    # pairs that no longer feed anything
    while True:
        _, consumers = _index(graph)
        dead = [n for n in graph.node if n.op_type in QDQ and
                not any(consumers.get(o) or o in outputs for o in n.output)]
        if not dead:
            break
        for n in dead:
            graph.node.remove(n)
    _sort(graph)
    used = {t for n in graph.node for t in n.input}
    for t in [t for t in graph.initializer if t.name not in used]:   # scales/zero points of removed pairs
        graph.initializer.remove(t)
    return unchanged
