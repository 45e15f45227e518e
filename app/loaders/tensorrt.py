"""Serialized TensorRT engines (``.engine``/``.plan``/``.trt``) → :class:`~app.model.LoadedModel`,
checked against the ``.tensorrt.json`` written beside them before TensorRT deserialises them."""

from __future__ import annotations

import json
from pathlib import Path

from app.errors import ModelLoadError
from app.model import LoadedModel
from app.runtimes import tensorrt as trt_runtime
from app.runtimes import tensorrt_build
from app.specs import TensorSpec


def _current_compute_capability() -> str | None:
    try:
        import torch

        major, minor = torch.cuda.get_device_capability()
        return f"{major}.{minor}"
    except Exception:  # noqa: BLE001
        return None


def _check_manifest(path: Path, trt) -> dict | None:
    """Refuse an engine that does not match its ``.tensorrt.json`` or this machine (before deserialising)."""
    manifest_path = path.with_name(path.name + tensorrt_build.MANIFEST_SUFFIX)
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{manifest_path.name} beside the engine is unreadable ({e}); rebuild the engine") from None
    if not isinstance(manifest, dict):
        raise ModelLoadError(f"{manifest_path.name} beside the engine is malformed; rebuild the engine")
    want = manifest.get("sha256")
    if want and tensorrt_build.sha256_file(path) != want:
        raise ModelLoadError(f"{path.name} does not match {manifest_path.name} (its SHA-256 differs: the engine was "
                             "modified, truncated or replaced); rebuild it")
    built_with, here = manifest.get("tensorrt"), str(trt.__version__)
    if built_with and built_with != here:
        raise ModelLoadError(f"{path.name} was built with TensorRT {built_with}, this machine has TensorRT {here}; "
                             "engines only run on the TensorRT version that built them — rebuild it here")
    cc, cc_here = manifest.get("compute_capability"), _current_compute_capability()
    if cc and cc_here and cc != cc_here:
        raise ModelLoadError(f"{path.name} was built for compute capability {cc} ({manifest.get('gpu')}), this GPU "
                             f"is {cc_here}; engines only run on the GPU model that built them — rebuild it here")
    return manifest


def load_engine(path) -> LoadedModel:
    """Deserialise a TensorRT engine and run it with torch CUDA tensors (format ``tensorrt``)."""
    path = Path(path)
    ok, why = trt_runtime.available()
    if not ok:
        raise ModelLoadError(f"{path.name} is a TensorRT engine and cannot be loaded here: {why}; engines only run "
                             "on the GPU and TensorRT version they were built for")
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such file")
    import tensorrt as trt

    manifest = _check_manifest(path, trt)
    logger = tensorrt_build._make_logger(trt, echo=False)
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(path.read_bytes())
    if engine is None:
        detail = logger.errors[-1].strip().splitlines()[0][:300] if logger.errors else "not a valid engine"
        raise ModelLoadError(f"TensorRT {trt.__version__} cannot load {path.name} ({detail}); engines only run on the "
                             "GPU and TensorRT version they were built for — rebuild it here")
    labels = {d["name"]: d.get("shape") or [] for d in (manifest or {}).get("inputs", []) if isinstance(d, dict)}
    inputs, outputs, io_dtypes = [], [], {}
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        dims = list(engine.get_tensor_shape(name))
        dtype = tensorrt_build.dtype_name(engine.get_tensor_dtype(name))
        io_dtypes[name] = dtype
        known = labels.get(name, [])
        shape = tuple((known[a] if a < len(known) and isinstance(known[a], str) else tensorrt_build.dynamic_label(name, a))
                      if d < 0 else int(d) for a, d in enumerate(dims))
        if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
            example: tuple[int, ...] = ()
            if any(d < 0 for d in dims):
                try:
                    example = tuple(int(x) for x in engine.get_tensor_profile_shape(name, 0)[1])
                except Exception:  # noqa: BLE001
                    example = ()
            inputs.append(TensorSpec(name, dtype, shape, example))
        else:
            outputs.append(TensorSpec(name, dtype, shape))
    details = {"tensorrt": str(trt.__version__), "engine_manifest": manifest is not None,
               **{k: (manifest or {}).get(k) for k in ("gpu", "compute_capability", "cuda", "strongly_typed")}}
    model = LoadedModel(path, "tensorrt", inputs, outputs, 0, path.stat().st_size, module=engine, details=details)
    model._runner = trt_runtime.engine_runner(runtime, engine, inputs, outputs, io_dtypes)
    return model
