"""A run folder as a user has one after converting and benchmarking: artifacts, their manifests and a
saved ``bench --json`` result (for the report's tests)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import CNN_ARGS

FAST = ["--warmup", "1", "--warmup-seconds", "0", "--runs", "5", "--min-seconds", "0"]


def make_run(root: Path, cnn_state: Path) -> dict:
    """Convert the CNN to ONNX fp32 and int8 (dynamic: it carries a warning) into ``root/run``, benchmark
    both at batch 1 and 2, and save the result as ``root/run/bench.json``."""
    from main import main

    run = root / "run"
    for precision in ("fp32", "int8"):
        code = main(["convert", str(cnn_state), "--to", "onnx", "--precision", precision, *CNN_ARGS,
                     "--out", str(run)])
        assert code == 0
    artifacts = sorted(run.glob("*.onnx"))
    bench = run / "bench.json"
    from app.bench.benchmark import benchmark
    from app.bench.harness import BenchConfig
    from app.request import ModelSource
    from app.model.specs import parse_dynamic, parse_input

    source = ModelSource(cnn_state, inputs=(parse_input("x:1x3x32x32"),), dynamic=(parse_dynamic("x:0:batch"),),
                         arch="tests.models:SmallCNN")
    result = benchmark(source, artifacts, BenchConfig(batches=(1, 2), warmup=1, warmup_seconds=0, runs=5,
                                                       min_seconds=0, threads=1))
    bench.write_text(json.dumps(result.to_json(), default=str))
    manifests = sorted(run.glob("*.manifest.json"))
    return {"run": run, "artifacts": artifacts, "manifests": manifests, "bench": bench,
            "manifest_data": [json.loads(m.read_text()) for m in manifests]}
