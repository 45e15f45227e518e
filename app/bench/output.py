"""Benchmark results as a text table, JSON, CSV and a PNG chart.

The PNG is drawn with matplotlib's Agg canvas directly (``matplotlib.figure.Figure`` +
``FigureCanvasAgg``): no pyplot, no global backend switch, no GUI toolkit imported.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from app.bench.harness import BenchResult
from app.runtimes.onnxrt import short_provider

# The columns the window's charts read, in order; the CSV adds the rest after them.
CSV_FIELDS = ("name", "runtime", "provider", "precision", "batch", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms",
              "throughput", "speedup_vs_baseline", "cosine", "rel_l2", "min_ms", "p95_ms", "max_ms", "runs",
              "cold_ms", "load_ms", "size_bytes", "peak_rss_mb", "threads", "max_abs_err", "capped", "baseline",
              "artifact", "p50_ci_low_ms", "p50_ci_high_ms", "speedup_ci_low", "speedup_ci_high", "verdict", "noisy")


def _num(value, fmt: str, missing: str = "-") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    return format(value, fmt)


def format_table(result: BenchResult | dict) -> str:
    """The rows as an aligned text table, grouped by batch size, with the machine and the skips."""
    data = result.to_json() if isinstance(result, BenchResult) else result
    m = data.get("machine", {})
    lines = [f"machine: {m.get('cpu', '?')}, {m.get('physical_cores', '?')} cores, {m.get('threads', '?')} threads; "
             f"torch {m.get('torch', '-')}, onnxruntime {m.get('onnxruntime', '-')} "
             f"({', '.join(m.get('onnxruntime_providers', [])) or 'no providers'})"
             + (f"; GPU {m['gpu']}" if m.get("gpu") else "")]
    head = ("runner", "runtime", "provider", "prec", "batch", "p50 ms", "p90 ms", "p99 ms", "mean±std ms", "items/s",
            "speedup", "cosine", "rel L2", "cold ms", "load ms", "size MB", "peak MB")
    body = []
    for r in data.get("results", []):
        body.append((r["name"] + (" *" if r.get("capped") else "") + (" ~" if r.get("noisy") else ""), r["runtime"], short_provider(r["provider"]), r["precision"],
                     str(r["batch"]), _num(r["p50_ms"], ".3f"), _num(r["p90_ms"], ".3f"), _num(r["p99_ms"], ".3f"),
                     f"{r['mean_ms']:.3f}±{r['std_ms']:.3f}", _num(r["throughput"], ",.1f"),
                     speedup_text(r),
                     _num(r.get("cosine"), ".6f"), _num(r.get("rel_l2"), ".2e"), _num(r.get("cold_ms"), ".1f"),
                     _num(r.get("load_ms"), ".0f"), _num((r.get("size_bytes") or 0) / 1e6, ".2f"),
                     _num(r.get("peak_rss_mb"), ".0f")))
    widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h) for i, h in enumerate(head)]
    fmt = lambda row: "  ".join(c.ljust(w) if i < 4 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))  # noqa: E731
    lines += [fmt(head), fmt(tuple("-" * w for w in widths))]
    lines += [fmt(row) for row in body]
    if any(r.get("capped") for r in data.get("results", [])):
        lines.append("* timed phase capped by --max-seconds before --runs calls")
    if any(r.get("speedup_ci_low") is not None for r in data.get("results", [])):
        lines.append("speed-up: [95 % interval]; '=' no measurable difference from the baseline; "
                     "~ p50 uncertain by more than ±5 %")
    for s in data.get("skipped", []):
        where = f" at batch {s['batch']}" if s.get("batch") is not None else ""
        lines.append(f"{s['status']}: {s['name']} ({s['runtime']}{', ' + short_provider(s['provider']) if s.get('provider') else ''})"
                     f"{where}: {s['reason']}")
    for note in data.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)


def speedup_text(row: dict) -> str:
    """``3.10× [2.95–3.27]``; ``=`` marks an interval that contains 1 (no measurable difference)."""
    value = row.get("speedup_vs_baseline")
    if not value:
        return "-"
    text = f"{value:.2f}×"
    lo, hi = row.get("speedup_ci_low"), row.get("speedup_ci_high")
    if lo is not None and hi is not None and not row.get("baseline"):
        text += f" [{lo:.2f}–{hi:.2f}]" + (" =" if row.get("verdict") == "no measurable difference" else "")
    return text


def plain_text(text) -> str:
    """``text`` (a name from a file) as matplotlib draws it literally: every ``$`` escaped, so that no
    part of it is read as mathtext (``$\\foo$`` would raise, ``$x$`` would come out in italics)."""
    return str(text).replace("$", r"\$")


def finish_axes(fig, ax, xlabel: str, ylabel: str, title: str) -> None:
    """Labels, title, grid and legend as every chart of ours has them; the layout tightened."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()


def write_csv(rows: list[dict], path: str | Path) -> Path:
    """One line per runner × batch size: :data:`CSV_FIELDS`, then any other keys the rows carry."""
    path = Path(path)
    extra = [k for r in rows for k in r if k not in CSV_FIELDS]
    fields = list(CSV_FIELDS) + list(dict.fromkeys(extra))
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k) for k in fields})
    tmp.replace(path)
    return path


def write_png(data: dict, path: str | Path, *, title: str = "") -> Path:
    """p50 bars with p90 (solid) and p99 (dashed) whiskers and speedup labels, one panel per batch size."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = latency_figure(data, title=title)
    FigureCanvasAgg(fig)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(str(tmp), format="png")
    tmp.replace(path)
    return path


def latency_figure(data: dict, *, title: str = ""):
    """The chart of :func:`write_png` as a matplotlib ``Figure`` with no canvas (the caller picks
    PNG for the CLI or SVG for the HTML report)."""
    from matplotlib.figure import Figure

    rows = data.get("results", [])
    batches = sorted({int(r["batch"]) for r in rows}) or [1]
    names = list(dict.fromkeys(r["name"] for r in rows))
    fig = Figure(figsize=(max(6.0, 1.1 * len(names) + 2.0), 3.2 * len(batches)), dpi=110)
    colors = [f"C{i % 10}" for i in range(len(names))]
    for k, batch in enumerate(batches):
        ax = fig.add_subplot(len(batches), 1, k + 1)
        shown = [r for r in rows if int(r["batch"]) == batch]
        x = list(range(len(shown)))
        p50 = [r["p50_ms"] for r in shown]
        ax.bar(x, p50, width=0.6, color=[colors[names.index(r["name"])] for r in shown], edgecolor="black",
               linewidth=0.5, label="p50")
        for i, r in enumerate(shown):
            ax.vlines(i, r["p50_ms"], r["p90_ms"], colors="black", linewidth=2)
            ax.hlines(r["p90_ms"], i - 0.15, i + 0.15, colors="black", linewidth=2)
            ax.vlines(i, r["p90_ms"], r["p99_ms"], colors="black", linewidth=1, linestyles="dashed")
            ax.hlines(r["p99_ms"], i - 0.06, i + 0.06, colors="black", linewidth=1)
            speedup = r.get("speedup_vs_baseline")
            label = f"×{speedup:.2f}" if speedup else ""
            if r.get("cosine") is not None and not r.get("baseline"):
                label += f"\ncos {r['cosine']:.4f}"
            ax.annotate(label, (i, r["p99_ms"]), xytext=(0, 3), textcoords="offset points", ha="center",
                        va="bottom", fontsize=7)
        ax.set_xticks(x)
        ax.set_xticklabels([plain_text(r["name"]) for r in shown], rotation=15, ha="right", fontsize=7)
        ax.set_ylabel("latency (ms)")
        top = max([r["p99_ms"] for r in shown] + [1e-9])
        ax.set_ylim(0, top * 1.3)
        ax.set_title(f"{plain_text(title) + ' — ' if title else ''}batch {batch}: p50 bars, p90 (solid) / p99 (dashed) whiskers",
                     fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
