"""The runtimes an artifact runs in: one runner per runtime behind one interface (:mod:`~app.runtimes.base`:
ONNX Runtime, OpenVINO, PyTorch, TensorRT, ExecuTorch), and the TensorRT engine builder that runs in its
own child (:mod:`~app.runtimes.tensorrt_build`). Each runtime module declares the artifact kind it reads
(:func:`app.model.kinds.register`: suffixes, magic, loader, the benchmark's runners, Triton, pack). Verification, evaluation and the benchmark all run models through
them. They may import the model, the artifacts' manifest, the safety checks and :mod:`app.errors`; never
the loaders, converters or anything above.
"""
