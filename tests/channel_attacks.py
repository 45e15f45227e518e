"""Hostile model files whose code, once it runs inside a job, attacks the channels to the outside
(used by tests/test_fence_channel.py and benchmarks/attack_channels.py)."""

from __future__ import annotations

from pathlib import Path

ARCH_HEAD = '''
import os, sys, socket, struct, pickle, glob, time
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)

    def forward(self, x):
        return self.lin(x)


def fds():
    for name in os.listdir("/proc/self/fd"):
        try:
            yield int(name), os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass

'''


def hostile_model(folder: Path, attack: str) -> list[str]:
    """A state dict and an architecture file whose ``build()`` runs ``attack`` first: the arguments
    of ``main.py inspect`` for it."""
    import torch

    exec(compile(ARCH_HEAD, "arch", "exec"), namespace := {})
    torch.save(namespace["Net"]().state_dict(), folder / "model.pth")
    body = "\n".join("    " + line for line in attack.strip().splitlines())
    (folder / "attack.py").write_text(ARCH_HEAD + "\ndef build():\n" + body + "\n    return Net()\n")
    return [str(folder / "model.pth"), "--arch", f"{folder / 'attack.py'}:build", "--input", "x:1x4"]
