"""Failures that must still give a result: ``--json`` on every exit, loader helpers on every source
format, the other ONNX exporter when one exporter's artifact fails verification, and a word when
the source's outputs cannot tell artifacts apart."""

from __future__ import annotations

import json

import torch

from tests import models

EMB_INPUTS = ["--input", "ids:1x12:int64", "--input", "mask:1x12:int64"]


def _failure(r, code: int) -> dict:
    assert r.code == code, r.err
    data = json.loads(r.out)  # exactly one JSON object on stdout
    assert data["status"] == "failed" and data["exit_code"] == code
    assert data["message"] and data["message"] in r.err
    return data


def test_json_object_on_bad_input_and_usage_errors(cli, tmp_path):
    data = _failure(cli("convert", tmp_path / "missing.pt", "--to", "onnx", "--json"), 2)
    assert data["stage"] == "load model" and "missing.pt" in data["message"]
    usage = _failure(cli("convert", tmp_path / "m.pt", "--to", "nowhere", "--json"), 2)
    assert usage["stage"] == "parse arguments" and "nowhere" in usage["message"]


def test_json_object_on_failed_verification(cli, workdir):
    # data-dependent control flow: the traced artifact computes the other branch on negated inputs
    r = cli("convert", workdir["branchy_state"], "--arch", "tests.models:BranchyNet", "--input", "x:1x16",
            "--to", "torchscript-trace", "--out", workdir["out"], "--json")
    data = _failure(r, 1)
    assert data["stage"] == "verify" and "verification failed" in data["message"]
    assert not workdir["out"].exists() or not list(workdir["out"].iterdir())


def test_traced_and_exported_embedding_models_convert_with_input_flags(cli, tmp_path):
    model = models.EmbeddingBag().eval()
    ids, mask = torch.randint(0, 50, (1, 12)), torch.ones(1, 12, dtype=torch.long)
    traced, exported = tmp_path / "emb.traced.pt", tmp_path / "emb.pt2"
    torch.jit.trace(model, (ids, mask)).save(str(traced))
    torch.export.save(torch.export.export(model, (ids, mask)), str(exported))
    for source in (traced, exported):
        r = cli("convert", source, *EMB_INPUTS, "--to", "onnx", "--out", tmp_path / "out", "--json")
        assert r.code == 0, r.err
        manifest = json.loads(open(json.loads(r.out)["manifest"]).read())
        assert json.loads(r.out)["verification"]["passed"]
        assert manifest["status"] == "ok"


def test_layer_sizes_read_from_weights_on_every_format(tmp_path):
    from app.model import layer_facts as layers
    from app.loaders.front_door import load_model
    from app.loaders.front_door import int_range_of

    model = models.EmbeddingBag(vocab=37).eval()
    ids, mask = torch.randint(0, 37, (1, 12)), torch.ones(1, 12, dtype=torch.long)
    torch.jit.trace(model, (ids, mask)).save(str(tmp_path / "t.pt"))
    torch.export.save(torch.export.export(model, (ids, mask)), str(tmp_path / "e.pt2"))
    torch.onnx.export(model, (ids, mask), str(tmp_path / "o.onnx"), input_names=["ids", "mask"], dynamo=False)
    for name in ("t.pt", "e.pt2", "o.onnx"):
        assert int_range_of(load_model(tmp_path / name)) == 37, name
    traced_cnn = torch.jit.trace(models.make("cnn"), torch.randn(1, 3, 32, 32))
    conv = next(m for _, m in layers.named_layers(traced_cnn) if layers.kind_of(m) == "Conv2d")
    assert not hasattr(conv, "in_channels") and layers.in_channels(conv) == 3


def test_failed_exporter_falls_back_to_the_other_and_manifest_says_so(cli, tmp_path):
    state = tmp_path / "scaled.pt"
    torch.save(models.SizeScaled().state_dict(), state)
    r = cli("convert", state, "--arch", "tests.models:SizeScaled", "--input", "x:1x4x8", "--dynamic", "x:1:seq",
            "--exporter", "torchscript", "--to", "onnx", "--out", tmp_path / "out", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["verification"]["passed"]
    assert any("kept the dynamo exporter's" in w for w in data["warnings"])
    recorded = json.loads(open(data["manifest"]).read())["recorded"]
    assert recorded["exporter"] == "dynamo"
    assert recorded["exporter_fallback"]["tried"] == ["torchscript", "dynamo"]
    assert recorded["exporter_fallback"]["kept"] == "dynamo"
    assert "relative L2" in recorded["exporter_fallback"]["first_failure"]


def test_constant_source_outputs_are_reported(cli, tmp_path):
    state = tmp_path / "silent.pt"
    torch.save(models.Silent().state_dict(), state)
    r = cli("convert", state, "--arch", "tests.models:Silent", "--input", "x:1x8", "--to", "onnx",
            "--out", tmp_path / "out", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert any("verification cannot tell artifacts apart" in w and "near zero" in w for w in data["warnings"])
    assert "cannot tell" in data["verification"]["blind"]


def test_vanishing_source_outputs_are_named_not_blamed_on_the_trace(cli, tmp_path):
    """A source whose logits are ~1e-41 (float32 denormals): fp16 turns them into 0 and verification fails,
    but the trace is not to blame — the failure says the outputs vanish and what to do, not "forward()
    may have data-dependent control flow"; an fp32 artifact that passes carries the same warning."""
    state = tmp_path / "vanishing.pt"
    torch.manual_seed(0)
    torch.save(models.Vanishing().state_dict(), state)
    flags = ["--arch", "tests.models:Vanishing", "--input", "x:1x16", "--out", tmp_path / "out", "--json"]
    r = cli("convert", state, *flags, "--to", "torchscript-trace", "--precision", "fp16")
    assert r.code != 0
    data = json.loads(r.out)
    assert "float32 denormals" in data["message"] and "use trained weights or real data" in data["message"]
    assert "data-dependent control flow" not in data["message"]
    r = cli("convert", state, *flags, "--to", "onnx")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["verification"]["passed"] and "float32 denormals" in data["verification"]["blind"]
    assert any("~4e-41" in w or "e-41" in w for w in data["warnings"])
