"""The HTML report in a real browser engine (QtWebEngine under Xvfb): the DOM a reader gets, with no
request leaving the page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import QUrl

from tests.runs import make_run


@pytest.fixture(scope="module")
def report(tmp_path_factory, model_files):
    from app.reports.html import write_report

    root = tmp_path_factory.mktemp("report_page")
    state = root / "cnn.pt"
    state.write_bytes(model_files["cnn_state"].read_bytes())
    run = make_run(root, state)
    out = root / "report.html"
    write_report([run["run"]], out)
    return out, run


def evaluate(qtbot, view, source: str):
    results: list = []
    view.page().runJavaScript(source, 0, results.append)
    qtbot.waitUntil(lambda: bool(results), timeout=10_000)
    return results[0]


DOM_JS = r"""JSON.stringify({
  title: document.title,
  sections: Array.from(document.querySelectorAll('section')).map(s => s.id),
  artifactRows: Array.from(document.querySelectorAll('table.artifacts tbody tr')).map(
      tr => Array.from(tr.cells).map(td => td.textContent.trim())),
  benchRows: document.querySelectorAll('table.bench tbody tr').length,
  charts: Array.from(document.querySelectorAll('figure')).map(f => [f.id, f.querySelector('svg') !== null,
      f.querySelector('svg') ? f.querySelector('svg').getBoundingClientRect().width : 0]),
  warnings: Array.from(document.querySelectorAll('.warning')).map(d => d.textContent),
  warningsVisible: Array.from(document.querySelectorAll('.warning')).every(d => d.scrollWidth <= d.clientWidth + 1),
  commands: Array.from(document.querySelectorAll('pre.command')).map(p => p.textContent),
  resources: performance.getEntriesByType('resource').map(e => e.name),
  links: Array.from(document.querySelectorAll('a')).map(a => [a.getAttribute('href'),
      document.querySelector(a.getAttribute('href')) !== null]),
})"""


def test_report_renders_its_tables_charts_and_warnings_without_fetching(qtbot, report):
    from PySide6.QtWebEngineWidgets import QWebEngineView

    out, run = report
    view = QWebEngineView()
    qtbot.addWidget(view)
    view.resize(1200, 900)
    view.show()
    qtbot.waitExposed(view)
    with qtbot.waitSignal(view.loadFinished, timeout=30_000) as loaded:
        view.load(QUrl.fromLocalFile(str(out)))
    assert loaded.args == [True]
    dom = json.loads(evaluate(qtbot, view, DOM_JS))
    assert dom["title"] == "Model Deployment Studio report"
    assert dom["sections"] == ["machine", "source", "artifacts", "benchmark"]
    names = sorted(p.name for p in run["artifacts"])
    assert sorted(row[0] for row in dom["artifactRows"]) == names
    assert all(row[3] == "passed" for row in dom["artifactRows"])    # the verdict column
    assert dom["benchRows"] == len(json.loads(run["bench"].read_text())["results"]) >= 3 * 2
    assert [c[0] for c in dom["charts"]] == ["chart-latency", "chart-batch", "chart-accuracy"]
    assert all(has_svg and width > 200 for _, has_svg, width in dom["charts"]), dom["charts"]  # drawn, not empty
    warnings = [w for m in run["manifest_data"] for w in m["warnings"]]
    assert all(w in dom["warnings"] for w in warnings) and dom["warningsVisible"]
    assert len(dom["commands"]) == 2 and all(c.startswith("python main.py convert ") for c in dom["commands"])
    assert dom["resources"] == []  # nothing was fetched
    assert dom["links"] and all(href.startswith("#") and target for href, target in dom["links"])


def test_the_window_prints_the_report_to_pdf(qtbot, tmp_path, model_files):
    from tests.ui.user import convert, load_model, open_window, private_settings, tick

    private_settings(tmp_path / "settings")
    window = open_window(qtbot)
    try:
        model = tmp_path / "cnn.onnx"
        model.write_bytes(model_files["cnn_onnx"].read_bytes())
        load_model(qtbot, window, model)
        window.options.out_dir.setText(str(tmp_path / "out"))
        tick(qtbot, window, ("onnx", "fp16"))
        convert(qtbot, window)
        out = tmp_path / "report.pdf"
        import tempfile

        staged = set(Path(tempfile.gettempdir()).glob("studio-report-*"))
        with qtbot.waitSignal(window.report_finished, timeout=60_000) as done:
            window.exporting.export_report(out)
        assert done.args == [str(out)]
        data = out.read_bytes()
        assert data.startswith(b"%PDF") and data.count(b"/Type /Page") + data.count(b"/Type/Page") >= 1
        assert len(data) > 20_000  # text, tables and the inline SVG charts, not an empty page
        assert f"wrote the report {out} (PDF)" in window.log.text()
        assert set(Path(tempfile.gettempdir()).glob("studio-report-*")) == staged  # the staged HTML is gone
    finally:
        window.close()
