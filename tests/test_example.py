"""`main.py example DIR`: a small real example a new user can start from, nothing downloaded."""

import json


def test_the_example_is_a_trained_cnn_its_factory_and_held_out_digits_that_convert(cli, tmp_path):
    folder = tmp_path / "example"
    run = cli("example", folder, "--json")
    assert run.code == 0, run.err
    paths = json.loads(run.out)
    assert float(paths["accuracy"]) > 0.9  # a CNN really trained on the digits
    assert sorted(p.name for p in (folder / "digits").iterdir()) == [str(d) for d in range(10)]
    assert len(list((folder / "digits").rglob("*.png"))) == 300
    readme = (folder / "README.txt").read_text()
    assert f"--arch {paths['arch']}" in readme and "--precision int8" in readme

    # the README's INT8 command, as a user would run it: real accuracy on the held-out digits
    run = cli("convert", paths["model"], "--arch", paths["arch"], "--input", paths["input"], "--to", "onnx",
              "--precision", "int8", "--data", paths["data"], "--out", folder / "out", "--json")
    assert run.code == 0, run.err
    evaluation = json.loads(run.out)["evaluation"]
    assert evaluation["samples"] > 100 and evaluation["top1_agreement"] > 0.9


def test_an_example_is_not_replaced_without_overwrite(cli, tmp_path):
    assert cli("example", tmp_path).code == 0
    before = (tmp_path / "digits_cnn.pth").read_bytes()
    run = cli("example", tmp_path)
    assert run.code == 2 and run.err.strip().splitlines()[-1] == (
        f"error: {tmp_path} already holds an example (digits_cnn.pth); choose an empty folder or pass --overwrite")
    assert (tmp_path / "digits_cnn.pth").read_bytes() == before
    assert cli("example", tmp_path, "--overwrite").code == 0
