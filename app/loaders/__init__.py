"""One loader per source format, each ``path → LoadedModel``, behind :func:`app.loading.load_model`
(which sniffs the format and runs the checks in front of them). ONNX, OpenVINO IR and TensorRT
engines are read beside their runtimes (:mod:`app.runtimes`)."""
