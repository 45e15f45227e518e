"""The window converts to ExecuTorch like any other target: the grid's row, the result with its
delegation report on hover, and the .pte in the benchmark chart beside the source."""

from __future__ import annotations

import pytest

from tests.ui.user import click, convert, load_model, set_shape, tick, wait_event

pytest.importorskip("executorch", reason="the ExecuTorch extra is not installed")


def test_window_converts_to_executorch_and_benchmarks_it(qtbot, window, digits, tmp_path):
    load_model(qtbot, window, digits["state"], arch="tests.models:DigitsCNN")
    set_shape(qtbot, window, "x", "1x1x8x8")
    qtbot.waitUntil(lambda: not window.model.signature().problems, timeout=30_000)
    window.options.out_dir.setText(str(tmp_path / "out"))
    tick(qtbot, window, ("executorch", "fp32"))
    convert(qtbot, window)
    row = window.results.row_for("executorch", "fp32")
    assert row.artifact.suffix == ".pte" and row.artifact.is_file() and row.verification_passed
    assert row.result.delegation["delegated"]["aten.convolution"] == 3
    table = window.results
    from ui.results_table import COLUMNS

    name = COLUMNS.index("Artifact")
    name_cell = next(table.item(r, name) for r in range(table.rowCount()) if table.item(r, name).text() == row.artifact.name)
    assert "Delegation: " in name_cell.toolTip() and "run in XNNPACK" in name_cell.toolTip()

    window.bench_options.batches.setText("1")
    window.bench_options.runs.setValue(10)
    with wait_event(qtbot, window.session.events.benchmark_finished, timeout=180_000) as finished:
        click(qtbot, window.benchmark_button)
    rows = finished.args[0]["results"]
    assert {r["runtime"] for r in rows} == {"pytorch", "executorch"}
    assert len(window.latency_chart.bars.opts["height"]) == len(rows)
