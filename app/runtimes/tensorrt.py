"""TensorRT as a runtime: whether it can run here, and running a deserialised engine on torch CUDA
tensors."""

from __future__ import annotations

import functools
import threading

from app.specs import TensorSpec

@functools.lru_cache(maxsize=1)
def available() -> tuple[bool, str]:
    try:
        import tensorrt  # noqa: F401
    except Exception:  # noqa: BLE001 - the PyPI stub raises at import, broken installs raise anything
        return False, "TensorRT is not installed (pip install tensorrt on a machine with an NVIDIA GPU)"
    try:
        import torch

        if not torch.cuda.is_available():
            return False, "no NVIDIA GPU visible (torch.cuda.is_available() is False)"
    except Exception as e:  # noqa: BLE001
        return False, f"no NVIDIA GPU visible (torch cannot query CUDA: {type(e).__name__})"
    return True, ""


TORCH_DTYPES = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16", "int8": "int8",
                "int32": "int32", "int64": "int64", "bool": "bool", "uint8": "uint8"}


def engine_runner(runtime, engine, inputs: list[TensorSpec], outputs: list[TensorSpec], io_dtypes: dict):
    state: dict = {}
    lock = threading.Lock()

    def run(feeds):
        import numpy as np
        import torch

        with lock:
            if "context" not in state:
                state["context"] = engine.create_execution_context()
                if state["context"] is None:
                    raise RuntimeError("TensorRT cannot create an execution context (out of GPU memory?)")
            context = state["context"]
            keep = []
            for spec in inputs:
                dtype = getattr(torch, TORCH_DTYPES.get(io_dtypes[spec.name], "float32"))
                t = torch.from_numpy(np.ascontiguousarray(feeds[spec.name])).to(device="cuda", dtype=dtype).contiguous()
                if not context.set_input_shape(spec.name, tuple(t.shape)):
                    raise RuntimeError(f"input {spec.name}: shape {tuple(t.shape)} is outside the engine's "
                                       "optimization profile")
                context.set_tensor_address(spec.name, t.data_ptr())
                keep.append(t)
            results = []
            for spec in outputs:
                shape = tuple(context.get_tensor_shape(spec.name))
                if any(d < 0 for d in shape):
                    raise RuntimeError(f"output {spec.name} has a data-dependent shape {shape}; "
                                       "this runner needs output shapes known from the input shapes")
                dtype = getattr(torch, TORCH_DTYPES.get(io_dtypes[spec.name], "float32"))
                t = torch.empty(shape, dtype=dtype, device="cuda")
                context.set_tensor_address(spec.name, t.data_ptr())
                results.append(t)
            stream = torch.cuda.current_stream()
            if not context.execute_async_v3(stream.cuda_stream):
                raise RuntimeError("TensorRT failed to run the engine (execute_async_v3 returned False)")
            stream.synchronize()
            del keep
            return [(t.float() if t.dtype in (torch.float16, torch.bfloat16) else t).cpu().numpy() for t in results]

    run.runtime = runtime  # the runtime must outlive the engine
    return run
