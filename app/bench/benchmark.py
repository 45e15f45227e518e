"""benchmark(source, artifacts, ...): the source model as the baseline, every artifact beside it.

What ``python main.py bench``, the window's Benchmark button (:mod:`app.bench.run`) and
``optimize`` share: load the source with the same flags as ``convert`` (its signature gives the
inputs), make one runner per artifact × runtime (× ONNX Runtime execution provider), and hand them
to :func:`app.bench.harness.run_benchmark`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from app.accuracy.evaluation import evaluate_on_data
from app.bench.harness import BenchConfig, BenchResult, Progress, run_benchmark
from app.bench.runners import artifact_inputs, artifact_precision, follow_artifact, runners_for_artifact
from app.errors import BadInput
from app.loaders.front_door import prepare_model
from app.loaders.kinds import get_kind
from app.model.loaded import LoadedModel
from app.request import DataSource, ModelSource
from app.runtimes.base import Runner
from app.runtimes.onnxrt import onnxruntime_providers, resolve_provider
from app.runtimes.pytorch import TORCH_RUNTIMES, TorchRunner


def source_runner(model: LoadedModel, load_seconds: float, *, threads: int | None, device: str = "cpu") -> Runner:
    """The baseline: the source module in eager PyTorch (or the source file in the runtime its kind
    declares, :mod:`app.model.kinds`; a kind that runs only on the GPU it was built for is refused)."""
    if model.is_torch:
        runtime = TORCH_RUNTIMES.get(model.format, "pytorch")
        name = "PyTorch eager" if runtime == "pytorch" else f"{model.path.name} (source)"
        runner: Runner = TorchRunner(name, lambda: model, runtime=runtime, device=device, size_bytes=model.size_bytes)
    else:
        kind = get_kind(model.format, model.path)
        if kind.gpu or kind.runners is None:
            raise BadInput(f"{model.path.name} is a {kind.label} file; benchmark the model it was built from, "
                           "and pass it as an artifact")
        runner = kind.runners(model.path, providers=["CPUExecutionProvider"], threads=threads,
                              precision=artifact_precision(model.path), device=device)[0]
        runner.name, runner.size_bytes = f"{model.path.name} (source)", model.size_bytes
    runner.preload_seconds = load_seconds
    return runner


def pick_providers(names: list[str] | None) -> list[str]:
    """ONNX Runtime providers to time: the user's picks (by short or full name), default every local one."""
    if not names:
        return onnxruntime_providers() or ["CPUExecutionProvider"]
    return list(dict.fromkeys(resolve_provider(n) for n in names if n.strip()))


def benchmark(source: ModelSource, artifacts: list[Path], config: BenchConfig, *,
              providers: list[str] | None = None, device: str = "cpu", openvino: bool | None = None,
              data: DataSource | None = None, progress: Progress | None = None,
              should_cancel: Callable[[], bool] | None = None) -> BenchResult:
    """Benchmark ``source`` and each of ``artifacts`` on the same inputs.

    Parameters
    ----------
    source
        The source model and its signature flags, exactly as for ``convert``.
    artifacts
        Files to time beside the source: TorchScript ``.pt``, ``.pt2``, ``.onnx``, TensorRT engines.
    config
        Counts, durations, batch sizes, threads (:class:`~app.bench.harness.BenchConfig`).
    providers
        ONNX Runtime execution providers for ``.onnx`` artifacts (default: every one installed).
    device
        Where the torch runners run: ``cpu`` or ``cuda``.
    openvino
        Also time ``.onnx`` artifacts in OpenVINO (default: where OpenVINO is installed).
    data
        Real samples (``--data``): every artifact is also evaluated against the source on them (its
        agreement and task accuracy beside its speed: ``BenchResult.evaluations``).
    progress, should_cancel
        Progress callback and cancellation check, as in :func:`app.pipeline.convert`.
    """
    progress = progress or (lambda stage, fraction=None: None)
    config = config.with_threads()
    if device not in ("cpu", "cuda"):
        raise BadInput(f"--device {device!r}: choose cpu or cuda")
    # manifests and external-data files sit beside artifacts; a shell glob (out/*) picks them up too
    side = [Path(p) for p in artifacts if Path(p).name.endswith((".manifest.json", ".onnx.data"))
            or (Path(p).suffix == ".bin" and Path(p).with_suffix(".xml").is_file())]  # OpenVINO IR weights
    artifacts = [Path(p) for p in artifacts if Path(p) not in side]
    missing = [str(p) for p in artifacts if not Path(p).is_file()]
    if missing:
        raise BadInput(f"artifact {missing[0]}: no such file")
    progress("load model", None)
    started = time.perf_counter()
    source = prepare_model(source)
    load_seconds = time.perf_counter() - started
    baseline = source_runner(source, load_seconds, threads=config.threads, device=device)
    chosen = pick_providers(providers)
    runners: list[Runner] = []
    for path in artifacts:
        made = runners_for_artifact(Path(path), providers=chosen, threads=config.threads, device=device,
                                    openvino=openvino)
        own = follow_artifact(list(source.inputs), artifact_inputs(Path(path)))
        for runner in made:  # the artifact's own batch axis (dynamic where the source's is fixed, or not)
            runner.feed_specs = own if own != list(source.inputs) else None
        runners += made
    notes = list(dict.fromkeys(source.warnings))
    if side:
        notes.append(f"not artifacts, ignored: {', '.join(p.name for p in side)}")
    result = run_benchmark(baseline, runners, list(source.inputs), config, int_high=source.details.get("int_high", 2),
                           progress=progress, should_cancel=should_cancel, notes=notes)
    return result if data is None else with_evaluations(result, source, data, artifacts, progress)


def with_evaluations(result: BenchResult, source: LoadedModel, data: DataSource, artifacts: list[Path],
                     progress: Progress) -> BenchResult:
    """``result`` with every artifact's agreement (and task accuracy) on the user's samples."""
    from dataclasses import replace

    scores = evaluate_on_data(source, data, [Path(a) for a in artifacts], progress)
    return replace(result, evaluations=tuple((r["artifact"], r["evaluation"]) for r in scores["artifacts"]
                                             if r["evaluation"]),
                   data=f"{scores['data']} ({scores['split']})",
                   notes=result.notes + tuple(f"{Path(r['artifact']).name}: not evaluated on the data: {r['message']}"
                                              for r in scores["artifacts"] if not r["evaluation"]))
