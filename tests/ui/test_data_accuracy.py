"""Data and accuracy in the window: drop a data folder, INT8 asks for data (or random, knowingly),
accuracy columns with full-text tooltips, and the accuracy-vs-latency chart with its Pareto front."""

from __future__ import annotations

from PySide6.QtCore import Qt

from tests.conftest import DIGITS_ARGS
from tests.ui.user import click, convert, drop_file, load_model, message_box, set_shape, tick

ARCH = DIGITS_ARGS[1]


def _load_digits(qtbot, window, digits, tmp_path):
    load_model(qtbot, window, digits["state"], arch=ARCH)
    set_shape(qtbot, window, "x", "1x1x8x8")
    window.options.out_dir.setText(str(tmp_path))
    assert window.model.arch() == ARCH
    qtbot.waitUntil(lambda: not window.model.signature().problems, timeout=30_000)


def test_dropped_data_folder_calibrates_and_evaluates_and_the_table_shows_accuracy(qtbot, window, digits, tmp_path):
    _load_digits(qtbot, window, digits, tmp_path)
    assert drop_file(window, digits["images"], onto=window.results)   # a folder is data, not a model
    qtbot.waitUntil(lambda: window.options.calibration.text() == str(digits["images"]), timeout=10_000)
    assert window.options.data_note.text() == "Data: images/ — 300 images in 10 classes"
    assert window.model_path == digits["state"]                          # the model stays loaded
    tick(qtbot, window, ("onnx", "int8"))
    qtbot.waitUntil(window.convert_button.isEnabled, timeout=30_000)
    convert(qtbot, window)                                               # no question: data is given
    row = window.results.row_for("onnx", "int8")
    e = row.result.evaluation
    assert e is not None and e.samples == 210
    assert window.results.text(0, "Cosine on data") == f"{e.cosine_mean:.5f}"
    assert window.results.text(0, "Top-1 agreement") == f"{e.top1_agreement:.1%}"
    assert window.results.text(0, "Top-1 (source → artifact)") == f"{e.source_top1:.1%} → {e.artifact_top1:.1%}"
    assert window.results.text(0, "Confident agreement") == f"{e.confident_agreement:.1%} ({e.confident_samples} of 210)"
    assert 0 < e.confident_samples <= 210
    from ui.results_table import COLUMNS
    tip = window.results.item(0, COLUMNS.index("Cosine on data")).toolTip()
    assert "top-1" in tip and "210 samples" in tip and "normalised" in tip
    # what the figures stand on: the confident calls out of all samples, the margin, the KL, the interval
    assert f"on {e.confident_samples} of 210 samples (margin ≥ 0.1)" in tip and "KL mean" in tip
    assert "95% interval" in tip
    assert "on data: cosine mean" in window.log.text()


def test_int8_without_data_asks_and_random_data_is_an_explicit_choice(qtbot, window, digits, tmp_path):
    _load_digits(qtbot, window, digits, tmp_path)
    tick(qtbot, window, ("onnx", "int8"))
    click(qtbot, window.convert_button)
    box = message_box(qtbot, window)
    assert box.windowTitle() == "INT8 needs data" and not window.jobs.running
    random = next(b for b in box.buttons() if b.text().startswith("Random data"))
    with qtbot.waitSignal(window.jobs.all_finished, timeout=120_000):
        qtbot.mouseClick(random, Qt.MouseButton.LeftButton)
    warnings = window.results.text(0, "Warnings")
    assert "RANDOM DATA" in warnings
    from ui.results_table import COLUMNS
    tip = window.results.item(0, COLUMNS.index("Warnings")).toolTip()
    assert "choose a Data folder" in tip and "--data" not in tip and tip.startswith("<p")   # rich text: wrapped, never cut off
    assert window.results.text(0, "Cosine on data") == "—"


def test_int8_without_data_can_choose_a_folder(qtbot, window, digits, tmp_path):
    _load_digits(qtbot, window, digits, tmp_path)
    tick(qtbot, window, ("onnx", "int8"))
    click(qtbot, window.convert_button)
    box = message_box(qtbot, window)
    choose = next(b for b in box.buttons() if b.text().startswith("Choose data folder"))
    qtbot.mouseClick(choose, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.dialog is not None and window.dialog.windowTitle() == "Data folder")
    with qtbot.waitSignal(window.jobs.all_finished, timeout=120_000):
        window.dialog.fileSelected.emit(str(digits["arrays"]))       # what pressing Choose does
    assert window.options.calibration.text() == str(digits["arrays"])
    assert window.results.row_for("onnx", "int8").result.evaluation.artifact_top1 is not None


def test_accuracy_chart_draws_the_pareto_front_and_hover_names_the_artifact(qtbot):
    from ui.accuracy_chart import AccuracyChart, pareto_front

    points = [{"name": "eager", "latency_ms": 3.0, "accuracy": 0.97},
              {"name": "onnx fp32", "latency_ms": 1.0, "accuracy": 0.97},
              {"name": "onnx int8", "latency_ms": 0.4, "accuracy": 0.965},
              {"name": "slow and worse", "latency_ms": 2.0, "accuracy": 0.96}]
    assert [p["name"] for p in pareto_front(points)] == ["onnx int8", "onnx fp32"]
    chart = AccuracyChart()
    qtbot.addWidget(chart)
    chart.resize(800, 400)
    chart.show()
    qtbot.waitExposed(chart)
    chart.set_points(points, "top-1 on the data · p50 latency at batch 1")
    assert [p["name"] for p in chart.front] == ["onnx int8", "onnx fp32"]
    assert list(chart.line.getData()[0]) == [0.4, 1.0]
    assert chart.point_at(chart.point_scene_pos(2))["name"] == "onnx int8"

    def hover() -> bool:  # the title and axis label re-lay the plot out once shown: point again until it lands
        qtbot.mouseMove(chart.viewport(), chart.mapFromScene(chart.point_scene_pos(2)))
        return bool(chart.hover_text)

    qtbot.waitUntil(hover)
    assert chart.hover_text.startswith("onnx int8") and "Pareto front" in chart.hover_text


def test_accuracy_points_use_the_evaluation_of_each_artifact():
    from app.accuracy.evaluation import Evaluation
    from ui.accuracy_chart import accuracy_points

    e = Evaluation(10, "d", 0.999, 0.99, 0.995, 0.01, 0.02, 1.0, 0.9, 0.88, 1.0, 1.0)
    rows = [{"name": "source", "batch": 1, "p50_ms": 2.0, "baseline": True},
            {"name": "int8", "batch": 1, "p50_ms": 0.5, "artifact": "/x/m.int8.onnx"},
            {"name": "int8", "batch": 4, "p50_ms": 1.5, "artifact": "/x/m.int8.onnx"}]
    points, label = accuracy_points(rows, {"/x/m.int8.onnx": e})
    assert label.startswith("top-1 on the data")
    assert [(p["name"], p["accuracy"]) for p in points] == [("source", 0.9), ("int8", 0.88)]


def _menu_action(window, row: int, text: str):
    return next(a for a in window.results.context_menu(row).actions() if a.text() == text)


def test_diagnosis_tab_ranks_the_int8_artifacts_nodes_from_the_results_menu(qtbot, window, digits, tmp_path):
    _load_digits(qtbot, window, digits, tmp_path)
    with qtbot.waitSignal(window.opening.set_data(digits["images"]).succeeded, timeout=10_000):
        pass
    tick(qtbot, window, ("onnx", "fp32"), ("onnx", "int8"))
    qtbot.waitUntil(window.convert_button.isEnabled, timeout=30_000)
    convert(qtbot, window)
    fp32 = next(i for i, r in enumerate(window.results.rows) if r.precision == "fp32")
    int8 = next(i for i, r in enumerate(window.results.rows) if r.precision == "int8")
    nothing = _menu_action(window, fp32, "Where does the error come from?")
    assert not nothing.isEnabled() and "only int8 and fp16 artifacts have error to locate" in nothing.toolTip()
    e = window.results.rows[int8].result.evaluation          # int8 is judged on the data, not random inputs
    lost = e.cosine_mean < 0.99 or ((e.confident_samples or 0) >= 20 and e.confident_agreement < 0.99)
    assert window.results.text(int8, "Verdict") == ("passed with accuracy loss" if lost else "passed")
    from ui.results_table import COLUMNS

    tip = window.results.item(int8, COLUMNS.index("Cosine (random inputs)")).toolTip()  # grey, and says why
    assert "judged on the data instead" in tip and f"{e.cosine_mean:.4f}" in tip
    action = _menu_action(window, int8, "Where does the error come from?")
    assert action.isEnabled()
    action.trigger()
    assert window.jobs.running                                  # a background job: the window stays free
    qtbot.waitUntil(lambda: window.diagnosis.table.rowCount() > 0, timeout=120_000)
    assert window.tabs.currentWidget() is window.diagnosis
    panel = window.diagnosis
    added = [panel.value(r, 3) for r in range(panel.table.rowCount())]
    assert added == sorted(added, reverse=True) and added[0] > 0
    assert {panel.table.item(r, 2).text() for r in range(panel.table.rowCount())} & {"Conv", "Gemm", "MatMul"}
    assert "features.0" in {panel.table.item(r, 1).text() for r in range(panel.table.rowCount())}  # module paths
    assert panel.artifact == window.results.rows[int8].artifact and "samples" in panel.summary.text()
    with qtbot.waitSignal(panel.node_chosen, timeout=5_000) as chosen:  # choosing a row names the node to show
        panel.node_chosen.disconnect(window.graph_tab.show_node)                  # (the Graph tab is tested under Xvfb)
        panel.choose(1)
    assert chosen.args == [str(panel.artifact), panel.table.item(1, 5).text(), panel.nodes[1].output]


def test_diagnosis_without_data_says_what_to_do(qtbot, window, digits, tmp_path):
    _load_digits(qtbot, window, digits, tmp_path)
    window.options.quantization.setCurrentText("dynamic")
    tick(qtbot, window, ("onnx", "int8"))
    qtbot.waitUntil(window.convert_button.isEnabled, timeout=30_000)
    convert(qtbot, window)
    _menu_action(window, 0, "Where does the error come from?").trigger()
    box = message_box(qtbot, window)
    assert box.windowTitle() == "Diagnosis needs data" and "data folder" in box.text()
    assert not window.jobs.running


def test_the_guessed_shapes_warning_goes_once_the_user_sets_them(qtbot, window, digits):
    load_model(qtbot, window, digits["state"], arch=ARCH)
    assert "input shapes are a guess" in window.model.warnings_label.text()   # 1x1x224x224 from the first Conv
    set_shape(qtbot, window, "x", "1x1x8x8")
    assert "are a guess" not in window.model.warnings_label.text()


def test_accuracy_budget_from_the_form_draws_every_round_on_the_accuracy_chart(qtbot, window, digits, tmp_path):
    """The ONNX target offers the budget at fp16/int8 only: typed into the form, it reaches the int8 job
    (not the fp32 one), and the int8 job's rounds — quantizer settings first — are logged and drawn."""
    _load_digits(qtbot, window, digits, tmp_path)
    with qtbot.waitSignal(window.opening.set_data(digits["images"]).succeeded, timeout=10_000):
        pass
    qtbot.keyClicks(window.options.accuracy_budget, "cosine=1")
    tick(qtbot, window, ("onnx", "fp32"), ("onnx", "int8"))
    assert "accuracy_budget" not in window.converting.build_request("onnx", "fp32").options
    assert window.converting.build_request("onnx", "int8").options["accuracy_budget"] == "cosine=1"
    qtbot.waitUntil(window.convert_button.isEnabled, timeout=30_000)
    convert(qtbot, window)
    assert window.results.row_for("onnx", "fp32").result.accuracy_budget is None
    result = window.results.row_for("onnx", "int8").result
    b = None
    if result is None:   # no round reached the speed floor on this CPU: nothing written, the rounds still drawn
        assert "no round reaches the speed floor" in window.log.text()
    else:
        b = result.accuracy_budget
        assert result.status == ("ok" if b["met"] else "unmet")
    chart = window.accuracy_chart
    if b is None:
        assert chart.rounds and chart.floor_ms is not None and any(p["below_floor"] for p in chart.rounds)
        assert "round  1 quantizer: weight_type=" in window.log.text()
        return
    assert [r["stage"] for r in b["rounds"][:2]] == ["first", "quantizer"]
    measured = [r for r in b["rounds"] if "identical_to" not in r and "failed" not in r and "skipped" not in r]
    assert len(chart.rounds) == len(measured) and [p["kept"] for p in chart.rounds].count(True) == 1
    assert chart.floor_ms == b["fp32_latency_ms"] / b["speed_floor"]    # the speed floor, a vertical line
    assert [p["pareto"] for p in chart.rounds] == [r["round"] in b["pareto"] for r in measured]
    assert [p["accuracy"] for p in chart.rounds] == [r["artifact_top1"] for r in measured]   # labelled data: top-1
    assert "round  1 quantizer: weight_type=" in window.log.text()
    chart.resize(800, 400)
    kept = next(i for i, p in enumerate(chart.rounds) if p["kept"])
    assert chart.point_at(chart.round_scene_pos(kept))["name"].endswith(chart.rounds[kept]["name"].split(": ", 1)[1])
