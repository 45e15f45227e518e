"""The window converts to LiteRT like any other target (the grid's row comes from the registry): the
result with its delegation report on hover, and the .tflite in the benchmark chart beside the source."""

from __future__ import annotations

import importlib.util

import pytest

from tests.ui.user import click, convert, load_model, set_shape, tick, wait_event

if importlib.util.find_spec("litert_torch") is None or importlib.util.find_spec("ai_edge_litert") is None:
    pytest.skip("the LiteRT extra is not installed (pip install -e '.[litert]')", allow_module_level=True)


def test_window_converts_to_litert_and_benchmarks_it(qtbot, window, digits, tmp_path):
    load_model(qtbot, window, digits["state"], arch="tests.models:DigitsCNN")
    set_shape(qtbot, window, "x", "1x1x8x8")
    qtbot.waitUntil(lambda: not window.model.signature().problems, timeout=30_000)
    window.options.out_dir.setText(str(tmp_path / "out"))
    tick(qtbot, window, ("litert", "fp32"))
    convert(qtbot, window)
    row = window.results.row_for("litert", "fp32")
    assert row.artifact.suffix == ".tflite" and row.artifact.is_file() and row.verification_passed
    assert row.result.delegation["delegated"]["FULLY_CONNECTED"] == 1
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
    assert {r["runtime"] for r in rows} == {"pytorch", "litert"}
    assert len(window.latency_chart.bars.opts["height"]) == len(rows)
