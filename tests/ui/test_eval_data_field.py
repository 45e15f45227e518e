"""The window's "Evaluation data…" field (``--eval-data``): it goes into the job's data source, is
remembered, and the command that remakes the job has the flag."""

from __future__ import annotations

from pathlib import Path


def test_evaluation_data_field_goes_into_the_request_and_is_remembered(qtbot, tmp_path):
    from app.reports.command_echo import data_args
    from ui.target_picker import ConversionOptions

    options = ConversionOptions()
    qtbot.addWidget(options)
    assert options.data_source() is None
    options.calibration.edit.setText(str(tmp_path / "calib"))
    assert options.data_source().eval_path is None                  # no field: the data folder is split
    options.eval_data.edit.setText(str(tmp_path / "other-photos"))
    source = options.data_source()
    assert source.path == tmp_path / "calib" and source.eval_path == Path(tmp_path / "other-photos")
    assert data_args(source) == ["--data", str(tmp_path / "calib"), "--eval-data", str(tmp_path / "other-photos")]
    again = ConversionOptions()
    qtbot.addWidget(again)
    again.restore(options.state())
    assert again.data_source() == source
