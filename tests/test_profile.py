"""``profile``: per-node times from each runtime's own profiler (real ONNX Runtime and OpenVINO sessions on
small hand-written convolution graphs), their sum beside the whole model's median, the precision each
kernel ran in, and the command's output on every exit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.bench.harness import BenchConfig
from app.bench.profile import profile_artifact
from app.runtimes.profilers import NodeRecord, graph_node_of, ov_precision, parse_ort_profile, xnnpack_precision
from app.request import ModelSource

QUICK = BenchConfig(warmup=3, warmup_seconds=0.05, runs=20, min_seconds=0.2, threads=1)


def conv_stack(path: Path, channels: int = 32, size: int = 48) -> Path:
    """Three 3×3 convolutions with ReLUs, then a global average pool: enough work per node (about 0.1 ms
    each) that the profiler's microsecond ticks and its overhead stay small beside it."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, weights, x = [], [], "x"
    for i, cin in enumerate((3, channels, channels)):
        weights.append(numpy_helper.from_array((rng.standard_normal((channels, cin, 3, 3)) * 0.2).astype(np.float32), f"W{i}"))
        nodes += [helper.make_node("Conv", [x, f"W{i}"], [f"c{i}"], pads=[1, 1, 1, 1], name=f"conv{i}"),
                  helper.make_node("Relu", [f"c{i}"], [f"r{i}"], name=f"relu{i}")]
        x = f"r{i}"
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["y"], name="pool"))
    graph = helper.make_graph(nodes, "convs", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, size, size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, 1, 1])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


def qdq_int8(source: Path, dest: Path) -> Path:
    """ONNX Runtime's own static QDQ quantization of ``source`` (calibrated on a few random inputs)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(1)
            self.items = iter([{"x": rng.standard_normal((1, 3, 48, 48)).astype(np.float32)} for _ in range(4)])

        def get_next(self):
            return next(self.items, None)

    quantize_static(str(source), str(dest), Reader(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8)
    return dest


@pytest.fixture(scope="module")
def convs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("profile")
    fp32 = conv_stack(root / "convs.onnx")
    return {"fp32": fp32, "int8": qdq_int8(fp32, root / "convs.int8.onnx")}


def test_onnxruntime_profile_names_graph_nodes_and_sums_near_the_median(convs):
    import onnx

    profile = profile_artifact(ModelSource(path=convs["fp32"]), QUICK)
    graph = {n.name for n in onnx.load(str(convs["fp32"])).graph.node}
    assert profile.runtime == "onnxruntime" and profile.granularity == "node" and profile.precision == "fp32"
    computed = [n for n in profile.nodes if not n.layout]
    assert computed and all(n.graph_node in graph for n in computed), [(n.name, n.graph_node) for n in computed]
    assert {"conv0", "conv1", "conv2"} <= {n.graph_node for n in computed} | {n.name for n in computed} or \
        {"relu0", "relu1", "relu2"} <= {n.graph_node for n in computed}  # fused Conv+Relu named after either
    assert all(n.precision == "fp32" and n.provider == "CPU" for n in computed)
    assert [n.ms for n in profile.nodes] == sorted((n.ms for n in profile.nodes), reverse=True)
    assert sum(n.share for n in profile.nodes) == pytest.approx(1.0)
    assert sum(g.ms for g in profile.groups) == pytest.approx(profile.node_sum_ms)
    assert 0.5 <= profile.run_coverage <= 1.5, (profile.run_sum_ms, profile.median_ms)
    # per-node medians add up unless other work preempted different nodes in different runs, which is said
    assert 0.5 <= profile.coverage <= 1.5 or any("quieter machine" in n for n in profile.notes), profile.notes


def test_per_node_medians_of_a_busy_machine_are_said_not_to_add_up():
    from app.bench.profile import load_note, run_sum, summarise

    # two nodes, each preempted (×3) in a different run: each median is its quiet time, every run is slower
    records = [NodeRecord("a", "Conv", "CPU", "fp32", [1.0, 3.0, 1.0]),
               NodeRecord("b", "Conv", "CPU", "fp32", [1.0, 1.0, 3.0])]
    nodes, groups, total = summarise(records)
    assert total == 2.0 and run_sum(records) == 4.0 and groups[0].count == 2
    assert "quieter machine" in load_note(total, run_sum(records), 4.0)[0]
    assert load_note(2.0, 2.1, 2.1) == []


def test_quantized_convolutions_show_int8_kernels(convs):
    profile = profile_artifact(ModelSource(path=convs["int8"]), QUICK)
    convs_run = [n for n in profile.nodes if n.op_type == "QLinearConv"]
    assert profile.precision == "int8" and len(convs_run) == 3
    assert all(n.precision == "int8" and not n.fell_back for n in convs_run)
    assert not profile.fell_back


def test_openvino_profile_reports_the_kernel_and_its_precision(convs):
    fp32 = profile_artifact(ModelSource(path=convs["fp32"]), QUICK, runtime="openvino")
    int8 = profile_artifact(ModelSource(path=convs["int8"]), QUICK, runtime="openvino")
    for profile, precision in ((fp32, "fp32"), (int8, "int8")):
        conv = [n for n in profile.nodes if n.op_type == "Convolution"]
        assert profile.runtime == "openvino" and conv, [n.op_type for n in profile.nodes]
        assert all(n.precision == precision and n.provider for n in conv), [(n.name, n.provider) for n in conv]
        assert 0.3 <= profile.run_coverage <= 1.5, (profile.run_sum_ms, profile.median_ms)


def test_ort_profile_drops_warm_up_runs_and_splits_runs_by_model_run():
    def node(name, ts, dur, op="Conv", types=({"float": [1]},)):
        return {"cat": "Node", "name": f"{name}_kernel_time", "ts": ts, "dur": dur,
                "args": {"op_name": op, "provider": "CPUExecutionProvider", "input_type_shape": list(types)}}

    events = [node("c", 1, 900), {"cat": "Session", "name": "model_run", "ts": 0, "dur": 1000},       # warm-up
              node("c", 2001, 100), node("Transpose_token_2", 2200, 10, "Transpose"),
              {"cat": "Session", "name": "model_run", "ts": 2000, "dur": 300},
              node("c", 3001, 300), {"cat": "Session", "name": "model_run", "ts": 3000, "dur": 400}]
    records = {r.name: r for r in parse_ort_profile(events, {1, 2}, ({"c"}, {}), "int8")}
    assert records["c"].samples == [0.1, 0.3] and records["c"].fell_back  # an int8 artifact's Conv in float
    assert records["Transpose_token_2"].layout and records["Transpose_token_2"].samples == [0.01, 0.0]


def test_precision_and_node_names_from_each_runtime_s_words():
    assert [ov_precision(t) for t in ("brgconv_avx512_I8", "jit_avx512_FP32", "brgemm_avx512_amx_bf16", "undef")] \
        == ["int8", "fp32", "bf16", ""]
    assert [xnnpack_precision(n) for n in ("Convolution (NHWC, QS8) IGEMM #1", "Fully Connected (NC, QD8, F32, QC8W) #2",
                                           "Convolution (NHWC, F32) IGEMM #1", "Transpose (ND, X32) #1")] \
        == ["int8", "int8", "fp32", ""]
    graph = ({"/a/Conv", "/a/Relu"}, {"/a/Relu_output_0": "/a/Relu"})
    assert graph_node_of("/a/Conv_token_3", graph) == "/a/Conv"
    assert graph_node_of("/a/Relu_output_0_nchwc", graph) == "/a/Relu"
    assert graph_node_of("ReorderOutput_token_4", graph) == ""
    assert NodeRecord("n", "Conv", "CPU", "fp32", [1.0]).samples == [1.0]


def test_profile_json_is_one_object_with_nodes_and_coverage(cli, convs):
    r = cli("profile", convs["fp32"], "--runs", "10", "--threads", "1", "--min-seconds", "0.1", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert {"nodes", "groups", "node_sum_ms", "median_ms", "coverage", "run_sum_ms", "runtime", "precision",
            "notes"} <= set(data)
    assert {"name", "op_type", "ms", "precision", "provider", "share"} <= set(data["nodes"][0])
    table = cli("profile", convs["int8"], "--runs", "5", "--threads", "1", "--min-seconds", "0.05", "--top", "2")
    assert table.code == 0 and "QLinearConv" in table.out and "coverage" in table.out and "more node(s)" in table.out


def test_a_provider_this_onnx_runtime_lacks_is_one_line(cli, convs):
    r = cli("profile", convs["fp32"], "--provider", "NoSuch", "--json")
    data = json.loads(r.out)
    assert r.code == 2 and "NoSuchExecutionProvider is not in this ONNX Runtime build" in data["message"], data


@pytest.mark.parametrize("kind", ["not-a-model", "engine", "torch"])
def test_profile_refuses_what_it_cannot_profile_in_one_line(cli, tmp_path, kind):
    if kind == "torch":
        import torch

        path = tmp_path / "weights.pt"
        torch.save({"w": torch.zeros(2)}, path)
        expect = "profile needs an artifact"
    elif kind == "engine":
        from app.runtimes.tensorrt import available

        if available()[0]:
            pytest.skip("TensorRT is installed here: the engine would be read, not refused")
        path = tmp_path / "model.engine"
        path.write_bytes(b"\0" * 64)
        expect = "TensorRT is not installed"
    else:
        path = tmp_path / "notes.onnx"
        path.write_text("not a model")
        expect = "notes.onnx"
    r = cli("profile", path, "--json")
    data = json.loads(r.out)
    assert r.code == 2 and data["exit_code"] == 2 and expect in data["message"], data
    plain = cli("profile", path)
    assert plain.code == 2 and "Traceback" not in plain.err and expect in plain.err


def test_time_joins_error_on_the_graph_node_and_the_report_carries_the_profile(convs, tmp_path):
    from app.accuracy.diagnose import NodeError, added_by_node
    from app.bench.profile import ms_by_node, profile_job
    from app.reports.html import profile_for_report, write_report

    data = profile_job((ModelSource(path=convs["int8"]), QUICK, None))     # what the window's job returns
    times = ms_by_node(data)
    timed = [n for n in data["nodes"] if n["graph_node"]]
    assert times and set(times) == {n["graph_node"] for n in timed}
    assert sum(times.values()) == pytest.approx(sum(n["ms"] for n in timed))
    slowest = timed[0]["graph_node"]
    ranking = [NodeError("ref_conv", "Conv", "t", 0.2, 0.0123, graph_node=slowest),
               NodeError("ref_clip", "Clip", "u", 0.2, 0.001, graph_node=slowest),   # folded into the same node
               {"node": "only_in_reference", "op_type": "Relu", "output": "v", "error": 0.1, "added": 0.5}]
    errors = added_by_node(ranking)
    assert errors[slowest] == pytest.approx(0.0133) and errors["only_in_reference"] == 0.5
    out = tmp_path / "report.html"
    write_report([], out, benches=[profile_for_report(data, {"ranking": ranking})])
    html = out.read_text()
    section = html[html.index('<section id="profile">'):]
    assert "convs.int8.onnx" in section and "coverage" in section and "QLinearConv" in section
    assert "error it adds" in section and "1.33 %" in section      # the error beside the slowest node's time
    assert f"{data['median_ms']:.3f}" in section
    plain = tmp_path / "plain.html"                                   # not diagnosed: no error column
    write_report([], plain, benches=[profile_for_report(data)])
    assert "error it adds" not in plain.read_text() and "QLinearConv" in plain.read_text()
    saved = tmp_path / "run" / "profile.json"                        # report RUN_DIR reads a saved profile --json
    saved.parent.mkdir()
    saved.write_text(json.dumps(data))
    from_file = tmp_path / "from-file.html"
    assert write_report([saved.parent], from_file)["status"] == "ok"
    assert '<section id="profile">' in from_file.read_text() and "convs.int8.onnx" in from_file.read_text()


def test_the_budget_loop_costs_each_node_of_an_int8_round_from_onnx_runtime_s_profiler(convs, tmp_path):
    import onnx

    from app.accuracy.budget import node_costs

    feeds = {"x": np.random.default_rng(0).standard_normal((1, 3, 48, 48)).astype(np.float32)}
    costs = node_costs(convs["int8"], feeds)
    graph = {n.name for n in onnx.load(str(convs["int8"])).graph.node}
    assert costs and set(costs) <= graph and all(ms >= 0 for ms in costs.values())
    assert sum(costs.values()) > 0
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not onnx")
    assert node_costs(broken, feeds) == {}       # no profile: the loop orders by error alone
