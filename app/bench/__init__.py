"""Benchmarking: one runner per runtime, a timing harness, reports, and the optimizer search.

Qt-free like the rest of :mod:`app`; the window runs :func:`app.bench.run.bench_job` in a child
process, the CLI registers ``bench`` and ``optimize`` through :mod:`app.cli.bench_commands`.

- :mod:`app.bench.stats`    LatencyStats: percentiles of a list of timings
- :mod:`app.bench.runners`  Runner and one subclass per runtime (PyTorch, TorchScript, torch.export,
  ONNX Runtime per execution provider, OpenVINO, TensorRT)
- :mod:`app.bench.harness`  the timing loop, the batch sweep, accuracy beside speed, peak memory
- :mod:`app.bench.output`   table, JSON, CSV and PNG
- :mod:`app.bench.optimize` every target × precision (× calibration method), the fastest within budget
- :mod:`app.bench.profile`  one artifact per node from its runtime's own profiler (:mod:`app.runtimes.profilers`),
  the node sum beside the whole model's median
"""
