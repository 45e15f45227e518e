"""Hugging Face ``transformers`` architectures built from tiny configs, as ``--arch`` factories
(a state dict + ``--arch tests.hf_architectures:NAME``): each returns a module whose forward takes
plain tensors and returns the model's main output tensor."""

from __future__ import annotations

import torch
from torch import nn


class _Main(nn.Module):
    """Calls the wrapped model with keyword tensors and returns its first output."""

    def __init__(self, model: nn.Module, names: tuple[str, ...]):
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        out = self.model(**dict(zip(self.names, tensors)))
        return out.logits if hasattr(out, "logits") else out[0]


def _text(model: nn.Module) -> nn.Module:
    class Text(_Main):
        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
            return super().forward(input_ids, attention_mask)

    return Text(model, ("input_ids", "attention_mask")).eval()


def _vision(model: nn.Module) -> nn.Module:
    class Vision(_Main):
        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
            return super().forward(pixel_values)

    return Vision(model, ("pixel_values",)).eval()


def bert() -> nn.Module:
    from transformers import BertConfig, BertModel

    return _text(BertModel(BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                      intermediate_size=64, max_position_embeddings=64)))


def distilbert() -> nn.Module:
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    return _text(DistilBertForSequenceClassification(DistilBertConfig(
        vocab_size=120, dim=32, n_layers=2, n_heads=4, hidden_dim=64, max_position_embeddings=64, num_labels=3)))


def vit() -> nn.Module:
    from transformers import ViTConfig, ViTForImageClassification

    return _vision(ViTForImageClassification(ViTConfig(
        image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, num_labels=5)))


def mobilevit() -> nn.Module:
    from transformers import MobileViTConfig, MobileViTForImageClassification

    return _vision(MobileViTForImageClassification(MobileViTConfig(
        image_size=64, hidden_sizes=[16, 24, 32], neck_hidden_sizes=[8, 8, 16, 16, 24, 24, 32], num_labels=5)))


def resnet() -> nn.Module:
    from transformers import ResNetConfig, ResNetForImageClassification

    return _vision(ResNetForImageClassification(ResNetConfig(
        embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_labels=5)))


INPUTS = {
    "bert": ["--input", "input_ids:1x16:int64", "--input", "attention_mask:1x16:int64"],
    "distilbert": ["--input", "input_ids:1x16:int64", "--input", "attention_mask:1x16:int64"],
    "vit": ["--input", "pixel_values:1x3x32x32"],
    "mobilevit": ["--input", "pixel_values:1x3x64x64"],
    "resnet": ["--input", "pixel_values:1x3x32x32"],
}
