"""The hand-off files an edge artifact leaves beside itself for the device (ExecuTorch's ``.pte``, LiteRT's
``.tflite``): sample inputs with the outputs the artifact and its source gave here (``.samples.npz``), and a
README that each target writes in its own words."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from app.model.loaded import LoadedModel
from converters.base import ConversionContext

HANDOFF_SAMPLES = 4
SAMPLES_SUFFIX = ".samples.npz"
README_SUFFIX = ".README.md"


def handoff_files(name: str) -> tuple[str, str]:
    """The two files :func:`write_handoff` leaves beside the artifact ``name``."""
    return name + SAMPLES_SUFFIX, name + README_SUFFIX


def write_handoff(ctx: ConversionContext, artifact: LoadedModel,
                  readme: Callable[[str, ConversionContext, int], str]) -> list[Path]:
    """Beside ``ctx.artifact_path``: up to ``HANDOFF_SAMPLES`` calibration samples (else two seeded ones) as
    ``sampleN/input/NAME``, ``sampleN/expected/NAME`` (the artifact here) and ``sampleN/source/NAME`` (the
    source), and ``readme(name, ctx, samples)`` as the README. The artifact is released afterwards."""
    from app.model.inputs import make_feeds

    path = ctx.artifact_path
    feeds = (ctx.calibration.samples[:HANDOFF_SAMPLES] if ctx.calibration is not None else
             [make_feeds(ctx.inputs, seed=i, int_high=ctx.model.details.get("int_high", 2)) for i in range(2)])
    arrays: dict[str, np.ndarray] = {}
    for i, feed in enumerate(feeds):
        for spec in ctx.inputs:
            arrays[f"sample{i}/input/{spec.name}"] = np.asarray(feed[spec.name])
        for spec, out in zip(artifact.outputs, artifact.run(feed)):
            arrays[f"sample{i}/expected/{spec.name}"] = out
        for spec, out in zip(ctx.model.outputs, ctx.model.run(feed)):
            arrays[f"sample{i}/source/{spec.name}"] = out
    artifact.release()
    samples_name, readme_name = handoff_files(path.name)
    samples = path.with_name(samples_name)
    with open(samples, "wb") as f:
        np.savez(f, **arrays)
    text = path.with_name(readme_name)
    text.write_text(readme(path.name, ctx, len(feeds)), encoding="utf-8")
    return [samples, text]
