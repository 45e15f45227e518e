"""Small ONNX graphs written by hand (no exporter): what the Graph tab and netron's server tests draw."""

from __future__ import annotations

from pathlib import Path


def make_onnx(path: Path, kind: str = "conv", *, external: bool = False) -> Path:
    """A small ONNX model: Conv → Relu → MatMul ("conv") or Add → Sigmoid ("add")."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if kind == "conv":
        weights = [numpy_helper.from_array(np.random.rand(4, 3, 3, 3).astype(np.float32), "W"),
                   numpy_helper.from_array(np.random.rand(8, 5).astype(np.float32), "M")]
        nodes = [helper.make_node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]),
                 helper.make_node("Relu", ["c"], ["r"]),
                 helper.make_node("MatMul", ["r", "M"], ["y"])]
        x, y = [1, 3, 8, 8], [1, 4, 8, 5]
    else:
        weights = [numpy_helper.from_array(np.ones((1, 8), np.float32), "b")]
        nodes = [helper.make_node("Add", ["x", "b"], ["s"]), helper.make_node("Sigmoid", ["s"], ["y"])]
        x = y = [2, 8]
    graph = helper.make_graph(nodes, kind, [helper.make_tensor_value_info("x", TensorProto.FLOAT, x)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, y)], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    if external:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=path.name + ".data", size_threshold=0)
    else:
        onnx.save(model, str(path))
    return path
