"""Small models of the shapes users bring; tests build and save them (importable via --arch
tests.models:NAME, and by full-module pickles)."""

from __future__ import annotations

import torch
from torch import nn


class SmallCNN(nn.Module):
    """Conv + BatchNorm + ReLU blocks, global pooling, a classifier head."""

    def __init__(self, num_classes: int = 10, width: int = 8):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width * 2, 3, stride=2, padding=1), nn.BatchNorm2d(width * 2), nn.ReLU(),
        )
        self.head = nn.Linear(width * 2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


class MLP(nn.Module):
    def __init__(self, in_features: int = 32, hidden: int = 64, out_features: int = 5):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.GELU(), nn.Linear(hidden, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TinyEncoder(nn.Module):
    """Two int64 inputs (token ids, attention mask), a dynamic sequence axis, a transformer layer."""

    def __init__(self, vocab: int = 100, dim: int = 32, heads: int = 4, layers: int = 1, max_len: int = 64):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.randn(1, max_len, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=dim * 2, batch_first=True, dropout=0.0)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.pool = nn.Linear(dim, dim)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        h = self.embed(input_ids) + self.pos[:, : input_ids.shape[1]]
        h = self.encoder(h, src_key_padding_mask=attention_mask == 0)
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        return torch.tanh(self.pool((h * m).sum(1) / m.sum(1).clamp(min=1.0)))


class BranchyNet(nn.Module):
    """forward() branches on the data: tracing records one branch only."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(16, 4)
        self.b = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return self.a(x)
        return self.b(x) * 2.0


class ResidualBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(torch.relu(self.conv1(x)))


class ResidualCNN(nn.Module):
    """A stem convolution, residual blocks (conv, ReLU, conv, and the skip Add), pooling, a classifier:
    residual Adds between convolutions, as in ResNets and EfficientNets (digits-sized input, 1x1x8x8)."""

    def __init__(self, width: int = 8, blocks: int = 3, num_classes: int = 10):
        super().__init__()
        self.stem = nn.Conv2d(1, width, 3, padding=1)
        self.blocks = nn.Sequential(*[ResidualBlock(width) for _ in range(blocks)])
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(torch.relu(self.stem(x))).mean(dim=(2, 3)))


def make(name: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = {"cnn": SmallCNN, "mlp": MLP, "encoder": TinyEncoder, "branchy": BranchyNet}[name]()
    # give BatchNorm non-trivial statistics so folding it is actually tested
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


# the ResNet-18 the speed benchmarks use (one definition): the "large CNN" of the resilience tests
from benchmarks.bench_models import BasicBlock, ResNet18  # noqa: E402,F401


class EmbeddingBag(nn.Module):
    """Token ids and a mask into pooled logits: an Embedding a traced module keeps only as weights."""

    def __init__(self, vocab: int = 50, dim: int = 8, classes: int = 3):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(ids) * mask.unsqueeze(-1).float()).mean(1)


class SizeScaled(nn.Module):
    """Divides by the sequence length as a Python float: the TorchScript exporter freezes the length
    of its example, the dynamo exporter keeps it symbolic."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) / float(x.shape[1])


class Silent(nn.Module):
    """Returns zeros whatever the input (a broken head): verification cannot tell artifacts apart."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) * 0.0


class Vanishing(nn.Module):
    """Logits ~1e-41 (float32 denormals), as a vision transformer with random weights gives: every artifact
    rounds or flushes them, and no comparison with them says anything about the artifact."""

    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(16, 16)
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.hidden(x))) * 1e-40


class DigitsCNN(nn.Module):
    """A small convolutional classifier for scikit-learn's 8×8 digits (1 channel, 10 classes);
    ``size`` is the input side after resizing (the benchmark uses 32 to give int8 real work)."""

    def __init__(self, width: int = 8, size: int = 8):
        super().__init__()
        # larger inputs pool earlier, so the last layer still sees a whole digit
        pool = lambda at: [nn.MaxPool2d(2)] if size >= at else []  # noqa: E731
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), *pool(32),
            nn.Conv2d(width, width * 2, 3, padding=1), nn.BatchNorm2d(width * 2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width * 2, width * 4, 3, padding=1), nn.BatchNorm2d(width * 4), nn.ReLU(), *pool(16),
        )
        self.head = nn.Linear(width * 4 * 4 * 4, 10)   # every size ends at 4×4: the head sees where strokes are

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # adaptive pooling is the identity at the sizes trained on, and lets any input size run
        # (the window probes a state dict at a guessed 224×224 before the user sets 8×8)
        return self.head(nn.functional.adaptive_avg_pool2d(self.features(x), 4).flatten(1))


class SamePadConv2d(nn.Conv2d):
    """A "same"-padding convolution, as EfficientNet's and timm's stems have: a ``Conv2d`` subclass."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(nn.functional.pad(x, [1, 1, 1, 1]))


class PaddedStemNet(nn.Module):
    """An EfficientNet-shaped classifier whose head is declared before its padded stem: module order
    names the Linear first, while forward() feeds the input to the stem."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.head = nn.Linear(16, num_classes)
        self.stem = SamePadConv2d(3, 16, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        return self.head(nn.functional.adaptive_avg_pool2d(x, 1).flatten(1))


class FlatInputNet(nn.Module):
    """Takes images flattened to 768 values and unflattens them before its first layer: no layer tells
    the input's shape, so the guess fails and the user must type 1x768."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3)
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x.unflatten(1, (3, 16, 16))))
        return self.head(nn.functional.adaptive_avg_pool2d(x, 1).flatten(1))


class RunningSumNet(nn.Module):
    """A classifier with a running sum over the width (``torch.cumsum``): an operator XNNPACK does not
    take, which ExecuTorch runs in its portable kernels."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cumsum(torch.relu(self.conv(x)), dim=3).flatten(1))


class ErfinvNet(nn.Module):
    """``torch.erfinv``: outside the core ATen operator set, so no ExecuTorch kernel (XNNPACK or portable) has it."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.erfinv(torch.tanh(x) * 0.5))


class WideConvReLU6(nn.Module):
    """Two convolutions each clamped by ReLU6, two channels of each biased to ±40 (always clamped to 0 or 6), so the
    pre-clamp outputs span about ±40 where the clamp keeps 0..6 and the other channels use about 0..2: an int8
    range over the pre-clamp output has steps too coarse for them."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b = torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 8, 3, padding=1)
        with torch.no_grad():
            for conv in (self.a, self.b):
                conv.bias[-2:] = torch.tensor([-40.0, 40.0])
        self.act = torch.nn.ReLU6()

    def forward(self, x):
        return self.act(self.b(self.act(self.a(x))))

