"""One loader per source format, each ``load(file, source, guess) → LoadedModel`` (TorchScript,
``.pt2``, ``torch.save`` state dicts and pickled modules, safetensors), behind the front door
:func:`app.loaders.front_door.load`, which opens the file once, sniffs the format, runs the checks and hands
each loader what it learned (:class:`app.loaders.checked.CheckedFile`). ONNX, OpenVINO IR,
TensorRT engines and ExecuTorch programs are read beside their runtimes (:mod:`app.runtimes`), each
declaring its artifact kind (:mod:`app.model.kinds`); importing the front door declares them all."""
