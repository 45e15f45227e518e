"""A matrix of Hugging Face ``transformers`` architectures (text and vision) built from tiny configs,
saved as state dicts and converted with --arch: ONNX fp32 must verify (falling back to the other
exporter when one exporter's graph does not), and the manifest says which exporter made it."""

from __future__ import annotations

import json

import pytest
import torch

from tests import hf_architectures

pytest.importorskip("transformers")


@pytest.mark.parametrize("name", sorted(hf_architectures.INPUTS))
def test_transformers_architecture_converts_to_onnx_and_verifies(cli, tmp_path, name):
    torch.manual_seed(0)
    state = tmp_path / f"{name}.safetensors"
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in getattr(hf_architectures, name)().state_dict().items()}, str(state))
    r = cli("convert", state, "--arch", f"tests.hf_architectures:{name}", *hf_architectures.INPUTS[name],
            "--to", "onnx", "--out", tmp_path / "out", "--json")
    data = json.loads(r.out)
    assert r.code == 0, data.get("message") or r.err
    assert data["verification"]["passed"] and data["verification"]["rel_l2"] <= 1e-4
    recorded = json.loads(open(data["manifest"]).read())["recorded"]
    assert recorded["exporter"] in ("dynamo", "torchscript")
    if "exporter_fallback" in recorded:
        assert recorded["exporter_fallback"]["kept"] == recorded["exporter"]
