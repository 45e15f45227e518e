"""The artifact-kind registry (app.model.kinds): one declaration per kind, read by the front door, the
benchmark, Triton, pack, the graph view, the window's drop check and the "supported" sentence. A new
kind is its runtime module (one ArtifactKind), a line in the front door's import of the runtimes, and
its converter (kind=…, advice); nothing else names it — the test below declares one and finds it
everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.errors import BadInput
from app.loaders import kinds as declared
from app.model import kinds
from app.model.kinds import ArtifactKind
from app.model.loaded import LoadedModel
from app.model.specs import TensorSpec
from app.runtimes.base import Runner

MAGIC = b"FAKEKIND"
SPEC = TensorSpec("x", "float32", (1, 4), (1, 4))


class DoublingRunner(Runner):
    """The fake runtime: y = 2x."""

    runtime = "fakert"

    def __init__(self, path: Path, name: str, precision: str = "fp32"):
        super().__init__(name, precision=precision)
        self.path = path

    def _load_impl(self) -> None:
        self.inputs = [SPEC]

    def _call_impl(self, prepared):
        return [prepared["x"] * 2]


def _load(file, source, guess=True) -> LoadedModel:
    model = LoadedModel(file.path, "fake", [SPEC], [TensorSpec("y", "float32", (1, 4), (1, 4))], 0, file.size)
    model.make_runner = lambda: DoublingRunner(file.path, file.path.name)
    return model


FAKE = ArtifactKind("fake", "Fake", (".fake",), _load,
                    lambda path, *, providers, threads, precision="fp32", device="cpu": [DoublingRunner(path, path.name, precision)],
                    runtime="FakeRT", sniff=lambda path, head: head.startswith(MAGIC),
                    triton=("fake_platform", "model.fake"), pack_runtime="fakert")


@pytest.fixture
def fake_kind():
    kinds.register(FAKE)
    yield FAKE
    kinds.unregister(FAKE.name)


@pytest.fixture
def fake_file(tmp_path) -> Path:
    path = tmp_path / "tiny.fake"
    path.write_bytes(MAGIC + bytes(64))
    return path


def test_every_kind_the_studio_reads_is_declared_once():
    names = [k.name for k in declared.all_kinds()]
    assert len(names) == len(set(names))
    assert {"onnx", "openvino", "tensorrt", "executorch", "torchscript", "torch-export", "torch-save",
            "safetensors"} <= set(names)
    assert [k.name for k in declared.all_kinds() if k.fallback] == ["onnx"]
    for suffix in (".onnx", ".pt2", ".pt", ".xml", ".pte", ".engine", ".safetensors"):
        assert suffix in declared.model_suffixes()
    suffixes = declared.model_suffixes()
    assert suffixes.index(".pt2") < suffixes.index(".pt")  # the longest first: a stem loses ".pt2", not ".pt"
    assert ".pte (ExecuTorch)" in declared.supported() and ".xml + .bin (OpenVINO IR)" in declared.supported()


def test_an_unknown_kind_is_one_line_never_a_pytorch_runner(monkeypatch, tmp_path):
    """The benchmark used to time a kind it did not know as PyTorch, labelled "pytorch"; now it says so."""
    from app.bench import runners

    path = tmp_path / "model.mystery"
    path.write_bytes(b"whatever")
    monkeypatch.setattr(runners, "sniff_format", lambda p: "mystery")
    with pytest.raises(BadInput) as e:
        runners.runners_for_artifact(path, providers=["CPUExecutionProvider"], threads=1)
    message = str(e.value)
    assert "\n" not in message and "model.mystery" in message and "'mystery'" in message
    assert "onnx" in message  # the kinds that are known


def test_a_kind_without_a_runtime_is_refused_by_the_benchmark(monkeypatch, fake_file):
    from dataclasses import replace

    from app.bench.runners import runners_for_artifact

    kinds.register(replace(FAKE, runners=None))
    try:
        with pytest.raises(BadInput, match="Fake files cannot be timed here"):
            runners_for_artifact(fake_file, providers=["CPUExecutionProvider"], threads=1)
    finally:
        kinds.unregister("fake")


def test_a_new_kind_is_picked_up_everywhere_without_edits(fake_kind, fake_file):
    """One ArtifactKind: the front door sniffs and loads it, the benchmark times it in its runtime, Triton
    knows its platform, pack its runtime, the graph view draws it, the drop check and "supported" list it."""
    from app.bench.runners import runners_for_artifact
    from app.graph.netron_server import check_drawable
    from app.loaders.front_door import load_model, sniff_format
    from app.serving.triton import backends, platform_of

    assert sniff_format(fake_file) == "fake"
    model = load_model(fake_file)
    assert model.format == "fake"
    np.testing.assert_array_equal(model.run({"x": np.ones((1, 4), np.float32)})[0], np.full((1, 4), 2, np.float32))
    (runner,) = runners_for_artifact(fake_file, providers=["CPUExecutionProvider"], threads=1)
    assert isinstance(runner, DoublingRunner) and runner.name == "tiny.fake"
    assert platform_of("fake") == ("fake_platform", "model.fake") and "fake_platform" not in backends()
    assert check_drawable(fake_file).drawable
    assert ".fake" in declared.model_suffixes() and ".fake (Fake)" in declared.supported()
    assert ".fake (Fake)" in kinds.supported()


def test_pack_takes_the_runtime_its_kind_declares(fake_kind, fake_file):
    from app.serving.pack import check_packable

    manifest = {"artifact": fake_file.name, "target": "fake", "precision": "fp32", "status": "verified"}
    (fake_file.parent / (fake_file.name + ".manifest.json")).write_text(json.dumps(manifest))
    assert check_packable(fake_file) == (manifest, "fakert")
    kinds.unregister("fake")
    with pytest.raises(BadInput, match=r"pack supports ONNX \(\.onnx\) and OpenVINO IR \(\.xml\) artifacts, not 'fake'"):
        check_packable(fake_file)


def test_a_new_target_brings_its_own_advice_and_its_kind_serves_it(fake_kind):
    """The converter of the new kind: Converter.advice speaks for it in ``targets`` and the window's grid,
    its kind says whether Triton serves it and whether it needs the GPU's pool."""
    from app.machine.hardware import detect
    from app.serving.triton import servable_targets
    from app.targets.advice import advise
    from app.targets.probe import needs_gpu
    from converters import base

    class FakeConverter(base.Converter):
        name = "fake-target"
        label = "Fake"
        extension = ".fake"
        kind = "fake"
        precisions = ("fp32",)

        @classmethod
        def advice(cls, precision, hardware):
            return base.FASTER, "the fake runtime doubles everything, fast"

    try:
        assert advise("fake-target", "fp32", detect(import_torch=False)).text() == \
            "faster: the fake runtime doubles everything, fast"
        assert "fake-target" in servable_targets() and not needs_gpu("fake-target")
    finally:
        base._REGISTRY.pop("fake-target", None)
    assert "fake-target" not in servable_targets()


def test_declaring_a_kind_twice_differently_is_refused(fake_kind):
    from dataclasses import replace

    kinds.register(FAKE)  # the same declaration again: a module imported twice
    with pytest.raises(ValueError, match="declared twice"):
        kinds.register(replace(FAKE, label="Other"))
    with pytest.raises(ValueError, match="only one kind"):
        kinds.register(replace(FAKE, name="fake2", fallback=True))
