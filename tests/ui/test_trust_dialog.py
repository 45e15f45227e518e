"""The window's pickle dialog for a file that names many globals (issue 25, item 3): every name is
listed, one a line, and one "Trust these" button trusts them all and loads the file."""

from __future__ import annotations

import pytest
import torch
from PySide6.QtWidgets import QMessageBox

from tests.ui.user import answer, drop_file, message_box, wait_event


def test_the_dialog_lists_every_global_and_trust_these_loads_it(qtbot, window, tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=37)
    path = tmp_path / "bert.pt"
    torch.save(transformers.BertModel(config).eval(), path)
    from app.safety.unpickling import unsafe_globals

    outside = [n for n in unsafe_globals(path) if not n.startswith("torch.nn.")]
    assert len(outside) > 6
    drop_file(window, path)
    box = message_box(qtbot, window)
    listed = [line.strip() for line in box.text().splitlines() if line.startswith("    ")]
    assert listed == outside  # all of them, one a line: none hidden behind "and 4 more"
    trust = box.button(QMessageBox.StandardButton.Yes)
    assert trust.text() == "Trust these"
    with wait_event(qtbot, window.session.events.model_loaded, timeout=60_000) as loaded:
        answer(qtbot, box, QMessageBox.StandardButton.Yes)
    assert loaded.args[0]["format"] == "pickle" and window.allow_pickle
    assert window.converting.build_request("onnx", "fp32").source.trusted_globals == tuple(outside)
