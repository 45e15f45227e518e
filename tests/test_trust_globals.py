"""A pickled module that names many globals (issue 25, item 3): the refusal lists every name still
needed, one a line, and ``--trust-globals-from FILE`` trusts a list of them (real pickled files: a
``transformers`` BertModel built from a tiny config)."""

from __future__ import annotations

import json

import pytest
import torch

ARGS = ["--allow-pickle", "--input", "input_ids:1x12:int64", "--to", "onnx"]


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    """A pickled BertModel (no --arch: every transformers class it names needs trusting) and those names."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=37)
    path = tmp_path_factory.mktemp("bert") / "bert.pt"
    torch.save(transformers.BertModel(config).eval(), path)
    from app.safety.unpickling import approve, unsafe_globals

    needed = sorted(approve(unsafe_globals(path), allow_pickle=True).refused)
    assert len(needed) > 6 and "transformers.models.bert.configuration_bert.BertConfig" in needed
    return path, needed


def _listed(err: str) -> list[str]:
    """The names a refusal lists, one a line (indented) after its first line, before what to do (every
    line of a job's message after the first is indented)."""
    return [line.strip() for line in err.splitlines()
            if line.startswith("  ") and not line.strip().startswith("If you trust")]


def test_the_refusal_lists_every_global_still_needed_and_json_carries_them(cli, bert, tmp_path):
    path, needed = bert
    r = cli("convert", path, *ARGS, "--out", tmp_path / "out")
    assert r.code == 2
    errors = [line for line in r.err.splitlines() if not line.startswith("… ")]
    assert errors[0].startswith(f"error: {path}: refused") and f"needs {len(needed)} globals" in errors[0]
    assert _listed(r.err) == needed and "more" not in r.err
    assert "save these names one per line in a file and pass --trust-globals-from FILE" in errors[-1]
    r = cli("convert", path, *ARGS, "--out", tmp_path / "out", "--json")
    failed = json.loads(r.out)
    assert failed["status"] == "failed" and failed["details"]["globals"] == needed
    assert _listed(failed["message"]) == needed


def test_trust_globals_from_a_file_with_every_name_loads_it(cli, bert, tmp_path):
    path, needed = bert
    trust = tmp_path / "trust.txt"
    trust.write_text("# what bert.pt needs\n\n" + "\n".join(f"{n}   # ok" if i % 2 else n
                                                             for i, n in enumerate(needed)) + "\n")
    r = cli("convert", path, *ARGS, "--trust-globals-from", trust, "--out", tmp_path / "out")
    assert r.code == 0, r.err
    assert "does not use it" not in r.err
    manifest = json.loads(next((tmp_path / "out").glob("*.manifest.json")).read_text())
    assert manifest["options"]["trusted_globals"] == needed and manifest["options"]["allow_pickle"] is True


def test_a_trust_file_missing_one_name_refuses_listing_exactly_that_one(cli, bert, tmp_path):
    path, needed = bert
    missing = needed[3]
    trust = tmp_path / "trust.txt"
    trust.write_text("\n".join(n for n in needed if n != missing) + "\n")
    r = cli("convert", path, *ARGS, "--trust-globals-from", trust, "--out", tmp_path / "out")
    assert r.code == 2 and _listed(r.err) == [missing], r.err
    assert "needs 1 global " in r.err
    # the same with --trust-global, given more than once, for the rest
    flags = [a for n in needed if n != missing for a in ("--trust-global", n)]
    r = cli("convert", path, *ARGS, *flags, "--out", tmp_path / "out")
    assert r.code == 2 and _listed(r.err) == [missing], r.err


def test_a_name_the_pickle_does_not_use_is_ignored_with_a_note(cli, bert, tmp_path):
    path, needed = bert
    trust = tmp_path / "trust.txt"
    trust.write_text("\n".join(needed) + "\nsomewhere.else.NotInIt\n")
    r = cli("convert", path, *ARGS, "--trust-globals-from", trust, "--out", tmp_path / "out")
    assert r.code == 0, r.err
    [note] = [line for line in r.err.splitlines() if "NotInIt" in line]
    assert note.startswith("warning: ") and "bert.pt does not use it; ignored" in note


@pytest.mark.parametrize("content, message", [
    ("torch._C._nn.gelu\nnot a name\n", "line 2: 'not a name' is not a global's name"),
    (None, "cannot read it"),
])
def test_a_bad_trust_file_is_one_error_naming_it(cli, bert, tmp_path, content, message):
    path, _ = bert
    trust = tmp_path / "trust.txt"
    if content is not None:
        trust.write_text(content)
    r = cli("convert", path, *ARGS, "--trust-globals-from", trust, "--out", tmp_path / "out")
    assert r.code == 2 and f"--trust-globals-from {trust}" in r.err and message in r.err, r.err
