"""``python main.py report``: one self-contained HTML file from a real run folder (real conversions, a
real benchmark). Its structure is checked with an HTML parser here and in a real browser engine in
tests/ui_web/test_report_page.py."""

from __future__ import annotations

import json
import shlex
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.runs import make_run


@pytest.fixture(scope="module")
def run(tmp_path_factory, model_files) -> dict:
    root = tmp_path_factory.mktemp("report")
    state = root / "cnn.pt"
    state.write_bytes(model_files["cnn_state"].read_bytes())
    return make_run(root, state)


class Page(HTMLParser):
    """The parts of the report the tests look at: tables' rows by class, svgs, links, texts by class."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.rows: dict[str, int] = {}
        self.texts: dict[str, list[str]] = {}
        self._table: list[str] = []
        self._open: list[tuple[str, str | None]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "table":
            self._table.append(a.get("class") or "")
        if tag == "tr" and self._table:
            self.rows[self._table[-1]] = self.rows.get(self._table[-1], 0) + 1
        if tag in ("div", "pre"):
            self._open.append((tag, a.get("class")))
            self.texts.setdefault(a.get("class") or "", []).append("")

    def handle_endtag(self, tag):
        if tag == "table" and self._table:
            self._table.pop()
        if tag in ("div", "pre") and self._open:
            self._open.pop()

    def handle_data(self, data):
        if self._open:
            self.texts[self._open[-1][1] or ""][-1] += data


def test_report_of_a_run_folder_has_every_artifact_chart_warning_and_command(cli, run, tmp_path):
    out = tmp_path / "report.html"
    r = cli("report", run["run"], "--out", out, "--json")
    assert r.code == 0, r.err
    written = json.loads(r.out)
    assert written["report"] == str(out) and sorted(written["artifacts"]) == sorted(p.name for p in run["artifacts"])
    assert written["benchmarks"] == [str(run["bench"])]
    page = Page(out.read_text(encoding="utf-8"))
    # header row + one per artifact; the benchmark table: header + one per runner × batch size (3 runners,
    # and OpenVINO's rows of the ONNX files where it is installed)
    bench = json.loads(run["bench"].read_text())
    assert page.rows["artifacts"] == 1 + 2
    assert page.rows["bench"] == 1 + len(bench["results"]) >= 1 + 3 * 2
    svgs = [a for tag, a in page.tags if tag == "svg"]
    figures = {a.get("id") for tag, a in page.tags if tag == "figure"}
    assert figures == {"chart-latency", "chart-batch", "chart-accuracy"} and len(svgs) == 3
    # self-contained: nothing to fetch, a policy that forbids fetching
    for tag, a in page.tags:
        for key in ("src", "href"):
            assert not a.get(key) or a[key].startswith("#"), (tag, a)
    assert any(tag == "meta" and "default-src 'none'" in a.get("content", "") for tag, a in page.tags)
    # every warning in full, not cut off
    warnings = [w for m in run["manifest_data"] for w in m["warnings"]]
    assert warnings and all(w in page.texts["warning"] for w in warnings)
    # the command that remakes each artifact parses as the same conversion
    from app.cli.parser import build_parser

    commands = page.texts["command"]
    assert len(commands) == 2
    for command, manifest in zip(commands, run["manifest_data"]):
        args = build_parser().parse_args(shlex.split(command)[2:])
        assert (args.command, args.target, args.precision) == ("convert", manifest["target"], manifest["precision"])
        assert Path(args.model) == Path(manifest["source"]["path"]) and args.arch == "tests.models:SmallCNN"
        assert args.input == ["x:1x3x32x32:float32"] and args.dynamic == ["x:0:batch"]
        assert args.out == run["run"].resolve()


def test_named_manifest_and_bench_files(cli, run, tmp_path):
    out = tmp_path / "one.html"
    r = cli("report", run["manifests"][0], run["bench"], "--out", out)
    assert r.code == 0, r.err
    assert "1 artifact(s), 1 benchmark result(s)" in r.out
    assert Page(out.read_text(encoding="utf-8")).rows["artifacts"] == 2


def test_text_from_the_files_is_escaped(cli, run, tmp_path):
    manifest = dict(run["manifest_data"][0], warnings=["<script>alert(1)</script>"])
    (tmp_path / "evil.manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "evil.html"
    assert cli("report", tmp_path / "evil.manifest.json", "--out", out).code == 0
    page = Page(out.read_text(encoding="utf-8"))
    assert not any(tag == "script" for tag, _ in page.tags)
    assert "<script>alert(1)</script>" in page.texts["warning"]


def test_a_manifest_from_another_version_still_gets_its_command(cli, run, tmp_path):
    from app.reports.html import reproduce_command

    manifest = dict(run["manifest_data"][0], target="coreml", precision="int4")  # a target this version lacks
    (tmp_path / "later.manifest.json").write_text(json.dumps(manifest))
    assert cli("report", tmp_path / "later.manifest.json", "--out", tmp_path / "later.html").code == 0
    assert reproduce_command(manifest).endswith("--to coreml --precision int4")
    old = dict(run["manifest_data"][0], options={"calibration": "imgs", "tokenizer": None, "exporter": "torchscript"})
    assert reproduce_command(old).endswith("--exporter torchscript --data imgs")  # the flat options of older manifests


@pytest.mark.parametrize("case, message", [
    ("empty", "no manifests (*.manifest.json) or benchmark results found"),
    ("missing", "no such file or folder"),
    ("not-ours", "neither a manifest"),
    ("broken", "not a readable JSON file"),
    ("suffix", "the report is one HTML file"),
    ("exists", "exists; pass --overwrite"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(cli, tmp_path, case, message):
    given = tmp_path / "in"
    given.mkdir()
    out = tmp_path / "report.html"
    if case == "missing":
        given = tmp_path / "nowhere"
    elif case == "not-ours":
        given = given / "other.json"
        given.write_text('{"hello": 1}')
    elif case == "broken":
        given = given / "x.manifest.json"
        given.write_text("{not json")
    elif case == "suffix":
        out = tmp_path / "report.pdf"
    elif case == "exists":
        out.write_text("keep me")
    r = cli("report", given, "--out", out, "--json")
    assert r.code == 2
    assert len(r.err.strip().splitlines()) == 1 and message in r.err and "Traceback" not in r.err
    failure = json.loads(r.out)
    assert (failure["status"], failure["stage"], failure["exit_code"]) == ("failed", "report", 2)
    assert failure["message"] in r.err
    assert (out.read_text() == "keep me") if case == "exists" else not out.exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_pareto_front_keeps_only_undominated_points():
    from app.reports.html import pareto_front

    points = [(10.0, 1.0), (5.0, 0.99), (6.0, 0.98), (2.0, 0.90), (3.0, 0.999)]
    assert pareto_front(points) == [3, 4, 0]


def test_dollar_signs_and_non_numbers_in_the_files_are_shown_not_crashed_on(cli, run, tmp_path):
    """Names are plain text in the charts (matplotlib read ``$\\foo{$`` as mathtext and raised); a number
    that is missing or is not one shows as '–'."""
    bench = json.loads(run["bench"].read_text())
    for r in bench["results"]:
        r["name"] = "$\\foo{" + r["name"] + "$"
    bench["results"][0].update(size_bytes="big", p99_ms="n/a", throughput=None, cosine=[1])
    bench["results"][1].update(p50_ms="fast", batch="two")  # in the table, left out of the charts
    (tmp_path / "bench.json").write_text(json.dumps(bench))
    manifest = run["manifest_data"][0]
    manifest = dict(manifest, artifact="cnn$x$.onnx", seconds="slow",
                    files=[dict(f, size_bytes="big") for f in manifest["files"]] + ["not a file entry"],
                    verification=dict(manifest["verification"], cosine="high", rel_l2=float("inf")))
    (tmp_path / "dollar.manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "report.html"
    r = cli("report", tmp_path / "dollar.manifest.json", tmp_path / "bench.json", "--out", out)
    assert r.code == 0, r.err
    text = out.read_text(encoding="utf-8")
    page = Page(text)
    assert page.rows["artifacts"] == 2 and page.rows["bench"] == 1 + len(bench["results"])
    assert {a.get("id") for tag, a in page.tags if tag == "figure"} >= {"chart-latency", "chart-accuracy"}
    assert "cnn$x$.onnx" in text and "$\\foo{" in text
    artifact_row = text[text.index('<table class="artifacts">'):].split("</tr>")[1]
    # MB, cosine, rel L2; and the three figures on data, which this run has none of
    assert artifact_row.count('<td class="num">–</td>') == 3 + 3
    assert "big" not in artifact_row and "high" not in artifact_row


def test_names_reach_matplotlib_as_plain_text():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cbook import is_math_text

    from app.bench.output import latency_figure

    names = ["$\\foo{$", "a$x$b", "$", "back\\$slash"]
    rows = [{"name": n, "batch": 1, "p50_ms": 1.0 + i, "p90_ms": 2.0 + i, "p99_ms": 3.0 + i} for i, n in enumerate(names)]
    fig = latency_figure({"results": rows}, title="$\\title$")
    FigureCanvasAgg(fig).draw()  # mathtext raised here
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert not any(is_math_text(t) for t in labels + [fig.axes[0].get_title()])
    assert [t.replace("\\$", "$") for t in labels] == names  # what matplotlib then draws: each name as it is


def test_a_sweep_with_dollar_names_and_broken_points_is_reported(cli, tmp_path):
    point = {"artifact": "a$x$.onnx", "name": "$\\foo{$", "runtime": "onnxruntime", "threads": 1, "batch": 1,
             "concurrency": 1, "calls": 9, "throughput": 100.0, "p50_ms": 1.0, "p99_ms": 2.0}
    sweep = {"kind": "sweep", "points": [point, dict(point, concurrency=2, throughput=150.0, p99_ms=3.0),
                                         dict(point, p99_ms="slow"), {"name": "no numbers"}, "not a point"],
             "proposals": [{"artifact": "a$x$.onnx", "name": "$\\foo{$", "knee": dict(point, threads="$\\t$")}]}
    (tmp_path / "sweep.json").write_text(json.dumps(sweep))
    out = tmp_path / "sweep.html"
    r = cli("report", tmp_path / "sweep.json", "--out", out)
    assert r.code == 0, r.err
    page = Page(out.read_text(encoding="utf-8"))
    assert page.rows["sweep"] == 1 + 4 and any(tag == "figure" and a.get("id") == "chart-sweep" for tag, a in page.tags)


def _cosine_axis(cosines: list[float]):
    """The accuracy chart of runners with these cosines, drawn: (tick labels of its y axis, its y label)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from app.reports.html import accuracy_chart, accuracy_figure

    rows = [{"name": f"r{i}", "batch": 1, "p50_ms": 1.0 + i, "cosine": c} for i, c in enumerate(cosines)]
    assert accuracy_chart(rows).startswith("<svg")
    fig = accuracy_figure(rows)
    FigureCanvasAgg(fig).draw()
    ax = fig.axes[0]
    return [t.get_text() for t in ax.get_yticklabels() if t.get_text()], ax.get_ylabel()


def test_accuracy_chart_says_all_cosines_are_one_instead_of_drawing_float_noise():
    """Cosines within float noise of 1 were labelled 0.99999999999997502, 1.0000000000000000."""
    labels, ylabel = _cosine_axis([0.99999999999997502, 1.0000000000000002, 0.9999999999999999, 0.9999995])
    assert labels == ["1"]
    assert "all equal to 1 within 1e-6" in ylabel


def test_accuracy_chart_labels_only_the_digits_the_cosines_tell_apart():
    labels, ylabel = _cosine_axis([0.99991000000000002, 0.99999999999997502, 0.99996000000000001])
    assert "within" not in ylabel and len(labels) >= 2
    decimals = {len(t.split(".")[1]) if "." in t else 0 for t in labels}
    assert len(decimals) == 1 and max(decimals) <= 6, labels     # ticks 0.00002 apart: 5 decimals, not 17
    assert len(set(labels)) == len(labels), labels               # and each tick tells itself apart
    assert all(abs(float(t) - 0.99995) < 1e-4 for t in labels), labels
    coarse, _ = _cosine_axis([0.91, 0.97, 0.995])
    assert all(len(t.split(".")[1]) <= 2 for t in coarse if "." in t), coarse


@pytest.mark.parametrize("kind, args", [
    ("cnn_state", ["--arch", "tests.models:SmallCNN", "--input", "x:1x3x32x32", "--to", "onnx"]),
    ("mlp_pickle", ["--allow-pickle", "--trust-global", "tests.models.MLP", "--input", "x:1x32", "--to", "onnx"]),
    ("cnn_torchscript", ["--input", "x:1x3x32x32", "--to", "onnx"]),
    ("cnn_onnx", ["--to", "onnx", "--precision", "fp16"]),
])
def test_make_it_again_makes_it_again(cli, workdir, tmp_path, kind, args):
    """The report's command, run as it is written (into a fresh --out), converts again: a pickled source's
    line carries --allow-pickle and each --trust-global the first conversion needed."""
    from main import main

    first = tmp_path / "first"
    r = cli("convert", workdir[kind], *args, "--out", first)
    assert r.code == 0, r.err
    assert cli("report", first, "--out", tmp_path / "report.html").code == 0
    [command] = Page((tmp_path / "report.html").read_text(encoding="utf-8")).texts["command"]
    argv = shlex.split(command)
    assert argv[:2] == ["python", "main.py"]
    if kind == "mlp_pickle":
        assert "--allow-pickle" in argv and argv[argv.index("--trust-global") + 1] == "tests.models.MLP"
    again = tmp_path / "again"
    argv = argv[2:]
    argv[argv.index("--out") + 1] = str(again)
    assert main(argv) == 0, command
    assert sorted(p.name for p in again.iterdir()) == sorted(p.name for p in first.iterdir())


def test_make_it_again_for_a_pickle_from_a_manifest_that_did_not_record_allow_pickle(run):
    from app.reports.html import reproduce_command

    manifest = run["manifest_data"][0]
    old = dict(manifest, source=dict(manifest["source"], format="pickle"),
               options={k: v for k, v in manifest["options"].items() if k not in ("allow_pickle", "run_code_from_file")}
               | {"trusted_globals": ["tests.models.MLP"]})
    argv = shlex.split(reproduce_command(old))
    assert "--allow-pickle" in argv and argv[argv.index("--trust-global") + 1] == "tests.models.MLP"
    assert "--unsafe-run-code-from-file" not in argv
    assert "--allow-pickle" not in shlex.split(reproduce_command(manifest))


def test_the_evaluation_says_on_how_many_samples_of_what_its_figures_stand(cli, run, tmp_path):
    """A manifest's evaluation on data (real figures from hand-made logits): the report says on how many
    samples of which data, the confident calls out of all with the margin, the KL and the drop's interval;
    figures that are not numbers show as '–'."""
    import numpy as np

    from app.accuracy.data import DataSet
    from app.accuracy.evaluation import compare_outputs

    reference = [[np.array([r], dtype=np.float32)] for r in ([4, 0], [0.05, 0], [0, 3], [2, 0])]
    artifact = [[np.array([r], dtype=np.float32)] for r in ([4, 0], [0, 0.05], [3, 0], [2, 0.1])]
    data = DataSet(Path("crops <b>"), "images", [{}] * 4, labels=[np.array([y]) for y in (0, 1, 1, 0)])
    e = compare_outputs(reference, artifact, data).to_json()
    manifests = []
    for name, evaluation in (("good", e), ("odd", dict(e, confident_agreement="high", kl_mean=[1]))):
        m = dict(run["manifest_data"][0], evaluation=evaluation)
        (tmp_path / f"{name}.manifest.json").write_text(json.dumps(m))
        manifests.append(tmp_path / f"{name}.manifest.json")
    out = tmp_path / "report.html"
    r = cli("report", *manifests, "--out", out)
    assert r.code == 0, r.err
    text = out.read_text(encoding="utf-8")
    assert "Evaluation on 4 samples of 4 samples (images) from crops &lt;b&gt;" in text and "crops <b>" not in text
    assert "<b>confident agreement 66.7%</b> on 3 of 4 samples" in text and "margin ≥ 0.1" in text
    assert "softmax KL divergence (source ‖ artifact) mean" in text and "95% interval" in text
    assert "<b>confident agreement –%</b> on 3 of 4 samples" in text      # not a number: shown as such
