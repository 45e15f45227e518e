"""--data: arrays, image folders and sentences read for a model's inputs, split deterministically,
and every kind of bad data refused with one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.accuracy.data import load_data
from app.request import DataSource
from app.errors import BadInput
from app.model.specs import TensorSpec
from tests.real_data import SENTENCES, minilm_folder

IMAGE = [TensorSpec("x", "float32", (1, 1, 8, 8))]
RGB = [TensorSpec("image", "float32", ("batch", 3, 16, 16), (1, 3, 16, 16))]
TEXT = [TensorSpec("input_ids", "int64", (1, 24)), TensorSpec("attention_mask", "int64", (1, 24))]


def _bad(path, specs=IMAGE, **options) -> str:
    with pytest.raises(BadInput) as e:
        load_data(DataSource(path, **options), specs)
    message = str(e.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_image_folder_with_class_subfolders_gives_labels_and_says_how_it_normalised(digits):
    data = load_data(digits["images"], IMAGE)
    assert len(data) == 300 and data.kind == "images"
    assert data.classes == [str(d) for d in range(10)]
    x = data.samples[0]["x"]
    assert x.shape == (1, 1, 8, 8) and x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    assert "unit" in data.notes[0] and "grayscale" in data.notes[0]
    labels = np.concatenate(data.labels)
    assert set(labels.tolist()) == set(range(10))
    # the class of each sample is the folder it came from
    first = sorted((digits["images"] / data.classes[int(labels[0])]).iterdir())[0]
    from PIL import Image
    assert np.allclose(np.asarray(Image.open(first), np.float32) / 255, x[0, 0], atol=1e-6)


def test_rgb_normalisation_defaults_to_imagenet_and_can_be_chosen(digits):
    data = load_data(DataSource(digits["images"], limit=4), RGB)
    assert data.samples[0]["image"].shape == (1, 3, 16, 16) and "imagenet" in data.notes[0]
    assert data.samples[0]["image"].min() < 0           # (x - mean) / std
    signed = load_data(DataSource(digits["images"], normalize="signed", limit=4), RGB)
    assert -1.0 <= signed.samples[0]["image"].min() and signed.samples[0]["image"].max() <= 1.0
    custom = load_data(DataSource(digits["images"], normalize="0.5,0.5,0.5;0.25,0.25,0.25", limit=4), RGB)
    assert np.allclose(custom.samples[0]["image"], (signed.samples[0]["image"] * 0.5) / 0.25, atol=1e-5)


def test_npz_arrays_keyed_by_input_name_with_labels_and_limit(digits):
    data = load_data(DataSource(digits["arrays"], limit=50), IMAGE)
    assert len(data) == 50 and data.samples[0]["x"].shape == (1, 1, 8, 8)
    assert data.labels is not None and data.labels[0].dtype == np.int64


def test_npz_expected_outputs_are_kept(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "s.npz", x=rng.standard_normal((5, 1, 1, 8, 8)).astype(np.float32),
             logits=rng.standard_normal((5, 1, 10)).astype(np.float32))
    data = load_data(tmp_path, IMAGE, [TensorSpec("logits", "float32", (1, 10))])
    assert len(data) == 5 and data.expected[0]["logits"].shape == (1, 10)


def test_sentences_tokenized_offline_and_padded_to_the_sequence_axis():
    data = load_data(DataSource(SENTENCES, tokenizer=minilm_folder(), limit=20), TEXT)
    assert len(data) == 20 and data.kind == "text"
    ids, mask = data.samples[0]["input_ids"], data.samples[0]["attention_mask"]
    assert ids.shape == mask.shape == (1, 24) and ids.dtype == np.int64
    assert ids[0, 0] == 101 and 0 < mask.sum() < 24      # [CLS] first, padding after the sentence
    assert np.all(ids[0, mask[0] == 0] == 0)
    assert "padded/truncated to 24 tokens" in data.notes[0]


def test_jsonl_sentences_with_labels(tmp_path):
    lines = [{"text": "The movie was wonderful.", "label": 1}, {"text": "I hated every minute.", "label": 0}]
    (tmp_path / "s.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    data = load_data(DataSource(tmp_path, tokenizer=minilm_folder()), TEXT)
    assert [int(l[0]) for l in data.labels] == [1, 0]


def test_split_is_deterministic_and_disjoint(digits):
    data = load_data(digits["arrays"], IMAGE)
    cal, ev = data.split(seed=0)
    cal2, ev2 = data.split(seed=0)
    assert len(cal) == 90 and len(ev) == 210
    assert all(np.array_equal(a["x"], b["x"]) for a, b in zip(cal.samples, cal2.samples))
    keys = lambda d: {s["x"].tobytes() for s in d.samples}  # noqa: E731
    assert not keys(cal) & keys(ev)
    assert keys(data.split(seed=1)[0]) != keys(cal)


def test_bad_data_gets_one_line_each(tmp_path, digits):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "empty" in _bad(empty)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    np.save(mixed / "a.npy", np.zeros((1, 1, 8, 8), np.float32))
    np.save(mixed / "b.npy", np.zeros((1, 1, 9, 9), np.float32))
    assert "b.npy" in _bad(mixed) and "axis 2 must be 8" in _bad(mixed)
    names = tmp_path / "names"
    names.mkdir()
    np.savez(names / "s.npz", pixels=np.zeros((1, 1, 8, 8), np.float32))
    assert "'pixels' is not an input" in _bad(names)
    ids = tmp_path / "ids"
    ids.mkdir()
    np.savez(ids / "s.npz", input_ids=np.zeros((1, 24), np.float32), attention_mask=np.ones((1, 24), np.int64))
    assert "integer" in _bad(ids, TEXT)
    broken = tmp_path / "broken"
    (broken / "cat").mkdir(parents=True)
    (broken / "dog").mkdir()
    (broken / "cat" / "a.png").write_bytes(b"not a png at all")
    (broken / "dog" / "b.png").write_bytes(b"\x89PNG\r\n")
    assert "cannot be read as an image" in _bad(broken)
    one = tmp_path / "one"
    (one / "cat").mkdir(parents=True)
    import shutil

    shutil.copy(next((digits["images"] / "3").iterdir()), one / "cat" / "a.png")
    assert "only one class folder" in _bad(one)
    assert "not a Hugging Face tokenizer folder" in _bad(SENTENCES, TEXT, tokenizer=tmp_path)
    assert "--tokenizer" in _bad(SENTENCES, TEXT)
    assert "no such file" in _bad(tmp_path / "nowhere")
    assert "images feed one input" in _bad(digits["images"], TEXT)
    assert "NCHW" in _bad(digits["images"], TEXT[:1])


def test_a_tokenizer_whose_regex_panics_is_one_line_naming_its_file(tmp_path):
    """``(x+x+)+y`` backtracks without end on a long run of x: Oniguruma gives up and the tokenizers
    library panics (PanicException, a BaseException) — one line naming the tokenizer.json instead."""
    tokenizer = json.loads((minilm_folder() / "tokenizer.json").read_text(encoding="utf-8"))
    split = {"type": "Split", "pattern": {"Regex": "(x+x+)+y"}, "behavior": "Isolated", "invert": False}
    tokenizer["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [split, tokenizer["pre_tokenizer"]]}
    folder = tmp_path / "hostile-tokenizer"
    folder.mkdir()
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer), encoding="utf-8")
    sentences = tmp_path / "s.txt"
    sentences.write_text("a fine sentence\n" + "x" * 3000 + "\n", encoding="utf-8")
    message = _bad(sentences, TEXT, tokenizer=folder)
    assert message.startswith(f"--tokenizer {folder / 'tokenizer.json'}: the tokenizer failed on the sentences")
    assert "retry-limit-in-match" in message and "fix or replace" in message
    # the control: the same sentences with the real tokenizer
    assert len(load_data(DataSource(sentences, tokenizer=minilm_folder()), TEXT)) == 2


def test_survey_counts_samples_without_loading_them_and_refuses_what_the_loader_would(tmp_path, digits):
    from app.accuracy.data_survey import survey

    assert survey(digits["images"], IMAGE).describe() == "300 images in 10 classes"
    assert survey(DataSource(digits["images"], limit=100), IMAGE).describe() == \
        "300 images in 10 classes (the first 100 are used)"
    npz = digits["arrays"] / "digits.npz"
    assert survey(npz, IMAGE).describe() == "300 samples" == f"{len(load_data(npz, IMAGE))} samples"
    notes = tmp_path / "notes.txt"
    notes.write_text("one\n\ntwo\n")
    with pytest.raises(BadInput, match=r"notes.txt holds sentences, but this model takes x: float32"):
        survey(notes, IMAGE)
    with pytest.raises(BadInput, match="choose a tokenizer folder"):
        survey(notes, TEXT)
    assert survey(DataSource(notes, tokenizer=tmp_path), TEXT).describe() == "2 sentences"
    with pytest.raises(BadInput, match="no array named 'image'"):
        survey(npz, RGB)
