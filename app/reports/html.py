"""A result you can hand on: one self-contained HTML file from manifests and benchmark results.

``python main.py report RUN_DIR|MANIFEST|BENCH.json ... --out report.html`` and the window's
File ▸ Export report… both call :func:`write_report`. What goes in:

- **manifests** (``*.manifest.json``, written beside every artifact by ``convert``): the source
  model, each artifact's target, precision, files and hashes, verification (and evaluation, where the
  manifest has one), warnings in full, and the ``python main.py convert ...`` line that remakes it;
- **benchmark results** (what ``bench --json`` / ``optimize --json`` print, saved to a file): the
  machine, the rows, what was skipped, and the latency, batch and accuracy-vs-latency charts.

The file needs no network and no other file: styles are inline, charts are inline SVG drawn with
matplotlib's SVG canvas (no GUI toolkit), nothing is fetched. Every text from the inputs is escaped.
"""

from __future__ import annotations

import datetime as _dt
import html
import io
import json
import math
from pathlib import Path

from app.accuracy.verdict import ACCURACY_LOSS, CANCELLED, FAILED, PASSED, verdict_of_manifest
from app.artifacts.atomic_output import atomic_write_text
from app.artifacts.json_file import SideFileError, read_json_object
from app.artifacts.manifest import MANIFEST_SUFFIX, check_manifest, source_of_manifest
from app.bench.harness import machine_info
from app.bench.output import finish_axes, latency_figure, plain_text
from app.bench.saved import check_saved_result
from app.bench.stats import pareto_front as front
from app.bench.sweep import sweep_figure
from app.errors import BadInput, StudioError
from app.machine.hardware import detect_cpu
from app.reports.command_echo import convert_command, source_args
from app.request import ConversionRequest
from converters.base import get_converter, options_of

MAX_INPUT_BYTES = 50 * 2**20          # a manifest or a benchmark JSON larger than this is not ours
MAX_FILES = 500


# ---------------------------------------------------------------------------- reading the inputs
def _read_json(path: Path) -> dict:
    """A manifest or a saved benchmark result, read without blocking and bounded (a FIFO, a device, a
    huge or deeply nested file is refused in one line) and its structure checked."""
    try:
        data = read_json_object(path, "manifest or benchmark result", max_bytes=MAX_INPUT_BYTES)
    except SideFileError as e:
        raise BadInput(f"{e}; pass manifests (*.manifest.json) or what `bench --json` printed") from None
    kind = _kind(data)
    if kind == "manifest" or path.name.endswith(MANIFEST_SUFFIX):
        check_manifest(data, path)
    elif kind not in (None, "profile"):   # a profile is read field by field, each one checked where shown
        check_saved_result(data, path)
    return data


def _kind(data: dict) -> str | None:
    if "artifact" in data and "target" in data and "source" in data:
        return "manifest"
    if isinstance(data.get("nodes"), list) and "node_sum_ms" in data and "median_ms" in data:
        return "profile"   # what `profile --json` printed (the window's profiles come in memory)
    if data.get("kind") == "sweep" and isinstance(data.get("points"), list):
        return "sweep"
    if isinstance(data.get("results"), list) and "machine" in data:
        return "bench"
    return None


def collect(paths: list[Path], *, allow_empty: bool = False) -> tuple[list[dict], list[dict]]:
    """Manifests and benchmark results (sweeps among them) found in ``paths`` (folders are searched
    recursively).

    Returns
    -------
    (manifests, benches)
        Each dict gains ``_file``, the path it was read from. Raises :class:`BadInput` when a path is
        missing, a named file is neither, or nothing at all was found (unless ``allow_empty``).
    """
    manifests: list[dict] = []
    benches: list[dict] = []
    seen: set[Path] = set()
    for given in paths:
        path = Path(given).expanduser()
        if not path.exists():
            raise BadInput(f"{given}: no such file or folder")
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.json") if p.is_file() and not p.name.startswith("."))
            if len(found) > MAX_FILES:
                raise BadInput(f"{given}: {len(found)} JSON files; a report takes at most {MAX_FILES} — "
                               "pass the run folder, not a whole drive")
            named = False
        else:
            found, named = [path], True
        for file in found:
            real = file.resolve()
            if real in seen:
                continue
            seen.add(real)
            data = _read_json(file) if named or file.name.endswith(MANIFEST_SUFFIX) else _try_json(file)
            kind = _kind(data) if data is not None else None
            if kind is None:
                if named:
                    raise BadInput(f"{given}: neither a manifest (*.manifest.json, written by convert) nor a "
                                   "benchmark result (save what `bench --json` prints)")
                continue
            data["_file"] = str(file)
            (manifests if kind == "manifest" else benches).append(data)  # a sweep reports with the benchmarks
    if not manifests and not benches and not allow_empty:
        raise BadInput(f"{', '.join(str(p) for p in paths)}: no manifests (*.manifest.json) or benchmark "
                       "results found; convert writes a manifest beside each artifact, and "
                       "`bench ... --json > RUN_DIR/bench.json` saves a benchmark")
    return manifests, benches


def _try_json(file: Path) -> dict | None:
    try:
        return _read_json(file)
    except BadInput:
        return None


# ---------------------------------------------------------------------------- what the report says
def current_machine() -> dict:
    """This machine, for a report without benchmark results (the benchmark records its own)."""
    return machine_info(threads=0)


def reproduce_command(manifest: dict) -> str:
    """The ``python main.py convert ...`` line that makes this artifact again (from its manifest)."""
    opts = manifest.get("options") or {}
    target, precision = manifest.get("target", "?"), manifest.get("precision", "fp32")
    model, data = source_of_manifest(manifest, placeholder="MODEL")
    try:
        get_converter(target)
        options = {o.name: opts[o.name] for o in options_of(target) if not o.is_default(opts.get(o.name))}
        request = ConversionRequest(
            model, target, precision, options, data=data or None,
            out_dir=Path(manifest["_file"]).resolve().parent if manifest.get("_file") else None)
    except StudioError:  # a target or precision this version does not know: what the manifest says, as it says it
        import shlex

        return "python main.py " + shlex.join(["convert", *source_args(model), "--to", str(target), "--precision",
                                               str(precision)])
    return convert_command(request)


# ---------------------------------------------------------------------------- charts (inline SVG)
def _svg(fig) -> str:
    """``fig`` as an inline ``<svg>`` element (text as paths: no font files needed)."""
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    FigureCanvasSVG(fig)
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and DOCTYPE: inline SVG needs neither


def _unique_rows(benches: list[dict]) -> list[dict]:
    return [r for b in benches for r in b.get("results", [])]


def _chart_rows(rows: list) -> list[dict]:
    """The benchmark rows a chart can draw, cleaned: the name as text, the batch a whole number, p50 a
    number (p90 and p99 no less, p50 where missing), the other numbers a float or None; a row without a
    batch or a p50 is left out of the charts (the table shows it, its gaps as '–')."""
    clean = []
    for r in rows:
        if not isinstance(r, dict):
            continue
        batch, p50 = _number(r.get("batch")), _number(r.get("p50_ms"))
        if batch is None or p50 is None or batch < 1 or batch != int(batch):
            continue
        p90 = max(p50, _number(r.get("p90_ms")) or p50)
        p99 = max(p90, _number(r.get("p99_ms")) or p90)
        clean.append({"name": str(r.get("name", "?")), "batch": int(batch), "p50_ms": p50, "p90_ms": p90,
                      "p99_ms": p99, "baseline": bool(r.get("baseline")),
                      **{k: _number(r.get(k)) for k in ("throughput", "speedup_vs_baseline", "cosine")}})
    return clean


def latency_chart(rows: list[dict]) -> str | None:
    if not rows:
        return None

    return _svg(latency_figure({"results": rows}))


def batch_chart(rows: list[dict]) -> str | None:
    """Throughput against batch size, one line per runner; None unless some runner has two sizes."""
    by_name: dict[str, list[dict]] = {}
    for r in rows:
        if r["throughput"] is not None:
            by_name.setdefault(r["name"], []).append(r)
    if not any(len({int(r["batch"]) for r in rs}) > 1 for rs in by_name.values()):
        return None
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 3.6), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    for name, rs in by_name.items():
        rs = sorted(rs, key=lambda r: int(r["batch"]))
        ax.plot([int(r["batch"]) for r in rs], [r["throughput"] for r in rs], marker="o", label=plain_text(name))
    batches = sorted({int(r["batch"]) for rs in by_name.values() for r in rs})
    ax.set_xscale("log", base=2)
    ax.set_xticks(batches)
    ax.set_xticklabels([str(b) for b in batches])
    finish_axes(fig, ax, "batch size", "items / s", "throughput by batch size")
    return _svg(fig)


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the (latency, accuracy) points on the Pareto front, in order of latency."""
    return front(range(len(points)), cost=lambda i: points[i][0], gain=lambda i: points[i][1])


COSINE_FLAT = 1e-6  # every cosine within this of 1: the chart says so instead of drawing float noise


def accuracy_chart(rows: list[dict]) -> str | None:
    """Cosine to the source against p50 latency at the smallest batch, the Pareto front drawn."""
    fig = accuracy_figure(rows)
    return None if fig is None else _svg(fig)


def accuracy_figure(rows: list[dict]):
    """The chart of :func:`accuracy_chart` as a matplotlib ``Figure`` with no canvas (None: nothing to draw).

    The cosine axis is labelled only to the digits its ticks' spacing can tell (``0.99995``, not
    ``0.99999999999997502``); where every cosine is within :data:`COSINE_FLAT` of 1 the points are drawn
    on one line at 1 and the axis says "all equal to 1 within 1e-6" (their differences are float noise)."""
    if not rows:
        return None
    batch = min(int(r["batch"]) for r in rows)
    shown = [r for r in rows if int(r["batch"]) == batch and r.get("cosine") is not None]
    if len(shown) < 2:
        return None
    from matplotlib.figure import Figure

    points = [(float(r["p50_ms"]), float(r["cosine"])) for r in shown]
    flat = all(abs(y - 1.0) <= COSINE_FLAT for _, y in points)
    drawn = [(x, 1.0) for x, _ in points] if flat else points
    fig = Figure(figsize=(7.5, 3.8), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    for (x, y), r in zip(drawn, shown):
        ax.scatter([x], [y], s=36)
        ax.annotate(plain_text(r["name"]), (x, y), xytext=(4, 4), textcoords="offset points", fontsize=7)
    front = pareto_front(drawn)  # all within float noise of 1: the fastest alone is on the front
    ax.plot([drawn[i][0] for i in front], [drawn[i][1] for i in front], linestyle="--", color="black",
            linewidth=1, label="Pareto front")
    ylabel = "cosine to the source"
    if flat:
        ax.set_ylim(0.5, 1.5)
        ax.set_yticks([1.0])
        ax.set_yticklabels(["1"])
        ylabel += "\n(all equal to 1 within 1e-6)"
    else:
        ax.yaxis.set_major_formatter(_SpacingFormatter())
    finish_axes(fig, ax, f"p50 latency at batch {batch} (ms)", ylabel, "accuracy vs latency")
    return fig


def _spacing_decimals(locs) -> int:
    """The decimals that tell ticks at ``locs`` apart: those of their spacing (0.00005 -> 5), at most 12."""
    steps = [abs(b - a) for a, b in zip(locs, locs[1:]) if b != a]
    if not steps:
        return 6
    return max(0, min(12, math.ceil(-math.log10(min(steps)) - 1e-9)))


def _SpacingFormatter():
    """A tick formatter that writes each label to :func:`_spacing_decimals` of the ticks shown, no offset."""
    from matplotlib.ticker import Formatter

    class SpacingFormatter(Formatter):
        decimals = 6

        def set_locs(self, locs):
            super().set_locs(locs)
            self.decimals = _spacing_decimals(list(locs))

        def __call__(self, x, pos=None):
            text = f"{x:.{self.decimals}f}"
            return "0" if text.strip("-0.") == "" else text

    return SpacingFormatter()


# ---------------------------------------------------------------------------- HTML
STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f2f2f2}td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#116611;font-weight:600}.loss{color:#8a5a00;font-weight:600}.failed{color:#aa1111;font-weight:600}.muted{color:#666}
code,pre{font-family:ui-monospace,'DejaVu Sans Mono',monospace;font-size:.85em}pre{background:#f6f6f6;padding:.6em;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
.warning{background:#fff6e0;border-left:3px solid #e0a000;padding:.3em .6em;margin:.2em 0}
figure{margin:1em 0}figure svg{max-width:100%;height:auto}
@media print{body{margin:0;max-width:none}details{display:block}}
"""


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _number(value) -> float | None:
    """A number read from a file, or None where it is missing or is not one (text, a list, NaN...)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _num(value, fmt: str) -> str:
    """``value`` formatted as a number; '–' where it is missing or not a number (files are not trusted)."""
    number = _number(value)
    return "–" if number is None else format(number, fmt)


def _mb(size_bytes) -> float | None:
    number = _number(size_bytes)
    return None if number is None else number / 1e6


def _table(head: list[str] | None, rows: list[list[str]], *, cls: str = "", numeric: set[int] = frozenset()) -> str:
    """An HTML table of already-escaped cells; ``head`` None: a key/value table (first column as headers)."""
    out = [f'<table class="{cls}">']
    if head:
        out.append("<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr></thead>")
    out.append("<tbody>")
    if head is None:
        rows = [[f"<th>{row[0]}</th>", *row[1:]] for row in rows]
    for row in rows:
        out.append("<tr>" + "".join(c if c.startswith("<th>") else f'<td class="num">{c}</td>' if i in numeric
                                    else f"<td>{c}</td>" for i, c in enumerate(row)) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _machine_section(benches: list[dict]) -> str:
    m = dict(benches[0].get("machine") or {}) if benches else current_machine()
    where = "the machine the benchmark ran on" if benches else "the machine this report was written on"

    features = detect_cpu().features()
    rows = [["CPU", _e(m.get("cpu"))], ["architecture", _e(m.get("arch"))],
            ["cores", f"{_e(m.get('physical_cores'))} physical, {_e(m.get('logical_cores'))} logical"],
            ["threads used", _e(m.get("threads") or "–")], ["memory", f"{_e(m.get('memory_gb', '–'))} GB"],
            ["GPU", _e(m.get("gpu") or "none")], ["OS", _e(m.get("os"))], ["Python", _e(m.get("python"))],
            ["instruction sets (this machine)", _e(", ".join(features) or "none of AVX2/AVX-512/VNNI/BF16/AMX")]]
    for key in ("torch", "onnxruntime", "openvino"):
        if m.get(key):
            rows.append([key, _e(m[key])])
    if m.get("onnxruntime_providers"):
        rows.append(["ONNX Runtime providers", _e(", ".join(m["onnxruntime_providers"]))])
    return (f'<section id="machine"><h2>Machine</h2><p class="muted">{_e(where)}</p>'
            + _table(None, rows, cls="machine") + "</section>")


def _source_section(manifests: list[dict]) -> str:
    sources: dict[str, dict] = {}
    for m in manifests:
        src = m.get("source") or {}
        sources.setdefault(src.get("sha256") or src.get("path") or "?", {**src, "inputs": m.get("inputs"),
                                                                        "outputs": m.get("outputs")})
    if not sources:
        return ""
    parts = ['<section id="source"><h2>Source model</h2>']
    for src in sources.values():
        specs = [[_e(kind), _e(s.get("name")), _e(s.get("dtype")), _e("×".join(str(d) for d in s.get("shape", [])))]
                 for kind, group in (("input", src.get("inputs") or []), ("output", src.get("outputs") or []))
                 for s in group]
        parts.append(f'<p><code>{_e(src.get("path"))}</code> — format {_e(src.get("format"))}, '
                     f'SHA-256 <code>{_e(src.get("sha256"))}</code></p>')
        parts.append(_table(["", "name", "dtype", "shape"], specs, cls="specs"))
    parts.append("</section>")
    return "".join(parts)


def _files(manifest: dict) -> list[dict]:
    files = manifest.get("files")
    return [f for f in files if isinstance(f, dict)] if isinstance(files, list) else []


def _size(manifest: dict) -> float | None:
    """Bytes of the artifact's files; None where a size is missing or not a number."""
    sizes = [_number(f.get("size_bytes")) for f in _files(manifest)]
    return None if not sizes or None in sizes else sum(sizes)


def _artifact_section(manifests: list[dict]) -> str:
    if not manifests:
        return ""
    rows, details = [], []
    for i, m in enumerate(manifests):
        v = m.get("verification") if isinstance(m.get("verification"), dict) else {}
        e = m.get("evaluation") if isinstance(m.get("evaluation"), dict) else {}
        verdict = verdict_of_manifest(m)
        verdict_cell = f'<span class="{_VERDICT_CLASS[verdict.kind]}" title="{_e(verdict.reason)}">{_e(verdict.label)}</span>'
        rows.append([f'<a href="#artifact-{i}">{_e(m.get("artifact"))}</a>', _e(m.get("target")),
                     _e(m.get("precision")), verdict_cell, _num(_mb(_size(m)), ".2f"),
                     _num(e.get("cosine_mean"), ".5f"), _pct_cell(e.get("top1_agreement")),
                     _pct_cell(e.get("confident_agreement")),
                     _num(v.get("cosine"), ".6f"), _num(v.get("rel_l2"), ".2e"),
                     _num(v.get("max_abs_err"), ".2e"), str(len(m.get("warnings") or []))])
        block = [f'<article class="artifact" id="artifact-{i}"><h3>{_e(m.get("artifact"))}</h3>']
        block.append(f'<p class="verdict">Verdict: {verdict_cell} — {_e(verdict.reason)}</p>')
        block.append(f'<p class="muted">manifest <code>{_e(m.get("_file"))}</code>; converted in '
                     f'{_num(m.get("seconds"), ".1f")} s</p>')
        block.append("<p>Make it again:</p>" f'<pre class="command">{_e(reproduce_command(m))}</pre>')
        if v:
            block.append(f'<p>Verification on random inputs ({_e("; ".join(v.get("checks") or []))}): cosine '
                         f'{_num(v.get("cosine"), ".6f")}, rel L2 {_num(v.get("rel_l2"), ".2e")}, max |Δ| '
                         f'{_num(v.get("max_abs_err"), ".2e")}, top-1 agreement {_num(v.get("top1_agreement"), ".3f")}'
                         + (f' — <span class="failed">{_e(v.get("failure"))}</span>' if v.get("failure") else "")
                         + "</p>")
        delegation = m["recorded"].get("delegation") if isinstance(m.get("recorded"), dict) else None
        if isinstance(delegation, dict) and delegation.get("summary"):
            block.append(f'<p>Delegation: {_e(delegation["summary"])}</p>' + _table(
                ["operator", "runs in", "count"],
                [[_e(op), "XNNPACK", _e(n)] for op, n in (delegation.get("delegated") or {}).items()]
                + [[_e(op), '<span class="failed">portable kernels</span>', _e(n)]
                   for op, n in (delegation.get("portable") or {}).items()], numeric={2}))
        evaluation = m.get("evaluation")
        if isinstance(evaluation, dict) and evaluation:
            block.append(_evaluation_text(evaluation) + _table(
                ["measure", "value"], [[_e(k), _e(val)] for k, val in evaluation.items() if not isinstance(val, (dict, list))]))
        block.append(_budget_block(m.get("accuracy_budget")))
        for w in m.get("warnings") or []:
            block.append(f'<div class="warning">{_e(w)}</div>')
        files = [[f'<code>{_e(f.get("name"))}</code>', _num(_mb(f.get("size_bytes")), ".3f"),
                  f'<code>{_e(f.get("sha256"))}</code>'] for f in _files(m)]
        block.append(_table(["file", "MB", "SHA-256"], files, cls="files", numeric={1}))
        shown = {k: v for k, v in m.items() if not k.startswith("_")}
        block.append(f"<details><summary>full manifest</summary><pre>{_e(json.dumps(shown, indent=2, default=str))}"
                     "</pre></details></article>")
        details.append("".join(block))
    head = ["artifact", "target", "precision", "verdict", "MB", "mean cosine on data", "top-1 agreement on data",
            "confident agreement on data", "cosine (random inputs)", "rel L2 (random inputs)",
            "max |Δ| (random inputs)", "warnings"]
    return ('<section id="artifacts"><h2>Artifacts</h2>'
            + _table(head, rows, cls="artifacts", numeric={4, 5, 6, 7, 8, 9, 10, 11})
            + "".join(details) + "</section>")


_VERDICT_CLASS = {PASSED: "ok", ACCURACY_LOSS: "loss", FAILED: "failed", CANCELLED: "failed"}


def _pct_cell(value) -> str:
    """A share read from a file as a percentage ('–' where missing or not a number)."""
    return _num(_pct(value), ".1f") + ("%" if _number(value) is not None else "")


def _evaluation_text(e: dict) -> str:
    """What the evaluation on data stands on, in words: how many samples of which data, and each figure
    with the samples it counts (confident agreement: the source's confident calls out of all)."""
    def kl(value) -> str:
        return "inf" if value in (float("inf"), "Infinity") else _num(value, ".3g")

    parts = [f"mean cosine {_num(e.get('cosine_mean'), '.5f')} (min {_num(e.get('cosine_min'), '.5f')})"]
    if e.get("top1_agreement") is not None:
        parts.append(f"top-1 agreement {_num(_pct(e.get('top1_agreement')), '.1f')}%")
    if e.get("confident_samples") is not None:
        margin = _num(e.get("confident_margin"), "g")
        if _number(e.get("confident_samples")):
            parts.append(f"<b>confident agreement {_num(_pct(e.get('confident_agreement')), '.1f')}%</b> on "
                         f"{_num(e.get('confident_samples'), '.0f')} of {_num(e.get('samples'), '.0f')} samples (those "
                         f"the source calls by a softmax margin ≥ {margin}: top-1 probability minus top-2)")
        else:
            parts.append(f"no confident call among the samples (softmax margin ≥ {margin}): confident agreement "
                         "cannot be measured")
    if e.get("kl_mean") is not None:
        parts.append(f"softmax KL divergence (source ‖ artifact) mean {kl(e.get('kl_mean'))}, max {kl(e.get('kl_max'))}")
    if e.get("artifact_top1") is not None:
        interval = (f", 95% interval {_num(_pct(e.get('top1_drop_low')), '.2f')} … "
                    f"{_num(_pct(e.get('top1_drop_high')), '.2f')}" if e.get("top1_drop_low") is not None else "")
        parts.append(f"top-1 accuracy {_num(_pct(e.get('source_top1')), '.1f')}% → "
                     f"{_num(_pct(e.get('artifact_top1')), '.1f')}% (drop {_num(_pct(e.get('top1_drop')), '.2f')} "
                     f"points{interval}, against the labels)")
    return (f"<p>Evaluation on {_num(e.get('samples'), '.0f')} samples of {_e(e.get('data'))}: "
            + "; ".join(parts) + ".</p>")


def _budget_block(b) -> str:
    """The accuracy budget's rounds: what each tried (quantizer setting or float nodes), its figures or the
    round whose model it repeats (or why it was not tried), its speed-up over the same runtime's fp32, the
    Pareto set and the floor, the kept one marked with why."""
    if not isinstance(b, dict) or not isinstance(b.get("rounds"), list):
        return ""
    from app.accuracy.budget import missed_parts, round_label

    floor = _number(b.get("speed_floor"))
    # the budget's parts the table has no column for otherwise: one column each, where some round has it
    extra = [(m, head) for m, head in (("confident-agreement", "confident agreement (%)"), ("kl", "KL (mean)"))
             if any(isinstance(r, dict) and _number(r.get(m)) is not None for r in b["rounds"])]
    rows = []
    for r in b["rounds"]:
        if not isinstance(r, dict):
            continue
        try:
            what = round_label(r)
        except (KeyError, TypeError):
            what = str(r.get("stage"))
        same = "identical_to" in r or "failed" in r or "skipped" in r
        speedup = _number(r.get("speedup"))
        speed = "" if same or speedup is None else _num(speedup, ".2f") + (
            " (slower than fp32)" if speedup < 1 else " (below the floor)" if floor and speedup < floor - 1e-12 else "")
        missed = missed_parts(r)    # a budget of several: the parts the round misses
        meets = "yes" if r.get("met") else "no" + (f" (misses {_e(', '.join(missed))})" if missed else "")
        rows.append([_e(r.get("round")), _e(what), (f"could not be built: {_e(r.get('failed'))}" if "failed" in r else
                     _e(r.get("skipped")) if "skipped" in r else
                     f"same model as round {_e(r.get('identical_to'))}") if same else
                     _num(r.get("cosine_mean"), ".6f"), "" if same else _num(_pct(r.get("top1_drop")), ".2f"),
                     *("" if same else _num(_pct(r.get(m)) if m == "confident-agreement" else r.get(m),
                                            ".2f" if m == "confident-agreement" else ".4g") for m, _ in extra),
                     "" if same else _num(r.get("latency_ms"), ".3f"), speed, "yes" if r.get("pareto") else "",
                     meets, "kept" if r.get("kept") else "",
                     _e(r.get("kept_because") or r.get("why_not") or "")])
    quantizer = b.get("quantizer") if isinstance(b.get("quantizer"), dict) else {}
    pareto = b.get("pareto") if isinstance(b.get("pareto"), list) else []
    fp32 = _number(b.get("fp32_latency_ms"))
    speed_line = (f'<p>Speed: the same runtime&#8217;s fp32 ({_e(b.get("fp32_runtime"))}) takes {_num(fp32, ".3f")} ms; '
                  f'floor {_num(floor, "g")}× (<code>--min-speedup {_e(b.get("min_speedup"))}</code>; never below 1×); '
                  f'Pareto set (accuracy vs latency): round(s) {_e(", ".join(str(n) for n in pareto) or "none")}'
                  + (f'; <span class="failed">{_e(b.get("unmet_reason"))}</span>' if b.get("unmet_reason") else "")
                  + '</p>') if fp32 is not None else (
        f'<p>Speed: the fp32 was not timed ({_e(b.get("fp32_runtime"))}); no floor applied</p>' if b.get("fp32_runtime") else "")
    head = (f'<p>Accuracy budget <code>{_e(b.get("budget"))}</code>: '
            f'<span class="{"ok" if b.get("met") else "failed"}">{"met" if b.get("met") else "not met"}</span> '
            f'(stopped: {_e(b.get("stopped"))}); kept: round {_e(b.get("best_round"))}, quantizer '
            f'{_e(", ".join(f"{k}={v}" for k, v in quantizer.items()) or "—")}, '
            f'{_e(len(b.get("float_nodes") or []))} nodes in float' + (f', by {_e(b["engine"])}' if b.get("engine") else "")
            + '</p>' + speed_line)
    n = len(extra)
    return head + _table(["round", "tried", "cosine", "top-1 drop (points)", *(h for _, h in extra),
                          "latency ms (median)", "× fp32", "Pareto", "meets", "", "why (not) kept"], rows,
                         cls="rounds", numeric={0, 2, 3, *range(4, 6 + n)})


def _pct(value):
    number = _number(value)
    return None if number is None else 100 * number


def _sweep_section(sweeps: list[dict]) -> str:
    if not sweeps:
        return ""

    parts = ['<section id="sweep"><h2>Deployment sweep</h2>']
    for data in sweeps:
        grid = data.get("grid") or {}
        parts.append(f'<p class="muted">from <code>{_e(data.get("_file"))}</code>: threads {_e(grid.get("threads"))}, '
                     f'batch {_e(grid.get("batch"))}, concurrency {_e(grid.get("concurrency"))}, '
                     f'{_e(data.get("seconds"))} s per point</p>')
        points = [p for p in data.get("points") or [] if isinstance(p, dict)]
        rows = [[_e(p.get("name")), _e(p.get("threads")), _e(p.get("batch")), _e(p.get("concurrency")),
                 _num(p.get("throughput"), ",.1f"), _num(p.get("p50_ms"), ".3f"), _num(p.get("p99_ms"), ".3f")]
                for p in points]
        parts.append(_table(["artifact", "threads", "batch", "concurrency", "items/s", "p50 ms", "p99 ms"], rows,
                            cls="sweep", numeric={1, 2, 3, 4, 5, 6}))
        proposals = [p for p in data.get("proposals") or [] if isinstance(p, dict)]
        for p in proposals:
            batching = (f"dynamic_batching preferred {p.get('preferred_batch_sizes')}, max queue delay "
                        f"{p.get('max_queue_delay_us')} µs" if p.get("preferred_batch_sizes") else "no dynamic batching")
            parts.append(f'<p class="proposal"><b>{_e(p.get("name"))}</b>: Triton instance_group count '
                         f'{_e(p.get("instances"))}, {_e(p.get("threads_per_instance"))} thread(s) per instance, '
                         f'{_e(batching)} — {_e(p.get("why"))}. '
                         f'Write it: <code>python main.py serve-bundle {_e(p.get("artifact"))} --out REPO '
                         f'--from-sweep {_e(data.get("_file"))}</code></p>')
        for note in data.get("notes", []):
            parts.append(f'<div class="warning">note: {_e(note)}</div>')
        chart = _sweep_chart_data(points, proposals)
        if chart["points"]:
            parts.append(f'<figure id="chart-sweep">{_svg(sweep_figure(chart))}<figcaption>Throughput vs p99, '
                         "knee starred</figcaption></figure>")
    parts.append("</section>")
    return "".join(parts)


def _sweep_point(p) -> dict | None:
    """A sweep point as :class:`app.bench.sweep.SweepPoint` takes it; None unless each number is one."""
    if not isinstance(p, dict):
        return None
    numbers = {k: _number(p.get(k)) for k in ("threads", "batch", "concurrency", "calls", "throughput", "p50_ms",
                                                "p99_ms")}
    if None in numbers.values():
        return None
    for k in ("threads", "batch", "concurrency", "calls"):  # counts: whole numbers
        if numbers[k] != int(numbers[k]):
            return None
        numbers[k] = int(numbers[k])
    return {"artifact": str(p.get("artifact", "?")), "name": str(p.get("name", "?")),
            "runtime": str(p.get("runtime", "?")), **numbers}


def _sweep_chart_data(points: list[dict], proposals: list[dict]) -> dict:
    """What the sweep's chart draws: the points (and knees) whose numbers are numbers."""
    clean = [c for c in map(_sweep_point, points) if c is not None]
    knees = [{"artifact": str(p.get("artifact", "?")), "knee": knee} for p in proposals
             if (knee := _sweep_point(p.get("knee"))) is not None]
    return {"points": clean, "proposals": knees}


def _bench_section(benches: list[dict]) -> str:
    benches = [b for b in benches if b.get("kind") != "sweep"]
    if not benches:
        return ""
    parts = ['<section id="benchmark"><h2>Benchmark</h2>']
    for b in benches:
        cfg = b.get("config") or {}
        parts.append(f'<p class="muted">from <code>{_e(b.get("_file"))}</code>: {_e(cfg.get("runs"))} timed calls '
                     f'at least, {_e(cfg.get("threads"))} threads, seed {_e(cfg.get("seed"))}</p>')
        rows = [[_e(r.get("name")) + (" (baseline)" if r.get("baseline") else ""), _e(r.get("runtime")),
                 _e(r.get("provider")), _e(r.get("precision")), _e(r.get("batch")), _num(r.get("p50_ms"), ".3f"),
                 _num(r.get("p90_ms"), ".3f"), _num(r.get("p99_ms"), ".3f"), _num(r.get("throughput"), ",.1f"),
                 _num(r.get("speedup_vs_baseline"), ".2f"), _num(r.get("cosine"), ".6f"),
                 _num(_mb(r.get("size_bytes")), ".2f")] for r in b.get("results", []) if isinstance(r, dict)]
        parts.append(_table(["runner", "runtime", "provider", "precision", "batch", "p50 ms", "p90 ms", "p99 ms",
                             "items/s", "speed-up", "cosine", "MB"], rows, cls="bench",
                            numeric={4, 5, 6, 7, 8, 9, 10, 11}))
        for s in b.get("skipped", []):
            parts.append(f'<div class="warning">{_e(s.get("status", "skipped"))}: {_e(s.get("name"))} — '
                         f'{_e(s.get("reason"))}</div>')
        for note in b.get("notes", []):
            parts.append(f'<div class="warning">note: {_e(note)}</div>')
    rows = _chart_rows(_unique_rows(benches))
    for chart_id, title, svg in (("chart-latency", "Latency (p50 bars, p90/p99 whiskers)", latency_chart(rows)),
                                 ("chart-batch", "Throughput by batch size", batch_chart(rows)),
                                 ("chart-accuracy", "Accuracy vs latency", accuracy_chart(rows))):
        if svg:
            parts.append(f'<figure id="{chart_id}">{svg}<figcaption>{_e(title)}</figcaption></figure>')
    parts.append("</section>")
    return "".join(parts)


PROFILE_TOP = 15  # a profiled artifact's slowest nodes in the report


def _profile_section(profiles: list[dict]) -> str:
    """Per profiled artifact: its slowest nodes (ms, share, the precision each kernel ran in, where, fell
    back; the error each adds where the artifact was diagnosed too: ``errors``, by graph node), the node
    sum beside the whole model's median, and the profile's notes."""
    if not profiles:
        return ""
    parts = ['<section id="profile"><h2>Where the time goes (profile)</h2>']
    for p in profiles:
        errors = p.get("errors") if isinstance(p.get("errors"), dict) else {}
        nodes = [n for n in p.get("nodes", []) if isinstance(n, dict)][:PROFILE_TOP]
        coverage = _number(p.get("coverage"))
        parts.append(f'<h3><code>{_e(Path(str(p.get("artifact", "?"))).name)}</code> — {_e(p.get("runtime"))} '
                     f'({_e(p.get("provider"))}), {_e(p.get("precision"))}</h3>'
                     f'<p class="muted">per-node sum {_num(p.get("node_sum_ms"), ".3f")} ms · whole model median '
                     f'{_num(p.get("median_ms"), ".3f")} ms · coverage {f"{coverage:.0%}" if coverage is not None else "—"}'
                     f' · median of {_e(p.get("runs"))} profiled runs per node, {_e(p.get("threads"))} thread(s)</p>')
        rows = [[_e(i), _e(n.get("name")), _e(n.get("op_type")), _num(n.get("ms"), ".4f"),
                 _percent_cell(n.get("share"), ".1f"), _e(n.get("precision") or "—"), _e(n.get("provider")),
                 "yes" if n.get("fell_back") is True else "", _percent_cell(errors.get(str(n.get("graph_node") or "")), ".3g")]
                for i, n in enumerate(nodes, 1)]
        head = ["#", "node", "op type", "ms", "share", "precision", "where", "fell back", "error it adds"]
        if not errors:
            head, rows = head[:-1], [r[:-1] for r in rows]
        parts.append(_table(head, rows, cls="profile", numeric={0, 3, 4, 8}))
        for note in p.get("notes", []) if isinstance(p.get("notes"), list) else []:
            parts.append(f'<div class="warning">note: {_e(note)}</div>')
    parts.append("</section>")
    return "".join(parts)


def profile_for_report(profile: dict, diagnosis: dict | None = None) -> dict:
    """A ``profile --json`` object to pass among ``benches``, with the error each graph node adds from a
    diagnosis of the same artifact (``diagnose --json``'s ``ranking``), where there is one."""
    from app.accuracy.diagnose import added_by_node

    return dict(profile, errors=added_by_node(diagnosis["ranking"])) if diagnosis else dict(profile)


def _percent_cell(fraction, fmt: str) -> str:
    """A fraction as a percent cell (0.112 → 11.2 %), — where it is not a number."""
    value = _pct(fraction)
    return "—" if value is None else f"{value:{fmt}} %"


def render(manifests: list[dict], benches: list[dict], *, title: str = "Model Deployment Studio report") -> str:
    """The report as one HTML document (a string); profiles (``profile --json`` objects) among ``benches``
    get their own section."""
    profiles = [b for b in benches if _kind(b) == "profile"]
    benches = [b for b in benches if _kind(b) != "profile"]
    from importlib import metadata

    try:
        version = metadata.version("model-deployment-studio")
    except metadata.PackageNotFoundError:
        version = "unknown"
    when = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    body = [f"<h1>{_e(title)}</h1>",
            f'<p class="muted">written {_e(when)} by Model Deployment Studio {_e(version)}: '
            f"{len(manifests)} artifact(s), {len(benches)} benchmark result(s)</p>",
            _machine_section(benches), _source_section(manifests), _artifact_section(manifests),
            _bench_section(benches), _sweep_section([b for b in benches if b.get("kind") == "sweep"]),
            _profile_section(profiles)]
    # no network: the policy forbids every fetch; the page needs none
    csp = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
            f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>"
            + "".join(body) + "</body></html>\n")


def write_report(paths: list[Path], out: Path, *, overwrite: bool = False, benches: list[dict] = ()) -> dict:
    """Collect, render and write the report atomically; returns what went in (for ``--json``).

    ``benches`` are benchmark results already in memory (the window's last benchmark), reported
    after those found in ``paths``."""
    out = Path(out).expanduser()
    if out.suffix.lower() not in (".html", ".htm"):
        raise BadInput(f"--out {out}: the report is one HTML file; name it e.g. report.html")
    if out.exists() and not overwrite:
        raise BadInput(f"{out} exists; pass --overwrite to replace it")
    if not out.parent.is_dir():
        raise BadInput(f"--out {out}: folder {out.parent} does not exist")
    given = [dict(b, _file=b.get("_file") or "this session's benchmark") for b in benches]
    if not paths and not given:
        raise BadInput("nothing to report: convert or benchmark first")
    manifests, found = collect(paths, allow_empty=bool(given)) if paths else ([], [])
    benches = found + given
    text = render(manifests, benches)

    atomic_write_text(out, text)
    return {"status": "ok", "report": str(out), "bytes": len(text.encode("utf-8")),
            "artifacts": [m.get("artifact") for m in manifests], "benchmarks": [b["_file"] for b in benches]}
