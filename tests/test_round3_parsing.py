"""Issue 31, the unfenced parent's reads: what the CLI and the window read themselves (manifests, saved
benchmark results, the model file, an ONNX graph) cannot block it, blow up its memory or end in an
"internal error" or a traceback, whatever a model's author put there.

Each case runs the real CLI (``main.py`` in a process of its own, private HOME/XDG/TMPDIR) on a hostile
file and asserts what the user sees: the exit code, one ``error:`` line naming the file (and the field),
one JSON object on ``--json`` stdout, no traceback; and, for the memory cases, the peak memory of the
CLI's whole process tree (the job children included), sampled from /proc.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.fuzz import assert_sentences

DONE_WITHIN = 150  # seconds: a command that blocks on a FIFO runs into this (it used to block forever)


def private_env(tmp_path: Path, **extra) -> dict:
    home = tmp_path / "home"
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / "config"), XDG_CACHE_HOME=str(home / "cache"),
               XDG_DATA_HOME=str(home / "data"), XDG_STATE_HOME=str(home / "state"), TMPDIR=str(tmp_path / "tmp"),
               PYTHONPATH=str(REPO))
    for folder in ("home", "tmp"):
        (tmp_path / folder).mkdir(exist_ok=True)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_cli(tmp_path: Path, *args, timeout: float = DONE_WITHIN, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "main.py"), *map(str, args)], cwd=tmp_path,
                          env=private_env(tmp_path), stdout=stdout, stderr=subprocess.PIPE, text=True,
                          timeout=timeout)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def assert_one_clean_line(proc: subprocess.CompletedProcess, code: int, *words: str) -> str:
    """Exit ``code``, exactly one ``error:`` line that holds ``words``, no traceback, no internal error."""
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    errors = error_lines(proc.stderr)
    assert proc.returncode == code, proc.stderr
    assert len(errors) == 1, proc.stderr
    assert all(w in errors[0] for w in words), errors[0]
    assert_sentences(proc.stderr)
    return errors[0]


def tiny_onnx(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def manifest_of(artifact: Path, source: Path) -> dict:
    """A manifest as convert writes it (the fields pack, evaluate and report read)."""
    return {"format_version": 1, "artifact": artifact.name, "files": [{"name": artifact.name, "sha256": "0" * 64,
                                                                       "size_bytes": artifact.stat().st_size}],
            "target": "onnx", "precision": "fp32", "status": "ok",
            "source": {"path": str(source), "sha256": "0" * 64, "format": "onnx"},
            "inputs": [{"name": "x", "dtype": "float32", "shape": [1, 4], "example": [1, 4]}],
            "outputs": [{"name": "y", "dtype": "float32", "shape": [1, 4], "example": [1, 4]}],
            "options": {"inputs": [], "dynamic": [], "arch": None, "arch_kwargs": {}, "allow_pickle": False,
                        "trusted_globals": [], "run_code_from_file": False, "data": None},
            "recorded": {}, "verification": {"passed": True, "checks": ["random inputs"], "cosine": 1.0},
            "evaluation": None, "accuracy_budget": None, "warnings": [], "seconds": 0.1}


@pytest.fixture
def artifact(tmp_path) -> Path:
    """``model.onnx`` (the source) and ``art.onnx`` (an artifact of it), no manifest yet."""
    tiny_onnx(tmp_path / "model.onnx")
    return tiny_onnx(tmp_path / "art.onnx")


# ---------------------------------------------------------------------------- FIFOs where files should be
def test_a_fifo_as_manifest_is_refused_by_pack_and_report_and_ignored_by_evaluate(tmp_path, artifact):
    """A FIFO where the manifest should be blocked `pack`, `evaluate` and `report` forever (a read
    that waits for a writer); each now ends at once: pack and report refuse it in one line (exit 2),
    evaluate says it ignores it and goes on (here to its own refusal of the missing data)."""
    os.mkfifo(tmp_path / "art.onnx.manifest.json")
    packed = run_cli(tmp_path, "pack", artifact, "--out", tmp_path / "packed")
    assert_one_clean_line(packed, 2, "art.onnx.manifest.json", "FIFO")
    assert not (tmp_path / "packed").exists()

    report = run_cli(tmp_path, "report", tmp_path / "art.onnx.manifest.json", "--out", tmp_path / "r.html", "--json")
    assert_one_clean_line(report, 2, "art.onnx.manifest.json", "FIFO")
    assert json.loads(report.stdout)["exit_code"] == 2 and not (tmp_path / "r.html").exists()

    evaluated = run_cli(tmp_path, "evaluate", tmp_path / "model.onnx", artifact, "--data", tmp_path / "nowhere")
    assert "art.onnx.manifest.json" in evaluated.stderr and "FIFO" in evaluated.stderr
    assert_one_clean_line(evaluated, 2, "--data", "nowhere")


def test_a_fifo_as_benchmark_result_or_data_is_refused(tmp_path, artifact):
    os.mkfifo(tmp_path / "bench.json")
    measured = run_cli(tmp_path, "targets", "--measured", tmp_path / "bench.json", "--json")
    assert measured.returncode == 0 and "Traceback" not in measured.stderr
    ignored = json.loads(measured.stdout)["measured"]["ignored"]
    assert len(ignored) == 1 and "FIFO" in ignored[0]["why"] and ignored[0]["file"] == str(tmp_path / "bench.json")
    human = run_cli(tmp_path, "targets", "--measured", tmp_path)  # a folder holding the FIFO
    assert human.returncode == 0 and "warning: " in human.stderr and "FIFO" in human.stderr

    data = run_cli(tmp_path, "evaluate", tmp_path / "model.onnx", artifact, "--data", tmp_path / "bench.json")
    assert_one_clean_line(data, 2, "--data", "bench.json", "not a regular file")


def test_a_fifo_as_the_trusted_globals_file_is_refused(tmp_path):
    """`--trust-globals-from FIFO` blocked `inspect` before any job started (found by the attack round)."""
    model = tiny_onnx(tmp_path / "model.onnx")
    os.mkfifo(tmp_path / "names.txt")
    proc = run_cli(tmp_path, "inspect", model, "--trust-globals-from", tmp_path / "names.txt")
    assert_one_clean_line(proc, 2, "--trust-globals-from", "names.txt", "FIFO")


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_fifo_or_device_as_model_is_refused_by_name(tmp_path, kind):
    model = tmp_path / "model.onnx"
    if kind == "fifo":
        os.mkfifo(model)
    else:
        model = Path("/dev/zero")
    proc = run_cli(tmp_path, "inspect", model)
    assert_one_clean_line(proc, 2, str(model.name), "FIFO" if kind == "fifo" else "device", "not a model file")


def test_the_side_file_reader_never_blocks_and_bounds_what_it_reads(tmp_path):
    from app.artifacts.json_file import read_json_file
    from app.errors import BadInput, SideFileMissing

    os.mkfifo(tmp_path / "fifo.json")
    (tmp_path / "deep.json").write_text("[" * 5000 + "]" * 5000)
    (tmp_path / "shallow_but_deep.json").write_text("[" * 100 + "]" * 100)
    (tmp_path / "wide.json").write_text("[" + ",".join(["{}"] * 300_000) + "]")
    (tmp_path / "huge_int.json").write_text("1" * 10_000)
    (tmp_path / "latin1.json").write_bytes(b'{"a": "\xe9"}')
    for name, words in (("fifo.json", "FIFO"), ("deep.json", "nested"), ("shallow_but_deep.json", "nested"),
                        ("wide.json", "objects/arrays"), ("huge_int.json", "not a readable JSON file"),
                        ("latin1.json", "UTF-8")):
        with pytest.raises(BadInput, match=words):
            read_json_file(tmp_path / name, "manifest")
    with pytest.raises(SideFileMissing):
        read_json_file(tmp_path / "none.json")
    with pytest.raises(BadInput, match="too large"):
        read_json_file(tmp_path / "wide.json", max_bytes=1000)
    (tmp_path / "ok.json").write_text(json.dumps({"a": [{"b": 1.5}], "c": "é"}))
    assert read_json_file(tmp_path / "ok.json") == {"a": [{"b": 1.5}], "c": "é"}


# ---------------------------------------------------------------------------- hostile manifests
DEEP = '{"a": [' * 3000 + "null" + "]}" * 3000  # JSON text: json.dumps itself cannot write it

HOSTILE_FIELDS = [
    ("source", "a string where the source's object belongs", "source"),
    ("options", ["a", "list"], "options"),
    ("verification", [1, 2], "verification"),
    ("target", ["onnx"], "target"),
    ("inputs", [{"name": "x", "shape": 4}], "inputs[0].shape"),
    ("accuracy_budget", {"budget": "cosine=0.9", "float_nodes": 3, "rounds": []}, "accuracy_budget.float_nodes"),
    ("recorded", {"data": {"source": "d", "split_seed": "one"}}, "recorded.data.split_seed"),
    ("options", {"dynamic": [["x", "zero", "batch"]]}, "options.dynamic[0]"),
]


def hostile_manifest(artifact: Path, field: str, value) -> Path:
    data = manifest_of(artifact, artifact.with_name("model.onnx"))
    data[field] = "VALUE" if value is DEEP else value
    path = artifact.with_name(artifact.name + ".manifest.json")
    path.write_text(json.dumps(data).replace('"VALUE"', DEEP))
    return path


@pytest.mark.parametrize("field, value, named", HOSTILE_FIELDS[:4], ids=[f[0] for f in HOSTILE_FIELDS[:4]])
def test_report_on_a_manifest_of_wrong_types_is_one_line_naming_the_field(tmp_path, artifact, field, value, named):
    """`report` ended in "internal error: AttributeError" on these (and RecursionError on the deep one)."""
    manifest = hostile_manifest(artifact, field, value)
    proc = run_cli(tmp_path, "report", manifest, "--out", tmp_path / "r.html", "--json")
    assert_one_clean_line(proc, 2, manifest.name, f"field {named}")
    assert json.loads(proc.stdout)["status"] == "failed" and not (tmp_path / "r.html").exists()


def test_report_and_pack_on_a_deeply_nested_manifest(tmp_path, artifact):
    manifest = hostile_manifest(artifact, "evaluation", DEEP)
    report = run_cli(tmp_path, "report", manifest, "--out", tmp_path / "r.html")
    assert_one_clean_line(report, 2, manifest.name, "nested")
    packed = run_cli(tmp_path, "pack", artifact, "--out", tmp_path / "packed", "--json")
    assert_one_clean_line(packed, 2, manifest.name, "nested")
    assert json.loads(packed.stdout)["exit_code"] == 2


@pytest.mark.parametrize("field, value, named", HOSTILE_FIELDS[4:], ids=[f[0] for f in HOSTILE_FIELDS[4:]])
def test_pack_on_a_manifest_of_wrong_types_is_one_line_naming_the_field(tmp_path, artifact, field, value, named):
    """What pack's fenced job read from these failed inside it ("the job failed unexpectedly")."""
    hostile_manifest(artifact, field, value)
    proc = run_cli(tmp_path, "pack", artifact, "--out", tmp_path / "packed")
    assert_one_clean_line(proc, 2, "art.onnx.manifest.json", f"field {named}")
    assert not (tmp_path / "packed").exists()


def test_every_field_of_every_wrong_type_is_refused_or_shown_never_crashed_on(cli, tmp_path, artifact):
    """In-process, every top-level and options field of a manifest replaced by each JSON type: `report`
    writes the page (a figure that is not a number shows as '–') or refuses in one line, exit 2."""
    base = manifest_of(artifact, tmp_path / "model.onnx")
    values = ["text", 7, 2.5, True, [], ["x", 1], {}, {"k": [1]}, [{"name": 1}]]
    fields = [(k, None) for k in base] + [("options", k) for k in base["options"]]
    fields += [(k, None) for k in ("build_isa", "tools", "recorded")]
    manifest = artifact.with_name("art.onnx.manifest.json")
    for key, sub in fields:
        for value in values:
            data = json.loads(json.dumps(base))
            if sub is None:
                data[key] = value
            else:
                data[key][sub] = value
            manifest.write_text(json.dumps(data))
            r = cli("report", manifest, "--out", tmp_path / "r.html", "--overwrite")
            assert r.code in (0, 2), (key, sub, value, r.err)
            assert "internal error" not in r.err and "Traceback" not in r.err, (key, sub, value, r.err)
            if r.code == 2:
                assert len(error_lines(r.err)) == 1 and manifest.name in r.err, (key, sub, value, r.err)


def test_evaluate_ignores_a_damaged_manifest_with_a_warning(tmp_path, artifact):
    hostile_manifest(artifact, "options", ["not", "an", "object"])
    proc = run_cli(tmp_path, "evaluate", tmp_path / "model.onnx", artifact, "--data", tmp_path / "nowhere")
    assert "warning: " in proc.stderr and "field options" in proc.stderr and "without its manifest" in proc.stderr
    assert_one_clean_line(proc, 2, "--data")


# ---------------------------------------------------------------------------- targets --measured
def test_targets_measured_with_text_where_numbers_belong(tmp_path):
    """`targets --measured` ended in "internal error: TypeError" on a string where a number belongs; such
    rows are left out, each said in a warning (and in --json's "ignored")."""
    from app.machine.hardware import detect

    hw = detect()
    machine = {"cpu": hw.cpu.name, "arch": platform.machine(), "isa": hw.cpu.features()}
    row = {"name": "art.onnx", "runtime": "onnxruntime", "precision": "fp32", "batch": 1, "p50_ms": 1.0,
           "cosine": 1.0, "speedup_vs_baseline": 2.0, "artifact": "art.onnx"}
    rows = [dict(row, cosine="high"), dict(row, name="b.onnx", p50_ms=2.0, speedup_vs_baseline="fast"),
            dict(row, name="c.onnx", precision="int8", batch="two"), dict(row, name=["d"], precision="fp16", p50_ms=3.0)]
    (tmp_path / "bench.json").write_text(json.dumps({"machine": machine, "config": {}, "results": rows}))
    human = run_cli(tmp_path, "targets", "--measured", tmp_path / "bench.json")
    assert human.returncode == 0 and "Traceback" not in human.stderr and "internal error" not in human.stderr, human.stderr
    assert "results[0].cosine is not a number" in human.stderr and "results[2].batch is not a number" in human.stderr
    assert "fastest accurate: b.onnx" in human.stdout
    as_json = run_cli(tmp_path, "targets", "--measured", tmp_path / "bench.json", "--json")
    measured = json.loads(as_json.stdout)["measured"]
    assert measured["winner"]["name"] == "b.onnx" and measured["winner"]["speedup_vs_baseline"] is None
    assert len(measured["ignored"]) == 2 and measured["best"]["onnx/fp16"]["name"] == "['d']"

    (tmp_path / "bench.json").write_text(json.dumps({"machine": machine, "results": rows, "skipped": "none"}))
    damaged = run_cli(tmp_path, "targets", "--measured", tmp_path / "bench.json")
    assert damaged.returncode == 0 and "field skipped is a string, not a list" in damaged.stderr


# ---------------------------------------------------------------------------- --json and closed pipes
def test_an_unknown_word_with_json_prints_one_json_object(tmp_path):
    proc = run_cli(tmp_path, "nosuch", "--json")
    assert proc.returncode == 2
    failure = json.loads(proc.stdout)
    assert (failure["status"], failure["exit_code"], failure["stage"]) == ("failed", 2, "parse arguments")
    assert "'nosuch' is neither a command nor an existing model file" in failure["message"]
    assert failure["message"] in error_lines(proc.stderr)[0]


def run_with_stdout_closed(tmp_path: Path, *args) -> subprocess.CompletedProcess:
    """The command with a stdout whose reader has gone (``| head`` after its lines): every write fails."""
    read, write = os.pipe()
    os.close(read)
    try:
        return run_cli(tmp_path, *args, stdout=write)
    finally:
        os.close(write)


@pytest.mark.parametrize("args, code", [
    (("--version",), 0),
    (("targets",), 0),
    (("targets", "--json"), 0),
    (("nosuch", "--json"), 2),
    (("inspect", "nosuch.onnx", "--json"), 2),
    (("report", "nowhere", "--out", "r.html", "--json"), 2),
], ids=lambda v: " ".join(v) if isinstance(v, tuple) else str(v))
def test_a_closed_stdout_ends_quietly_with_the_commands_exit_code(tmp_path, args, code):
    """`main.py … --json | head -3`: the failure's JSON object hit the closed pipe inside the error
    handler (and `--version` outside every handler): a BrokenPipeError traceback. Now: no traceback, the
    error line still on stderr, the command's own exit code."""
    proc = run_with_stdout_closed(tmp_path, *args)
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr
    assert proc.returncode == code, proc.stderr
    assert len(error_lines(proc.stderr)) == (1 if code else 0), proc.stderr


# ---------------------------------------------------------------------------- ONNX graphs: bounded memory
def empty_nodes_onnx(path: Path, nodes: int) -> Path:
    """An ONNX file of ``nodes`` empty NodeProto (2 bytes each in the file, ~200 bytes each once parsed)
    and one graph output."""
    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
            n >>= 7
            if not n:
                return bytes(out)

    graph = b"\x0a\x00" * nodes + b"\x12\x01g" + b"\x62\x03\x0a\x01y"
    path.write_bytes(b"\x08\x08" + b"\x42\x02\x10\x11" + b"\x3a" + varint(len(graph)) + graph)
    return path


def peak_tree_rss(cmd: list[str], env: dict, cwd: Path, timeout: float) -> tuple[subprocess.CompletedProcess, int]:
    """Run ``cmd``; its result and the largest RSS (bytes) its process tree (every descendant: the
    forkserver, the job) held at once, sampled every 20 ms from /proc."""
    import psutil

    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    root, peak = psutil.Process(proc.pid), 0
    try:
        while proc.poll() is None:
            assert time.monotonic() - start < timeout, f"{cmd[2:]} still running after {timeout} s"
            total = 0
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                tree = []
            for p in tree:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            peak = max(peak, total)
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err), peak


GIB = 2**30
NODES = 10_000_000  # 20 MB of file; parsed, ~2 GB (the 40 MB cost 4.2 GB)


@pytest.mark.parametrize("command", ["inspect", "convert"])
def test_an_onnx_file_of_millions_of_empty_nodes_is_refused_with_bounded_memory(tmp_path, command):
    """inspect parsed it in its job (4.2 GB for 40 MB); convert's memory check parsed it in the CLI
    itself, then the job again (18 GB). The graph's messages are counted on the wire first."""
    model = empty_nodes_onnx(tmp_path / "empty_nodes.onnx", NODES)
    args = ["inspect", model] if command == "inspect" else ["convert", model, "--to", "onnx", "--precision", "fp16",
                                                              "--out", tmp_path / "out"]
    proc, peak = peak_tree_rss([sys.executable, str(REPO / "main.py"), *map(str, args)], private_env(tmp_path),
                               tmp_path, timeout=DONE_WITHIN)
    assert_one_clean_line(proc, 2, "empty_nodes.onnx", "refused before parsing", "DEPLOYSTUDIO_ONNX_MAX_MESSAGES")
    assert peak < 1.25 * GIB, f"the CLI's process tree peaked at {peak / GIB:.2f} GiB"


def test_the_windows_graph_path_does_not_parse_the_model(tmp_path):
    """The Graph tab (GraphServer → private_copy → model_files) parsed the whole ONNX in the window's
    process to find its external data; it reads it from the wire format now (bounded)."""
    model = empty_nodes_onnx(tmp_path / "empty_nodes.onnx", NODES)
    code = ("import sys\n"
            "from app.errors import ModelLoadError\n"
            "from app.graph.netron_server import GraphServer\n"
            "try:\n"
            "    GraphServer(sys.argv[1]).stop()\n"
            "    print('served')\n"
            "except ModelLoadError as e:\n"
            "    print('refused:', e)\n"
            # VmHWM: this process's peak since exec (ru_maxrss keeps the forking parent's across execve)
            "hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM:'))\n"
            "print('peak', int(hwm.split()[1]) * 1024)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(model)], cwd=tmp_path, env=private_env(tmp_path),
                          capture_output=True, text=True, timeout=DONE_WITHIN)
    assert proc.returncode == 0, proc.stderr
    assert "refused: " in proc.stdout and "refused before parsing" in proc.stdout
    peak = int(proc.stdout.split("peak ")[1])
    assert peak < 0.5 * GIB, f"the graph path peaked at {peak / GIB:.2f} GiB"


def test_the_wire_scan_counts_what_a_parse_makes_and_finds_every_external_tensor(tmp_path):
    """The scan's message count equals the parsed model's (main graph, If branches, a local function,
    sparse initializers, sequence types, metadata), and it finds the external tensors the parse does."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from app.runtimes.onnx_scan import scan_onnx
    from app.runtimes.onnxrt import external_files_of, onnx_external_files

    def count(message) -> int:
        n = 0
        for f, v in message.ListFields():
            if f.type == f.TYPE_MESSAGE:
                for item in (v if f.label == f.LABEL_REPEATED else [v]):
                    n += 1 + count(item)
        return n

    out = helper.make_tensor_value_info
    then_g = helper.make_graph([helper.make_node("Constant", [], ["t"], value=numpy_helper.from_array(
        np.ones((1, 4), np.float32), "c"))], "then", [], [out("t", TensorProto.FLOAT, [1, 4])])
    else_g = helper.make_graph([helper.make_node("Relu", ["x"], ["e"])], "else", [], [out("e", TensorProto.FLOAT, [1, 4])])
    sparse = helper.make_sparse_tensor(numpy_helper.from_array(np.ones(2, np.float32), "sv"),
                                       numpy_helper.from_array(np.array([0, 1], np.int64), "si"), [4])
    graph = helper.make_graph(
        [helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)], "g",
        [out("x", TensorProto.FLOAT, [1, 4]), out("c", TensorProto.BOOL, [])], [out("y", TensorProto.FLOAT, [1, 4])],
        initializer=[numpy_helper.from_array(np.arange(64, dtype=np.float32), "w")], sparse_initializer=[sparse],
        value_info=[helper.make_tensor_sequence_value_info("s", TensorProto.FLOAT, [2])])
    fn = helper.make_function("local", "F", ["a"], ["b"], [helper.make_node("Relu", ["a"], ["b"])],
                              [helper.make_opsetid("", 17)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)],
                              functions=[fn])
    model.metadata_props.add(key="k", value="v")
    path = tmp_path / "m.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="m.data", size_threshold=0)
    parsed = onnx.load(str(path), load_external_data=False)
    then = next(a.g for a in parsed.graph.node[0].attribute if a.name == "then_branch")
    for tensor in (then.node[0].attribute[0].t, parsed.graph.sparse_initializer[0].values):
        tensor.ClearField("raw_data")  # a Constant's value in a subgraph and a sparse tensor's: external too
        tensor.data_location = TensorProto.EXTERNAL
        tensor.external_data.add(key="location", value="m.data")
        tensor.external_data.add(key="offset", value="0")
    onnx.save(parsed, str(path))
    scan = scan_onnx(path)
    assert scan.messages == 1 + count(parsed) and scan.nodes == 4  # If, its branches' Constant and Relu, F's Relu
    assert external_files_of(path) == onnx_external_files(parsed, tmp_path, path) == [tmp_path.resolve() / "m.data"]
    assert {t.name for t in scan.external} == {"w", "c", "sv"}
    parsed.graph.sparse_initializer[0].values.external_data[0].value = "../outside.data"
    onnx.save(parsed, str(path))
    from app.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="points outside the model's folder"):
        external_files_of(path)
