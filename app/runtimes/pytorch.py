"""PyTorch as a runtime: eager modules, TorchScript archives and ``torch.export`` programs."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from app.errors import first_line
from app.model.loaded import Feeds, LoadedModel, flatten_outputs
from app.runtimes.base import Runner

# the runtime a torch file runs in, by its format (anything else: eager PyTorch)
TORCH_RUNTIMES = {"torchscript": "torchscript", "torch-export": "torch.export"}



class TorchRunner(Runner):
    """A torch callable: the source ``nn.Module`` (eager), a TorchScript archive, an exported program.

    Parameters
    ----------
    loader
        Returns the :class:`~app.model.loaded.LoadedModel` (called, and timed, by :meth:`load`).
    runtime
        ``pytorch`` (eager), ``torchscript`` or ``torch.export``.
    device
        ``cpu`` or ``cuda``.
    """

    def __init__(self, name: str, loader: Callable[[], LoadedModel], *, runtime: str = "pytorch",
                 device: str = "cpu", precision: str = "fp32", size_bytes: int = 0):
        super().__init__(name, precision=precision, size_bytes=size_bytes)
        self.loader = loader
        self.runtime = runtime  # type: ignore[misc] - per instance: one class serves three runtimes
        self.device = device
        self.provider = device
        self.model: LoadedModel | None = None
        self._fn: Any = None

    def available(self) -> tuple[bool, str]:
        try:
            import torch
        except Exception as e:  # noqa: BLE001
            return False, f"PyTorch is not importable ({first_line(e)})"
        if self.device == "cuda" and not torch.cuda.is_available():
            return False, "no CUDA device visible to PyTorch (torch.cuda.is_available() is False)"
        return True, ""

    def _load_impl(self) -> None:
        model = self.loader()
        if model.module is None:
            raise RuntimeError(f"{model.path.name}: this {model.format} file holds no runnable module")
        fn = model.torch_callable()
        if self.device != "cpu":
            fn = fn.to(self.device)
        self.model, self._fn, self.inputs = model, fn, list(model.inputs)
        if not self.size_bytes:
            self.size_bytes = model.size_bytes

    def _prepare_impl(self, feeds: Feeds) -> tuple:
        import torch

        args = []
        for spec in self.inputs:
            t = torch.from_numpy(np.array(feeds[spec.name]))  # a copy: a model may write into its inputs
            if spec.dtype == "bfloat16":
                t = t.to(torch.bfloat16)
            args.append(t.to(self.device) if self.device != "cpu" else t)
        return tuple(args)

    def _call_impl(self, prepared: tuple) -> Any:
        import torch

        with torch.inference_mode():
            return self._fn(*prepared)

    def timed_call(self, prepared: tuple) -> float:
        if self.device == "cpu":
            return super().timed_call(prepared)
        import torch

        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        self._call_impl(prepared)
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000.0

    def _outputs_impl(self, raw: Any) -> list[np.ndarray]:
        return [t.detach().float().cpu().numpy() if t.is_floating_point() else t.detach().cpu().numpy()
                for t in flatten_outputs(raw)]

    def _close_impl(self) -> None:
        self.model, self._fn = None, None


def runs_in_torch(model: LoadedModel) -> TorchRunner:
    """The runner of a loaded torch model (its ``make_runner``): eager, TorchScript or torch.export by its format."""
    return TorchRunner(model.path.name, lambda: model, runtime=TORCH_RUNTIMES.get(model.format, "pytorch"))
