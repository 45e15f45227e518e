"""A small, real latency measurement for the chart tests (used only when app.bench is absent).

Times ONNX Runtime sessions on random inputs and returns rows in the benchmark engine's format.
"""

from __future__ import annotations

import time

import numpy as np

ORT_LEVELS = {"no graph optimisation": "ORT_DISABLE_ALL", "all graph optimisations": "ORT_ENABLE_ALL"}


def time_session(session, feeds: dict, runs: int = 30, warmup: int = 3) -> np.ndarray:
    for _ in range(warmup):
        session.run(None, feeds)
    out = np.empty(runs)
    for i in range(runs):
        t = time.perf_counter()
        session.run(None, feeds)
        out[i] = (time.perf_counter() - t) * 1000.0
    return out


def ort_rows(model_path, input_name: str, sample_shape: tuple[int, ...], batches=(1, 4), runs: int = 30) -> list[dict]:
    """Rows for two sessions of one ONNX file (optimised and not), at each batch size."""
    import onnxruntime as ort

    sessions = {}
    for label, level in ORT_LEVELS.items():
        opts = ort.SessionOptions()
        opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        opts.intra_op_num_threads = 1
        sessions[label] = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
    rows, baseline = [], {}
    rng = np.random.default_rng(0)
    for batch in batches:
        feeds = {input_name: rng.standard_normal((batch, *sample_shape)).astype(np.float32)}
        reference = None
        for label, session in sessions.items():
            ms = time_session(session, feeds, runs=runs)
            p50 = float(np.percentile(ms, 50))
            baseline.setdefault(batch, p50)
            out = session.run(None, feeds)[0].astype(np.float64).ravel()
            reference = out if reference is None else reference
            cosine = float(out @ reference / (np.linalg.norm(out) * np.linalg.norm(reference)))
            rows.append({"name": f"{model_path.name} ({label})", "runtime": "onnxruntime",
                         "provider": "CPUExecutionProvider", "precision": "fp32", "batch": batch,
                         "p50_ms": p50, "p90_ms": float(np.percentile(ms, 90)), "p99_ms": float(np.percentile(ms, 99)),
                         "mean_ms": float(ms.mean()), "std_ms": float(ms.std()),
                         "throughput": batch * 1000.0 / float(ms.mean()),
                         "speedup_vs_baseline": baseline[batch] / p50, "cosine": cosine,
                         "rel_l2": float(np.linalg.norm(out - reference) / np.linalg.norm(reference))})
    return rows
