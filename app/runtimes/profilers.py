"""Each runtime's own per-node profiler behind one small interface (:class:`NodeProfiler`), read into
plain :class:`NodeRecord` rows that :mod:`app.bench.profile` ranks, groups and compares with the
whole model's median; and of the accuracy budget's rounds (:func:`app.accuracy.budget.node_costs`).

- ONNX Runtime: ``SessionOptions.enable_profiling``; its JSON (``cat == "Node"``, ``*_kernel_time``:
  ``args.op_name``, ``args.provider``, ``args.input_type_shape``) split into runs by the ``model_run``
  events around them.
- OpenVINO: ``PERF_COUNT`` and ``request.get_profiling_info()`` after each run (``exec_type`` such as
  ``brgconv_avx512_I8`` names the kernel and the precision it ran in).
- ExecuTorch: the event tracer (ETDump) read by ``executorch.devtools.Inspector``: every XNNPACK kernel
  inside the delegate and every portable operator; where a runtime has no per-operator events, the
  delegate calls, else the whole ``forward`` (said in the notes).
- TensorRT: an ``IProfiler`` on the execution context (GPU machines only).

Each profiler runs the artifact through the runner the benchmark uses (:mod:`app.runtimes`), with
that runtime's profiling switched on; ``run(prepared, keep=False)`` is a warm-up call whose times
are dropped.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.errors import first_line
from app.runtimes.base import Runner, RunnerUnavailable
from app.runtimes.executorch import ExecuTorchRunner, quiet_stderr
from app.runtimes.onnxrt import OnnxRuntimeRunner, short_provider
from app.runtimes.openvino import OpenVINORunner
from app.runtimes import tensorrt as trt_runtime

# ONNX Runtime kernels that compute in int8 whatever their inputs say (QDQ pairs fused into them)
ORT_INT8_OPS = {"QGemm", "ConvInteger", "MatMulInteger", "MatMulIntegerToFloat", "DynamicQuantizeMatMul",
                "QAttention", "QEmbedLayerNormalization", "DynamicQuantizeLSTM", "QOrderedMatMul", "NhwcQLinearConv"}
# nodes a runtime inserts to change a tensor's layout or device, not part of the model's computation
ORT_LAYOUT_OPS = {"ReorderInput", "ReorderOutput", "MemcpyToHost", "MemcpyFromHost", "Transpose"}
OV_LAYOUT_OPS = {"Reorder"}
XNNPACK_LAYOUT_OPS = {"Transpose", "Copy"}
# the operators an int8 artifact is expected to run in int8: one that ran in float "fell back"
HEAVY_OPS = {"Conv", "FusedConv", "MatMul", "FusedMatMul", "Gemm", "FusedGemm", "Convolution", "GroupConvolution",
             "FullyConnected", "Deconvolution", "ConvolutionBackpropData"}
DTYPE_PRECISION = {"float": "fp32", "float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "uint8": "int8",
                   "int8": "int8", "double": "fp64", "int32": "int32", "int64": "int64", "bool": "bool"}


@dataclass
class NodeRecord:
    """One node as its runtime's profiler saw it: ``samples`` are its milliseconds in each kept run."""

    name: str
    op_type: str
    provider: str
    precision: str
    samples: list[float]
    graph_node: str = ""       # the node of the artifact's graph it came from ("" where the runtime added it)
    layout: bool = False       # a layout or device conversion the runtime inserted
    fell_back: bool = False    # a convolution/matmul of an int8 artifact that ran in float
    note: str = ""


class NodeProfiler:
    """A runner with its runtime's profiler on: ``load``, ``prepare``, ``run`` (warm-up or kept),
    ``records`` (after the last run), ``close``."""

    runtime = ""
    granularity = "node"   # node | delegate | program: what one record stands for

    def __init__(self, runner: Runner):
        self.runner = runner
        self.notes: list[str] = []

    @property
    def provider(self) -> str:
        return self.runner.provider

    def load(self) -> None:
        self.runner.load()

    def prepare(self, feeds):
        return self.runner.prepare(feeds)

    def run(self, prepared, keep: bool) -> None:
        raise NotImplementedError

    def records(self) -> list[NodeRecord]:
        raise NotImplementedError

    def close(self) -> None:
        self.runner.close()


def _fell_back(artifact_precision: str, op_type: str, precision: str) -> bool:
    return artifact_precision == "int8" and op_type in HEAVY_OPS and precision in ("fp32", "fp16", "bf16")


# ---------------------------------------------------------------------------- ONNX Runtime
class OnnxRuntimeProfiler(NodeProfiler):
    """ONNX Runtime's own profiler; its JSON is written into ``work`` (a private folder) and read once."""

    runtime = "onnxruntime"

    def __init__(self, path: Path, work: Path, *, provider: str, threads: int | None, precision: str):
        super().__init__(OnnxRuntimeRunner(path, path.name, provider=provider, threads=threads, precision=precision,
                                           profile_prefix=str(work / "onnxruntime-profile")))
        self.path = Path(path)
        self.calls = 0
        self.kept: set[int] = set()

    def run(self, prepared, keep: bool) -> None:
        self.runner.call(prepared)
        if keep:
            self.kept.add(self.calls)
        self.calls += 1

    def records(self) -> list[NodeRecord]:
        written = Path(self.runner.session.end_profiling())
        try:
            events = json.loads(written.read_text(encoding="utf-8"))
        finally:
            written.unlink(missing_ok=True)
        records = parse_ort_profile(events, self.kept, graph_names(self.path), self.runner.precision)
        asked = self.runner.provider
        moved = sorted({r.name for r in records if r.provider and r.provider != short_provider(asked)})
        if moved:
            self.notes.append(f"{len(moved)} node(s) ran on another provider than {short_provider(asked)} "
                              f"(fallback): {', '.join(moved[:8])}{' …' if len(moved) > 8 else ''}")
        return records


def graph_names(path: Path) -> tuple[set[str], dict[str, str]]:
    """The node names of an ONNX graph, and the node that produces each tensor (for the names ONNX
    Runtime gives the nodes its optimiser rewrote)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return {n.name for n in graph.node}, {o: n.name for n in graph.node for o in n.output}


def graph_node_of(name: str, graph: tuple[set[str], dict[str, str]]) -> str:
    """The graph node a profiled node stands for: ``/conv/Conv_token_3`` → ``/conv/Conv``;
    ``/relu/Relu_output_0_nchwc`` (a fused node named after its output) → the node that makes that
    output; "" for a node the runtime inserted (``ReorderOutput``, ``Transpose_token_2``)."""
    names, producers = graph
    base = re.sub(r"(_token_\d+)+$", "", name)
    for candidate in (base, base.removesuffix("_nchwc")):
        if candidate in names:
            return candidate
        if candidate in producers:
            return producers[candidate]
    return ""


def _ort_precision(op: str, args: dict) -> str:
    if op in ORT_INT8_OPS or op.startswith("QLinear"):
        return "int8"
    types = args.get("input_type_shape") or []
    first = next(iter(types[0]), "") if types and isinstance(types[0], dict) else ""
    return DTYPE_PRECISION.get(first, first)


def parse_ort_profile(events: list, kept: set[int], graph: tuple[set[str], dict[str, str]],
                      artifact_precision: str) -> list[NodeRecord]:
    """Per node, its kernel time in each kept run (``kept``: run indices, 0 the first ``session.run``)."""
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events
                  if e.get("cat") == "Session" and e.get("name") == "model_run")
    starts = [s for s, _ in runs]
    order = [i for i in range(len(runs)) if i in kept]
    per_run: dict[int, dict[str, float]] = {i: {} for i in order}
    facts: dict[str, NodeRecord] = {}
    for e in events:
        if e.get("cat") != "Node" or not str(e.get("name", "")).endswith("_kernel_time"):
            continue
        run = bisect_right(starts, e["ts"]) - 1
        if run not in per_run or e["ts"] > runs[run][1]:
            continue
        name = e["name"].removesuffix("_kernel_time")
        per_run[run][name] = per_run[run].get(name, 0.0) + e["dur"] / 1000.0  # µs → ms
        if name not in facts:
            args = e.get("args") or {}
            op = str(args.get("op_name", ""))
            precision = _ort_precision(op, args)
            node = graph_node_of(name, graph)
            facts[name] = NodeRecord(name, op, short_provider(str(args.get("provider", ""))), precision, [],
                                     graph_node=node, layout=op in ORT_LAYOUT_OPS and not (op == "Transpose" and node),
                                     fell_back=_fell_back(artifact_precision, op, precision))
    for name, record in facts.items():
        record.samples = [per_run[i].get(name, 0.0) for i in order]
    return list(facts.values())


# ---------------------------------------------------------------------------- OpenVINO
def ov_precision(exec_type: str) -> str:
    """``brgconv_avx512_I8`` → int8, ``jit_avx512_FP32`` → fp32, ``undef`` → ""."""
    tail = exec_type.rsplit("_", 1)[-1].lower()
    return {"i8": "int8", "u8": "int8", "f32": "fp32", "fp32": "fp32", "bf16": "bf16", "f16": "fp16",
            "fp16": "fp16", "i32": "int32"}.get(tail, "")


class OpenVINOProfiler(NodeProfiler):
    """OpenVINO's per-layer counters (``PERF_COUNT``), read after each kept run."""

    runtime = "openvino"

    def __init__(self, path: Path, *, threads: int | None, precision: str):
        super().__init__(OpenVINORunner(path, path.name, threads=threads, precision=precision, perf_count=True))
        self.runs: list[dict[str, float]] = []
        self.facts: dict[str, tuple[str, str]] = {}

    def run(self, prepared, keep: bool) -> None:
        self.runner.call(prepared)
        if not keep:
            return
        times: dict[str, float] = {}
        for info in self.runner.request.get_profiling_info():
            if info.status.name != "EXECUTED":
                continue
            times[info.node_name] = times.get(info.node_name, 0.0) + info.real_time.total_seconds() * 1000.0
            self.facts.setdefault(info.node_name, (info.node_type, info.exec_type))
        self.runs.append(times)

    def records(self) -> list[NodeRecord]:
        out = []
        for name, (node_type, exec_type) in self.facts.items():
            precision = ov_precision(exec_type)
            fell = _fell_back(self.runner.precision, node_type, precision)
            out.append(NodeRecord(name, node_type, exec_type, precision, [r.get(name, 0.0) for r in self.runs],
                                  graph_node=name, layout=node_type in OV_LAYOUT_OPS, fell_back=fell,
                                  note=f"ran in {precision.upper()} ({exec_type})" if fell else ""))
        return out


# ---------------------------------------------------------------------------- ExecuTorch
_WRAPPERS = {"DELEGATE_CALL", "OPERATOR_CALL", "Method::execute"}


def xnnpack_precision(name: str) -> str:
    """``Convolution (NHWC, QS8) IGEMM #1`` → int8; ``(NC, F32)`` → fp32; ``(ND, X32)`` (data movement) → ""."""
    inside = re.search(r"\(([^)]*)\)", name)
    tokens = [t.strip() for t in inside.group(1).split(",")] if inside else []
    if any(t.startswith(("QS8", "QU8", "QD8", "QC8", "QC4", "QP8")) for t in tokens):
        return "int8"
    if "F16" in tokens:
        return "fp16"
    return "fp32" if "F32" in tokens else ""


class ExecuTorchProfiler(NodeProfiler):
    """ExecuTorch's event tracer: an ETDump written into ``work`` and read by ExecuTorch's Inspector."""

    runtime = "executorch"

    def __init__(self, path: Path, work: Path, *, threads: int | None, precision: str):
        super().__init__(ExecuTorchRunner(path, path.name, threads=threads, precision=precision, etdump=True))
        self.work = work
        self.calls = 0
        self.kept: list[int] = []

    def run(self, prepared, keep: bool) -> None:
        self.runner.call(prepared)
        if keep:
            self.kept.append(self.calls)
        self.calls += 1

    def records(self) -> list[NodeRecord]:
        dump = self.work / "program.etdp"
        try:
            self.runner._program.write_etdump_result_to_file(str(dump), str(self.work / "debug.bin"))
            with quiet_stderr():
                from executorch.devtools import Inspector

                events = [e for block in Inspector(etdump_path=str(dump)).event_blocks if block.name == "Execute"
                          for e in block.events]
        except Exception as e:  # noqa: BLE001 - a runtime built without the event tracer
            raise RunnerUnavailable(f"this ExecuTorch runtime wrote no event trace ({first_line(e)})") from None
        finally:
            dump.unlink(missing_ok=True)
        return self._from_events(events)

    def _from_events(self, events: list) -> list[NodeRecord]:
        leaves = [e for e in events if e.name not in _WRAPPERS]
        if not leaves:  # no per-operator events: the delegate calls, else the whole method
            leaves = [e for e in events if e.name in ("DELEGATE_CALL", "OPERATOR_CALL")]
            self.granularity = "delegate" if leaves else "program"
            leaves = leaves or [e for e in events if e.name == "Method::execute"]
            self.notes.append(f"this ExecuTorch runtime records no per-operator events: times are per "
                              f"{'delegate call' if self.granularity == 'delegate' else 'forward call'}")
        out = []
        for e in leaves:
            raw = list(e.perf_data.raw) if e.perf_data is not None else []
            samples = [float(raw[i]) for i in self.kept if i < len(raw)]
            if e.is_delegated_op:
                op, provider, precision = e.name.split(" (")[0].split(" #")[0], "XNNPACK", xnnpack_precision(e.name)
            else:
                op, provider, precision = "aten." + e.name.removeprefix("native_call_").removesuffix(".out"), "portable", ""
            out.append(NodeRecord(e.name, op, provider, precision, samples,
                                  layout=e.is_delegated_op and op in XNNPACK_LAYOUT_OPS,
                                  fell_back=_fell_back(self.runner.precision, op, precision)))
        return out


# ---------------------------------------------------------------------------- TensorRT
class TensorRTProfiler(NodeProfiler):
    """TensorRT's ``IProfiler`` on the engine's execution context: per layer, per run (GPU machines)."""

    runtime = "tensorrt"

    def __init__(self, path: Path, *, precision: str):
        ok, why = trt_runtime.available()
        if not ok:
            raise RunnerUnavailable(why)
        super().__init__(trt_runtime.TensorRTRunner(path, path.name, precision=precision))
        self.runs: list[dict[str, float]] = []
        self._profiler: Any = None

    def load(self) -> None:
        import tensorrt as trt

        super().load()

        class _Layers(trt.IProfiler):
            def __init__(self):
                trt.IProfiler.__init__(self)
                self.current: dict[str, float] | None = None

            def report_layer_time(self, layer_name, ms):
                if self.current is not None:
                    self.current[layer_name] = self.current.get(layer_name, 0.0) + float(ms)

        self._profiler = _Layers()
        self.runner.context.profiler = self._profiler

    def run(self, prepared, keep: bool) -> None:
        import torch

        self._profiler.current = {} if keep else None
        self.runner.call(prepared)
        torch.cuda.synchronize()
        if keep:
            self.runs.append(self._profiler.current)

    def records(self) -> list[NodeRecord]:
        names = list(dict.fromkeys(n for r in self.runs for n in r))
        return [NodeRecord(n, _trt_layer_type(n), "TensorRT", "", [r.get(n, 0.0) for r in self.runs],
                           graph_node=n) for n in names]


def _trt_layer_type(name: str) -> str:
    """TensorRT names fused layers after their parts (``/conv1/Conv + /relu/Relu``): the first part's operator."""
    first = name.split(" + ")[0]
    return first.rsplit("/", 1)[-1].split("_")[0] if "/" in first else first.split(" ")[0]

