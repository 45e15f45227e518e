"""Where does the error come from? Run the fp32 ONNX reference and an fp16/int8 artifact with every
intermediate tensor exposed, match tensors by name, and rank nodes by the error they add.

Every error is a *relative L2 error*, ‖artifact − fp32‖ / ‖fp32‖ of a tensor over the samples (0.05
reads "5 %"). Two figures per node, both in that unit:

- the error *at its output*: its output tensor's error in the artifact, everything before it quantized
  too (what it inherited plus what it added);
- the error it *adds*: that minus the largest error among the tensors it reads (past nodes whose tensors
  are not compared): the part this node introduced (its weights' and its input activations'
  quantization, or its fp16 arithmetic), not what it inherited. A negative figure: the node shrinks
  the error it reads (a Relu cutting off noise below zero, a pooling averaging it out).

Each node also carries the module it comes from (``_blocks.3._project_conv``: :func:`graph_nodes`) and
the artifact's node that computes it (the one the Graph tab selects: a Clip the quantizer folded into
the Conv before it is that Conv). ONNX Runtime's quantizer keeps the fp32 graph's tensor
names (QDQ only appends ``_QuantizeLinear_Output``/``_DequantizeLinear_Output`` tensors), and the
fp16 converter keeps them too, so names match without any mapping.

Own code rather than ``onnxruntime.quantization.qdq_loss_debug``: that module matches QDQ models only,
this works for dynamic int8 and fp16 as well, and ranks by added error rather than listing tensors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from app.errors import BadInput, first_line
from converters.float_islands import GraphNode  # noqa: F401 - the node stage's names, shared with the converters
from app.model.loaded import Feeds

FLOAT_TYPES = (1, 10, 11, 16)   # TensorProto FLOAT, FLOAT16, DOUBLE, BFLOAT16


@dataclass(frozen=True)
class NodeError:
    """One node of the reference graph and the error at its output in the artifact."""

    node: str
    op_type: str
    output: str
    error: float        # relative L2 of the output tensor, over the samples
    added: float        # error minus the largest error among the node's inputs
    layer: str = ""     # the module it comes from (``_blocks.3._project_conv``), "" where the exporter left none
    graph_node: str = ""    # the artifact's node computing it (what the Graph tab selects), "" if none
    graph_op: str = ""      # that node's op (a Conv where the quantizer folded this Clip into it)

    def to_json(self) -> dict:
        return asdict(self)


def added_by_node(ranking) -> dict[str, float]:
    """The error each node of the artifact's graph adds (``graph_node``, else the reference's node name),
    from a ranking of :class:`NodeError` or their JSON dicts; the reference nodes one artifact node
    computes (a Clip folded into its Conv) summed. The key that joins with
    :func:`app.bench.profile.ms_by_node`."""
    found: dict[str, float] = {}
    for e in ranking or ():
        get = e.get if isinstance(e, dict) else (lambda k, e=e: getattr(e, k, ""))
        name, added = get("graph_node") or get("node"), get("added")
        if name and isinstance(added, (int, float)):
            found[str(name)] = found.get(str(name), 0.0) + float(added)
    return found


def _exposed_session(path: Path):
    """An ONNX Runtime session on ``path`` whose outputs include every float intermediate tensor."""
    import onnx
    import onnxruntime as ort

    proto = onnx.load(str(path))
    try:
        inferred = onnx.shape_inference.infer_shapes(proto)
    except Exception:
        inferred = proto
    known = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    present = {o.name for o in proto.graph.output}
    for node in proto.graph.node:
        for name in node.output:
            info = known.get(name)
            if name and name not in present and info is not None and info.type.tensor_type.elem_type in FLOAT_TYPES:
                proto.graph.output.append(info)
                present.add(name)
    options = ort.SessionOptions()
    # fused kernels would hide the tensors we ask for
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"]), proto
    except Exception as e:
        raise BadInput(f"{path.name}: ONNX Runtime cannot run it with its intermediate tensors exposed "
                       f"({first_line(e)})") from None


FOLDED = ("Relu", "Clip")   # activations static QDQ folds into the quantized output of the node before


def _clip_bounds(proto, node) -> tuple[float, float]:
    """A Relu's or Clip's output range (Clip's min/max from its attributes, initializers or Constant nodes)."""
    if node.op_type == "Relu":
        return 0.0, np.inf
    from onnx import numpy_helper

    low, high = -np.inf, np.inf
    for a in node.attribute:
        if a.name == "min":
            low = a.f
        elif a.name == "max":
            high = a.f
    values = {t.name: t for t in proto.graph.initializer}
    values.update({n.output[0]: a.t for n in proto.graph.node if n.op_type == "Constant"
                   for a in n.attribute if a.name == "value"})
    bounds = [low, high]
    for k, name in enumerate(node.input[1:3]):
        if name in values:
            bounds[k] = float(numpy_helper.to_array(values[name]).reshape(-1)[0])
    return bounds[0], bounds[1]


def tensor_errors(reference: Path, artifact: Path, samples: list[Feeds]) -> tuple[dict[str, float], object]:
    """Relative L2 error of every tensor both graphs compute (by name), over ``samples``; and the
    reference graph (to walk its nodes)."""
    errors, ref_proto, _art_proto = _tensor_errors(reference, artifact, samples)
    return errors, ref_proto


def _tensor_errors(reference: Path, artifact: Path, samples: list[Feeds]):
    ref_sess, ref_proto = _exposed_session(Path(reference))
    art_sess, art_proto = _exposed_session(Path(artifact))
    # static QDQ removes a Relu after Conv/MatMul (the uint8 output range clips it) and gives its
    # output name to the Conv: that float tensor is the Conv's, before the clip, so clip it too
    # (a Clip — ReLU6 — is removed the same way: EfficientNet-Lite's convolutions all end in one)
    ref_op = {o: n.op_type for n in ref_proto.graph.node for o in n.output}
    art_op = {o: n.op_type for n in art_proto.graph.node for o in n.output}
    folded_relu = {o: _clip_bounds(ref_proto, n) for n in ref_proto.graph.node for o in n.output[:1]
                   if n.op_type in FOLDED and art_op.get(o, n.op_type) != n.op_type}
    ref_names = [o.name for o in ref_sess.get_outputs()]
    art_names = {o.name for o in art_sess.get_outputs()}
    common = [n for n in ref_names if n in art_names]
    if not common:
        raise BadInput(f"{Path(artifact).name} shares no tensor names with {Path(reference).name}: was it built from it?")
    ref_inputs = {i.name for i in ref_sess.get_inputs()}
    art_inputs = {i.name for i in art_sess.get_inputs()}
    num = dict.fromkeys(common, 0.0)
    den = dict.fromkeys(common, 0.0)
    for feeds in samples:
        ref = dict(zip(ref_names, ref_sess.run(ref_names, {k: v for k, v in feeds.items() if k in ref_inputs})))
        got = dict(zip(common, art_sess.run(common, {k: v for k, v in feeds.items() if k in art_inputs})))
        for name in common:
            r, g = np.asarray(ref[name], np.float64), np.asarray(got[name], np.float64)
            if name in folded_relu:
                g = np.clip(g, *folded_relu[name])
            if r.shape != g.shape:
                num.pop(name, None)
                continue
            if name in num:
                # attention masks add the dtype's lowest value (-3.4e38): squares overflow, and those
                # positions vanish in the softmax anyway, so they are left out
                keep = np.abs(r) < 1e30
                d = np.where(keep, np.nan_to_num(g - r, nan=1e15, posinf=1e15, neginf=1e15), 0.0)
                num[name] += float(np.sum(d * d))
                den[name] += float(np.sum(np.where(keep, r, 0.0) ** 2))
    return ({n: (np.sqrt(num[n]) / np.sqrt(den[n]) if den[n] > 0 else np.sqrt(num[n])) for n in num}, ref_proto,
            art_proto)


def rank_nodes(reference: Path, artifact: Path, samples: list[Feeds], top: int | None = None) -> list[NodeError]:
    """Nodes of ``reference`` ordered by the error they add in ``artifact`` (worst first)."""
    return diagnose(reference, artifact, samples, top)["ranking"]


def diagnose(reference: Path, artifact: Path, samples: list[Feeds], top: int | None = None) -> dict:
    """``ranking``: the nodes of ``reference`` ordered by the error they add in ``artifact`` (worst first),
    each with its module path and the artifact's node that computes it; ``outputs``: the relative L2
    error of each of the model's outputs (the end of the line every node's error feeds)."""
    errors, proto, art_proto = _tensor_errors(reference, artifact, samples)
    own_outputs = ref_outputs(Path(reference))
    producer = {o: n for n in proto.graph.node for o in n.output}
    constants = {t.name for t in proto.graph.initializer} | {i.name for i in proto.graph.input}
    layers = {g.name: g for g in _graph_nodes_of(proto.graph)}
    shown = _artifact_nodes(art_proto.graph)

    def inherited(node) -> float:
        """The largest error among the tensors ``node`` reads: where one is not compared (an integer
        shape, a tensor the quantizer renamed), the largest among the tensors its producer reads."""
        worst, stack, seen = 0.0, list(node.input), set()
        while stack:
            name = stack.pop()
            if not name or name in seen or name in constants:
                continue
            seen.add(name)
            if name in errors:
                worst = max(worst, errors[name])
            elif name in producer and len(seen) < 64:
                stack.extend(producer[name].input)
        return worst

    ranked = []
    for node in proto.graph.node:
        outs = [o for o in node.output if o in errors]
        if not outs:
            continue
        out = max(outs, key=lambda o: errors[o])
        owner = node
        if node.op_type in FOLDED and node.input and node.input[0] not in errors and node.input[0] in producer:
            owner = producer[node.input[0]]  # the Relu was folded into this node: the error is its
        name = owner.name or out
        graph_node, graph_op = shown(owner.name, out)
        ranked.append(NodeError(name, owner.op_type, out, float(errors[out]), float(errors[out] - inherited(owner)),
                                _layer_label(layers.get(owner.name), owner), graph_node, graph_op))
    ranked.sort(key=lambda n: n.added, reverse=True)
    outputs = {o: float(errors[o]) for o in own_outputs if o in errors}
    return {"ranking": ranked[:top] if top else ranked, "outputs": outputs}


INTEGER_OPS = {"MatMulInteger", "ConvInteger", "QLinearConv", "QLinearMatMul", "QGemm"}


def ref_outputs(path: Path) -> list[str]:
    """The names of the model's own outputs (not the intermediate tensors the ranking exposes)."""
    import onnx

    return [o.name for o in onnx.load(str(path), load_external_data=False).graph.output]


def _artifact_nodes(graph):
    """``(node name, output tensor) -> (name, op)`` of the artifact's node that computes it: the node of
    that name, else the one computing the tensor, past the Quantize/DequantizeLinear pair a quantizer
    puts after it (static QDQ folds a Relu/Clip into the Conv before it and hands it the tensor)."""
    by_name = {n.name: n for n in graph.node if n.name}
    producer = {o: n for n in graph.node for o in n.output}
    integer = [n for n in graph.node if n.op_type in INTEGER_OPS]

    def find(name: str, output: str) -> tuple[str, str]:
        # dynamic int8 makes a Gemm a MatMulInteger named after it (node_linear_MatMul_quant), then Mul, Add
        hit = (by_name.get(name) or next((n for n in integer if name and n.name.startswith(name + "_")), None)
               or producer.get(output))
        for _ in range(4):
            if hit is None or hit.op_type not in ("QuantizeLinear", "DequantizeLinear") or hit.input[0] not in producer:
                break
            hit = producer[hit.input[0]]
        return (hit.name or output, hit.op_type) if hit is not None else ("", "")

    return find
def percent(value: float) -> str:
    """A relative L2 error as a percentage: ``0.1453`` → ``14.5 %``, ``0.000012`` → ``0.0012 %``."""
    v = 100.0 * float(value)
    if v == 0:
        return "0 %"
    return f"{v:.3g} %" if abs(v) < 100 else f"{v:.0f} %"


ERROR_UNIT = "relative L2 error, ‖artifact − fp32‖ / ‖fp32‖"


def format_ranking(nodes: list[NodeError]) -> str:
    """The ranking as an aligned text table (errors in percent of the fp32 tensor's L2 norm)."""
    head = ("#", "layer", "node", "op", "added error", "error at its output")
    rows = [(str(i + 1), n.layer or "?", n.node, n.op_type, percent(n.added), percent(n.error))
            for i, n in enumerate(nodes)]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    line = lambda r: "  ".join(c.ljust(w) if i in (1, 2, 3) else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([line(head), line(tuple("-" * w for w in widths))] + [line(r) for r in rows])


# -- names as the user sees them, and the node stage's groups -----------------------------------------
COMPUTE_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul"}
ELEMENTWISE = {"Add", "Mul", "Sub", "Div"}


def _scopes(node) -> list[str]:
    return _metadata_list(node, "pkg.torch.onnx.name_scopes")


def _torchscript_scope(name: str) -> list[str]:
    """The module paths in a TorchScript-exporter node name, outermost first: ``/layer1/layer1.0/conv1/Conv``
    → ``["layer1", "layer1.0", "layer1.0.conv1"]`` (the last part is the op)."""
    if not name.startswith("/") or name.count("/") < 2:
        return []
    paths, current = [], ""
    for part in name.strip("/").split("/")[:-1]:
        current = part if not current or part.startswith(current + ".") else f"{current}.{part}"
        paths.append(current)
    return paths


def graph_nodes(path: Path) -> list[GraphNode]:
    """The nodes of an ONNX graph in order with their module paths: a Conv/Gemm/MatMul's from its weight's
    name (``_blocks.6._project_conv.weight``: the exporter names initializers after the parameters, and a
    batch norm folded into it keeps its own scope), else the dynamo exporter's ``name_scopes`` metadata,
    else the TorchScript exporter's node name (``/features/features.0/Conv``).
    A layer's block is its parent module; an op written in a module's forward (a residual Add) belongs
    to that module."""
    import onnx

    return _graph_nodes_of(onnx.load(str(path), load_external_data=False).graph)


def _graph_nodes_of(graph) -> list[GraphNode]:
    weights = {t.name for t in graph.initializer}
    out = []
    for n in graph.node:
        module = block = None
        leaf = True
        weight = n.input[1] if n.op_type in COMPUTE_OPS and len(n.input) > 1 else ""
        scopes = _scopes(n)
        paths = [s for s in scopes[:-1] if s] or _torchscript_scope(n.name)   # dynamo: the last one is the aten op
        if weight in weights and ".weight" in weight:
            module = weight.split(".weight")[0]
            block = module.rpartition(".")[0] or module
        elif paths:
            module = paths[-1]
            leaf = n.op_type in COMPUTE_OPS or n.op_type not in ELEMENTWISE and len(paths) > 1
            block = (module.rpartition(".")[0] or module) if leaf else module
        out.append(GraphNode(n.name or (n.output[0] if n.output else ""), n.op_type, module, block, leaf))
    return out


def _metadata_list(node, key: str) -> list[str]:
    import ast

    for p in node.metadata_props:
        if p.key == key:
            try:
                return [s for s in ast.literal_eval(p.value) if isinstance(s, str)]
            except (ValueError, SyntaxError):
                return []
    return []


def _layer_label(node: GraphNode | None, proto_node) -> str:
    """The name the Diagnosis tab shows for a node: its module path (``_blocks.3._project_conv``; a
    ReLU6 module's Clip as ``_blocks.3._swish``), an op written in a module's forward as
    ``_blocks.3/add_2`` (the operation's own name in the PyTorch program, not the exporter's ``n4_33``);
    an op of the model's own forward by its name there (``mean``); "" where the exporter left none."""
    if node is None or node.module is None:
        scopes = _scopes(proto_node)
        return scopes[-1] if len(scopes) >= 2 and not any(scopes[:-1]) else ""
    if proto_node.op_type in COMPUTE_OPS and node.layer:
        return node.module
    classes = _metadata_list(proto_node, "pkg.torch.onnx.class_hierarchy")   # the modules', then the op's
    if len(classes) >= 2 and classes[-2].startswith("torch.nn.modules."):
        return node.module          # a torch.nn layer's own op (ReLU6 → Clip, BatchNorm2d, Linear)
    scopes = _scopes(proto_node)
    op = scopes[-1] if scopes else proto_node.name.rpartition("/")[2] or proto_node.op_type
    return f"{node.module}/{op}"


def node_groups(nodes: list[GraphNode], ranking: list) -> list[tuple[str, list[str]]]:
    """The node stage's groups, most promising first: the first and last layers (the stem's convolution
    and the classifier), then each block's convolutions and element-wise ops (its residual Add), blocks
    ordered by the error their nodes add in ``ranking``."""
    compute = [n for n in nodes if n.op_type in COMPUTE_OPS]
    groups = []
    if len(compute) >= 2:
        groups.append(("first and last layers", [compute[0].name, compute[-1].name]))
    blocks: dict[str, list[str]] = {}
    for n in nodes:
        if n.block and (n.op_type in COMPUTE_OPS or n.op_type in ELEMENTWISE):
            blocks.setdefault(n.block, []).append(n.name)
    added = {r.node: max(float(r.added), 0.0) for r in ranking}
    scored = sorted(((sum(added.get(m, 0.0) for m in members), b, members) for b, members in blocks.items()
                     if len(members) > 1 and len(members) < len(compute)), key=lambda t: -t[0])
    groups += [(b, members) for score, b, members in scored if score > 0]
    return groups
