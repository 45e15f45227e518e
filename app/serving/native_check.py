"""The no-Python load check: run an artifact from a C++ program and compare with Python.

For TorchScript, a small C++ program is built once (CMake + the system C++ compiler) against the
LibTorch that ships inside the installed torch wheel, and cached per torch version. The check writes
the inputs as raw little-endian files, runs the program on the artifact (``torch::jit::load``, then
``forward``), reads its outputs back and compares them with the artifact run from Python, using the
metrics every verification uses. That proves the artifact loads and computes without a Python
interpreter, instead of claiming it.

ONNX Runtime's C API needs its C headers; the PyPI ``onnxruntime`` wheel ships only the shared
library, so for ONNX the check reports why it cannot run here rather than faking a result.

Nothing here raises for a missing toolchain: the result says what is missing.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from app.accuracy.verify import OutputMetrics, Verification, compare, judge
from app.artifacts.manifest import read_manifest
from app.errors import BadInput, ConversionFailed
from app.loaders.front_door import int_range_of, load_model, with_inputs
from app.model.inputs import make_feeds, second_sizes
from app.model.specs import TensorSpec

Progress = Callable[[str, float | None], None]

BUILD_TIMEOUT_S = 1800   # a LibTorch program takes about a minute on 2 cores; generous for slow CI
RUN_TIMEOUT_S = 600
RUNS = 5                 # forward passes timed in C++ (the first one is reported apart)
CACHE_ENV = "DEPLOY_STUDIO_NATIVE_CACHE"


@dataclass
class NativeCheck:
    """Outcome of one no-Python check.

    ``passed`` is ``True``/``False`` when the check ran, ``None`` when it could not run here
    (``reason`` says why: no compiler, no CMake, no C headers, unsupported format).
    """

    artifact: Path
    runtime: str                                   # "libtorch" or "onnxruntime-c"
    passed: bool | None
    reason: str = ""
    verification: Verification | None = None
    build_seconds: float = 0.0                     # 0 when the cached program was reused
    built: bool = False                            # True when this call compiled the program
    program: Path | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)  # load, first run, mean run (C++)
    checks: list[str] = field(default_factory=list)

    @property
    def ran(self) -> bool:
        return self.passed is not None

    def summary(self) -> str:
        """One line for the CLI and the log."""
        if self.passed is None:
            return f"native check ({self.runtime}) not run: {self.reason}"
        v = self.verification
        state = "passed" if self.passed else f"FAILED: {self.reason}"
        metrics = f"max|Δ| {v.max_abs_err:.3g}, rel L2 {v.rel_l2:.3g}, cosine {v.cosine:.6f}" if v else ""
        timing = ""
        if self.timings_ms:
            timing = (f"; C++ load {self.timings_ms.get('load_ms', 0):.0f} ms, "
                      f"forward {self.timings_ms.get('mean_run_ms', 0):.2f} ms")
        return f"native check ({self.runtime}, no Python) {state}: {metrics}{timing}"

    def to_json(self) -> dict:
        return {"artifact": str(self.artifact), "runtime": self.runtime, "passed": self.passed,
                "reason": self.reason, "build_seconds": round(self.build_seconds, 2), "built": self.built,
                "program": str(self.program) if self.program else None, "timings_ms": self.timings_ms,
                "checks": self.checks,
                "verification": self.verification.to_json() if self.verification else None}


# ---------------------------------------------------------------------------- toolchain
def cache_root() -> Path:
    """Where built programs are kept: ``$DEPLOY_STUDIO_NATIVE_CACHE`` or the user's cache folder."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "deploy-studio" / "native-check"


def find_compiler() -> str | None:
    """The C++ compiler CMake would pick: ``$CXX``, else c++/g++/clang++ on PATH."""
    for name in [os.environ.get("CXX")] + ["c++", "g++", "clang++"]:
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def toolchain_problem() -> str | None:
    """Why a C++ program cannot be built here, or ``None`` when CMake and a compiler are present."""
    missing = []
    if not shutil.which("cmake"):
        missing.append("cmake")
    if not find_compiler():
        missing.append("a C++ compiler (g++ or clang++)")
    if not missing:
        return None
    return (f"no {' and no '.join(missing)} on PATH; install them (Debian/Ubuntu: apt-get install g++ cmake) "
            "to build the LibTorch check program")


def libtorch_prefix() -> Path:
    """The CMake prefix of the LibTorch inside the installed torch wheel."""
    import torch.utils

    return Path(torch.utils.cmake_prefix_path)


# The program reads each input as FILE:DTYPE:D0xD1x...[:CAST] (raw little-endian, C order), runs
# forward() RUNS times, and writes output_<i>.bin plus outputs.json into OUT_DIR.
LIBTORCH_SOURCE = r"""// Built by Model Deployment Studio: loads a TorchScript file with LibTorch, no Python.
#include <ATen/Parallel.h>
#include <torch/script.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct TypeName { const char* name; at::ScalarType type; };
const TypeName kTypes[] = {
    {"float32", at::kFloat}, {"float16", at::kHalf}, {"bfloat16", at::kBFloat16},
    {"float64", at::kDouble}, {"int64", at::kLong}, {"int32", at::kInt}, {"int16", at::kShort},
    {"int8", at::kChar}, {"uint8", at::kByte}, {"bool", at::kBool}};

at::ScalarType parse_type(const std::string& s) {
  for (const auto& t : kTypes) if (s == t.name) return t.type;
  throw std::runtime_error("unknown dtype " + s);
}

const char* type_name(at::ScalarType type) {
  for (const auto& t : kTypes) if (t.type == type) return t.name;
  throw std::runtime_error(std::string("unsupported output dtype ") + c10::toString(type));
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, sep)) parts.push_back(part);
  return parts;
}

// FILE:DTYPE:SHAPE[:CAST]; the file name may itself hold ':' so fields are taken from the right
torch::Tensor read_tensor(const std::string& arg) {
  std::vector<std::string> fields;
  std::string rest = arg;
  for (int i = 0; i < 3; ++i) {
    auto pos = rest.rfind(':');
    if (pos == std::string::npos) break;
    fields.insert(fields.begin(), rest.substr(pos + 1));
    rest = rest.substr(0, pos);
  }
  fields.insert(fields.begin(), rest);
  bool has_cast = fields.size() == 4 && !fields[3].empty() && fields[3].find_first_not_of("0123456789x") != std::string::npos;
  if (fields.size() == 4 && !has_cast) {  // no CAST: the file name held a ':'
    fields[0] += ":" + fields[1];
    fields.erase(fields.begin() + 1);
  }
  if (fields.size() < 3) throw std::runtime_error("bad input argument " + arg);
  const std::string& file = fields[0];
  at::ScalarType type = parse_type(fields[1]);
  std::vector<int64_t> shape;
  for (const auto& d : split(fields[2], 'x')) if (!d.empty()) shape.push_back(std::stoll(d));
  torch::Tensor t = torch::empty(shape, torch::TensorOptions().dtype(type));
  std::ifstream f(file, std::ios::binary | std::ios::ate);
  if (!f) throw std::runtime_error("cannot open " + file);
  std::streamsize size = f.tellg();
  const auto expected = static_cast<std::streamsize>(t.numel() * t.element_size());
  if (size != expected)
    throw std::runtime_error(file + ": " + std::to_string(size) + " bytes, expected " + std::to_string(expected));
  f.seekg(0);
  f.read(static_cast<char*>(t.data_ptr()), size);
  if (has_cast) t = t.to(parse_type(fields[3]));
  return t;
}

void flatten(const c10::IValue& v, std::vector<torch::Tensor>& out) {
  if (v.isTensor()) {
    out.push_back(v.toTensor());
  } else if (v.isTuple()) {
    for (const auto& e : v.toTupleRef().elements()) flatten(e, out);
  } else if (v.isList()) {
    for (const c10::IValue e : v.toList()) flatten(e, out);
  } else if (v.isGenericDict()) {
    for (const auto& kv : v.toGenericDict()) flatten(kv.value(), out);
  } else if (v.isDouble()) {
    out.push_back(torch::scalar_tensor(v.toDouble(), torch::kDouble));
  } else if (v.isInt()) {
    out.push_back(torch::scalar_tensor(v.toInt(), torch::kLong));
  } else if (v.isBool()) {
    out.push_back(torch::scalar_tensor(v.toBool(), torch::kBool));
  } else if (!v.isNone()) {
    throw std::runtime_error("unsupported output type " + v.tagKind());
  }
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: " << argv[0] << " MODEL.pt OUT_DIR RUNS [FILE:DTYPE:SHAPE[:CAST]]...\n";
    return 2;
  }
  try {
    const std::string out_dir = argv[2];
    const int runs = std::max(1, std::atoi(argv[3]));
    auto t0 = std::chrono::steady_clock::now();
    torch::jit::Module module = torch::jit::load(argv[1], torch::kCPU);
    module.eval();
    const double load_ms = ms_since(t0);
    std::vector<c10::IValue> inputs;
    for (int i = 4; i < argc; ++i) inputs.emplace_back(read_tensor(argv[i]));
    c10::InferenceMode guard;
    t0 = std::chrono::steady_clock::now();
    c10::IValue result = module.forward(inputs);
    const double first_ms = ms_since(t0);
    double total_ms = 0.0;
    for (int r = 1; r < runs; ++r) {
      t0 = std::chrono::steady_clock::now();
      result = module.forward(inputs);
      total_ms += ms_since(t0);
    }
    std::vector<torch::Tensor> outputs;
    flatten(result, outputs);
    std::ostringstream json;
    json << "{\"load_ms\": " << load_ms << ", \"first_run_ms\": " << first_ms
         << ", \"mean_run_ms\": " << (runs > 1 ? total_ms / (runs - 1) : first_ms)
         << ", \"runs\": " << runs << ", \"threads\": " << at::get_num_threads() << ", \"outputs\": [";
    for (size_t i = 0; i < outputs.size(); ++i) {
      torch::Tensor t = outputs[i].detach().cpu();
      if (t.scalar_type() == at::kBFloat16) t = t.to(at::kFloat);  // numpy has no bfloat16
      t = t.contiguous();
      const std::string name = "output_" + std::to_string(i) + ".bin";
      std::ofstream f(out_dir + "/" + name, std::ios::binary);
      f.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.numel() * t.element_size()));
      if (!f) throw std::runtime_error("cannot write " + out_dir + "/" + name);
      json << (i ? ", " : "") << "{\"file\": \"" << name << "\", \"dtype\": \"" << type_name(t.scalar_type())
           << "\", \"shape\": [";
      for (int64_t d = 0; d < t.dim(); ++d) json << (d ? ", " : "") << t.size(d);
      json << "]}";
    }
    json << "]}\n";
    std::ofstream(out_dir + "/outputs.json") << json.str();
    return 0;
  } catch (const c10::Error& e) {
    std::cerr << "error: " << e.what_without_backtrace() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
  }
  return 3;
}
"""

CMAKE_LISTS = """cmake_minimum_required(VERSION 3.18)
project(deploy_studio_native_check LANGUAGES CXX)
find_package(Torch REQUIRED)
add_executable(native_check main.cpp)
target_link_libraries(native_check "${TORCH_LIBRARIES}")
# LibTorch 2.10+ headers need C++20; torch's own target also says so
set_property(TARGET native_check PROPERTY CXX_STANDARD 20)
"""


def _program_dir(root: Path | None = None) -> Path:
    import torch

    key = hashlib.sha256((LIBTORCH_SOURCE + CMAKE_LISTS + str(libtorch_prefix())).encode()).hexdigest()[:12]
    return (root or cache_root()) / f"libtorch-{torch.__version__}-{key}"


def build_libtorch_program(cache_dir: Path | None = None, progress: Progress | None = None) -> tuple[Path, float]:
    """Build (or reuse) the C++ check program; returns its path and the seconds spent building.

    Built once per torch version into the cache folder; a file lock keeps two processes (the
    window and a CLI run, parallel tests) from building into the same folder at once.
    Raises :class:`RuntimeError` with CMake's or the compiler's last lines when the build fails.
    """
    folder = _program_dir(cache_dir)
    binary = folder / "build" / "native_check"
    stamp = folder / "built.ok"
    if stamp.exists() and binary.exists():
        return binary, 0.0
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and binary.exists():  # another process built it while we waited
            return binary, 0.0
        started = time.perf_counter()
        (folder / "main.cpp").write_text(LIBTORCH_SOURCE)
        (folder / "CMakeLists.txt").write_text(CMAKE_LISTS)
        env = dict(os.environ)
        compiler = find_compiler()
        if compiler and not env.get("CXX"):
            env["CXX"] = compiler
        if progress:
            progress("configure the LibTorch check program (CMake)", None)
        _run_build(["cmake", "-S", str(folder), "-B", str(folder / "build"), "-DCMAKE_BUILD_TYPE=Release",
                    f"-DCMAKE_PREFIX_PATH={libtorch_prefix()}"], env, folder / "cmake-configure.log")
        if progress:
            progress("compile the LibTorch check program (once per torch version)", None)
        _run_build(["cmake", "--build", str(folder / "build"), "--config", "Release",
                    "--parallel", str(max(1, os.cpu_count() or 1))], env, folder / "cmake-build.log")
        if not binary.exists():
            raise RuntimeError(f"the build finished but {binary} is missing; see {folder / 'cmake-build.log'}")
        stamp.write_text(json.dumps({"seconds": round(time.perf_counter() - started, 1),
                                     "compiler": compiler, "libtorch": str(libtorch_prefix())}))
        return binary, time.perf_counter() - started


def _run_build(cmd: list[str], env: dict, log: Path) -> None:
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{' '.join(cmd[:2])} took more than {BUILD_TIMEOUT_S} s") from None
    log.write_text(proc.stdout + "\n" + proc.stderr)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
        errors = [ln for ln in lines if "error" in ln.lower()] or lines
        raise RuntimeError(f"{' '.join(cmd[:2])} failed: {' | '.join(errors[:3])[:600]} (full log: {log})")


# ---------------------------------------------------------------------------- the check
class _NeedsBuild(Exception):
    """The check needs the C++ program, which is not built yet (a fenced check does not build it)."""


_ASK = object()


def check_native(artifact: str | os.PathLike, *, seed: int = 0, cache_dir: Path | None = None,
                 progress: Progress | None = None, toolchain=_ASK, build: bool = True) -> NativeCheck:
    """Run ``artifact`` without Python and compare with the Python result, in this process (the CLI and
    the window: :func:`check_native_fenced`; this runs inside its job, and in tests).

    TorchScript files are run by the LibTorch program; ONNX files report whether ONNX Runtime's C
    API is usable here. Raises :class:`BadInput` only for files that are no model at all. ``toolchain``:
    :func:`toolchain_problem` as the caller found it; ``build=False``: raise :class:`_NeedsBuild`
    rather than build the program.
    """
    path = Path(artifact)
    model = load_model(path)
    if model.format == "onnx":
        return _onnx_c_check(path)
    if model.format != "torchscript":
        return NativeCheck(path, "libtorch", None,
                           f"a {model.format} file has no C++ loader here; the native check runs TorchScript "
                           "(.pt) artifacts with LibTorch")
    inputs = _recorded_inputs(path, model)
    if not inputs or any(not s.shape and not s.example for s in inputs):
        raise BadInput(f"{path.name}: the shapes of its inputs are unknown; convert it with this app "
                       "(which records them) or check a TorchScript file saved with its signature")
    problem = toolchain_problem() if toolchain is _ASK else toolchain
    if problem:
        return NativeCheck(path, "libtorch", None, problem)
    folder = _program_dir(cache_dir)
    if not build and not ((folder / "built.ok").is_file() and (folder / "build" / "native_check").is_file()):
        raise _NeedsBuild()
    try:
        program, build_s = build_libtorch_program(cache_dir, progress)
    except RuntimeError as e:
        return NativeCheck(path, "libtorch", False, f"the LibTorch program did not build: {e}")
    return _run_libtorch(path, model, inputs, program, build_s, seed, progress)


def _recorded_inputs(path: Path, model):
    """The artifact's signature, or the one our pipeline wrote to the manifest beside it."""
    manifest = read_manifest(path) if model.inputs_guessed else None
    if manifest:
        try:
            return [TensorSpec.from_json(d) for d in manifest["inputs"]]
        except (KeyError, TypeError):
            pass
    return model.inputs


def _run_libtorch(path: Path, model, inputs, program: Path, build_s: float, seed: int,
                  progress: Progress | None) -> NativeCheck:
    if inputs != model.inputs:
        model = with_inputs(model, inputs)
    int_high = int_range_of(model)
    sets = [("random inputs", make_feeds(inputs, seed=seed + 1, int_high=int_high))]
    sizes = second_sizes(inputs)
    if sizes:
        label = ", ".join(f"{k}={v}" for k, v in sizes.items())
        sets.append((f"second size ({label})", make_feeds(inputs, seed=seed + 2, sizes=sizes, int_high=int_high)))
    metrics: list[OutputMetrics] = []
    timings: dict[str, float] = {}
    result = NativeCheck(path, "libtorch", True, build_seconds=build_s, built=build_s > 0, program=program)
    names = [o.name for o in model.outputs]
    for what, feeds in sets:
        if progress:
            progress(f"run {path.name} in C++ (LibTorch) on {what}", None)
        try:
            got, timing = run_libtorch_program(program, path, inputs, feeds)
        except RuntimeError as e:
            result.passed, result.reason = False, f"the C++ program failed on {what}: {e}"
            return result
        timings = timings or timing
        ref = model.run(feeds)
        if len(got) != len(ref):
            result.passed, result.reason = False, f"C++ returned {len(got)} outputs, Python {len(ref)}"
            return result
        for i, (r, g) in enumerate(zip(ref, got)):
            try:
                metrics.append(compare(names[i] if i < len(names) else f"output_{i}", r, g))
            except ValueError as e:
                result.passed, result.reason = False, f"on {what}: {e}"
                return result
    # the same file and the same kernels: anything beyond fp32 rounding (thread-order sums) is a
    # real difference between the C++ and the Python runtime
    verification = judge("fp32", metrics, [w for w, _ in sets])
    result.verification, result.checks, result.timings_ms = verification, verification.checks, timings
    result.passed = verification.passed
    result.reason = verification.failure or ""
    return result


def run_libtorch_program(program: Path, artifact: Path, inputs, feeds) -> tuple[list[np.ndarray], dict]:
    """Run the C++ program once; returns its outputs (numpy) and its timings."""
    with tempfile.TemporaryDirectory(prefix="deploy-studio-native-") as tmp:
        folder = Path(tmp)
        args, record = [], []
        for i, spec in enumerate(inputs):
            arr = np.ascontiguousarray(feeds[spec.name])
            cast = ""
            if spec.dtype == "bfloat16":  # numpy has no bfloat16: send float32, cast in C++
                arr, cast = arr.astype(np.float32), "bfloat16"
            else:
                arr = arr.astype(np.dtype(spec.dtype), copy=False)
            file = folder / f"input_{i}.bin"
            file.write_bytes(arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes())
            dtype = "bool" if arr.dtype == np.bool_ else str(arr.dtype)
            shape = "x".join(str(d) for d in arr.shape)
            args.append(f"{file}:{dtype}:{shape}" + (f":{cast}" if cast else ""))
            record.append({"name": spec.name, "file": file.name, "dtype": dtype, "shape": list(arr.shape),
                           "cast_to": cast or None})
        (folder / "inputs.json").write_text(json.dumps({"byte_order": "little", "inputs": record}, indent=2))
        out = folder / "out"
        out.mkdir()
        cmd = [str(program), str(artifact), str(out), str(RUNS), *args]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"no result within {RUN_TIMEOUT_S} s") from None
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()
            raise RuntimeError((tail[-1] if tail else f"exit code {proc.returncode}")[:500])
        report = json.loads((out / "outputs.json").read_text())
        outputs = []
        for o in report["outputs"]:
            dtype = np.dtype(o["dtype"]).newbyteorder("<")
            arr = np.fromfile(out / o["file"], dtype=dtype).reshape(o["shape"])
            outputs.append(arr.astype(np.float32) if arr.dtype.kind == "f" else arr)
        timings = {k: round(float(report[k]), 3) for k in ("load_ms", "first_run_ms", "mean_run_ms")}
        timings["runs"] = report["runs"]
        timings["threads"] = report["threads"]
        return outputs, timings


# ---------------------------------------------------------------------------- ONNX Runtime C API
def onnxruntime_c_headers() -> Path | None:
    """The folder holding ``onnxruntime_c_api.h`` inside the onnxruntime wheel, if it ships one."""
    try:
        import onnxruntime
    except ImportError:
        return None
    root = Path(onnxruntime.__file__).parent
    for header in root.rglob("onnxruntime_c_api.h"):
        return header.parent
    return None


def _onnx_c_check(path: Path) -> NativeCheck:
    headers = onnxruntime_c_headers()
    if headers is None:
        return NativeCheck(path, "onnxruntime-c", None,
                           "not feasible here: the onnxruntime wheel ships no C headers (onnxruntime_c_api.h); "
                           "install an ONNX Runtime release archive (it has include/ and lib/) to build C programs")
    return NativeCheck(path, "onnxruntime-c", None,
                       f"ONNX Runtime C headers found in {headers}, but the C API check is not implemented yet; "
                       "the LibTorch check covers TorchScript artifacts")


# ---------------------------------------------------------------------------- fenced: the CLI's and the window's
def check_native_fenced(artifact: str | os.PathLike, *, seed: int = 0, cache_dir: Path | None = None,
                        progress: Progress | None = None) -> NativeCheck:
    """:func:`check_native` with everything that reads the artifact in a fenced job (:func:`app.jobs.run_job`):
    loading it (a TorchScript's code, ExecuTorch's and ONNX's native parsers), the Python run, and the
    C++ program that loads and runs it (started from inside the job, so it is fenced too: it writes only
    the job's temporary folder). A native crash is "the job's process crashed (signal N)", not the CLI's.

    The program is built (once per torch version) by a second fenced job that may write only the
    program cache; it compiles this module's own source, nothing from the artifact."""
    from app.jobs import run_job

    path = Path(artifact)
    root = Path(cache_dir) if cache_dir else cache_root()
    payload = {"artifact": str(path), "seed": int(seed), "cache": str(root), "toolchain": toolchain_problem()}
    built = None
    out = _checked(path, run_job, payload, progress)
    if isinstance(out, dict) and out.get("need_build"):
        root.mkdir(parents=True, exist_ok=True)   # the build job may write beneath it only
        env = {k: os.environ[k] for k in ("PATH", "CXX") if k in os.environ}
        # the compiler runs in a grandchild: the job itself neither reports nor uses CPU time meanwhile
        built = run_job(build_job, dict(payload, env=env), progress=progress,
                        writable=[root], stall=BUILD_TIMEOUT_S + 60)
        if not isinstance(built, dict) or not isinstance(built.get("seconds"), (int, float)):
            why = built.get("error") if isinstance(built, dict) else None
            return NativeCheck(path, "libtorch", False, f"the LibTorch program did not build: {_text(why)}")
        out = _checked(path, run_job, payload, progress)
    result = _from_job(path, out)
    if built:
        result.built, result.build_seconds = True, float(built["seconds"])
    return result


def _checked(path: Path, run_job, payload: dict, progress):
    """The check job's answer; a crash in native code that reads the file (ExecuTorch's, LibTorch's) is
    one line naming the file (exit code 1, as ``inspect`` says it)."""
    try:
        return run_job(native_check_job, payload, progress=progress,
                       stall=RUN_TIMEOUT_S + 60)  # the C++ program runs in a grandchild (it has its own limit)
    except ConversionFailed as e:
        if "crashed (signal" not in str(e):
            raise
        raise ConversionFailed(f"{e} while checking {_text(path.name, 200)}: the file is damaged or made to crash "
                               "its reader (nothing outside the fence was affected); re-export it") from None


def native_check_job(payload: dict, progress=None, should_cancel=None) -> dict:
    """:func:`check_native` in the fenced child (``app.serving.native_check:native_check_job``); never builds."""
    try:
        result = check_native(payload["artifact"], seed=payload["seed"], cache_dir=Path(payload["cache"]),
                              progress=progress, toolchain=payload["toolchain"], build=False)
    except _NeedsBuild:
        return {"need_build": True}
    return {"runtime": result.runtime, "passed": result.passed, "reason": result.reason,
            "verification": result.verification, "program": str(result.program) if result.program else None,
            "timings_ms": result.timings_ms, "checks": result.checks}


def build_job(payload: dict, progress=None, should_cancel=None) -> dict:
    """Build the C++ program in a fenced child that may write only the program cache (``build_job``)."""
    os.environ.update(payload.get("env") or {})
    try:
        _, seconds = build_libtorch_program(Path(payload["cache"]), progress)
    except RuntimeError as e:
        return {"error": str(e)}
    return {"seconds": seconds}


def _text(value, limit: int = 600) -> str:
    from app.artifacts.placement import shown

    return shown("" if value is None else value, limit)


def _from_job(path: Path, out) -> NativeCheck:
    """The job's answer as a :class:`NativeCheck`, each field checked (it came out of the fence)."""
    from app.jobs import InvalidResult

    number = (int, float)
    ok = (isinstance(out, dict) and out.get("runtime") in ("libtorch", "onnxruntime-c")
          and out.get("passed") in (True, False, None) and isinstance(out.get("reason"), str)
          and isinstance(out.get("timings_ms"), dict) and all(isinstance(v, number) for v in out["timings_ms"].values())
          and isinstance(out.get("checks"), list) and all(isinstance(c, str) for c in out["checks"])
          and (out.get("verification") is None or isinstance(out["verification"], Verification))
          and (out.get("program") is None or isinstance(out["program"], str)))
    if not ok:
        raise InvalidResult("the job's process sent an invalid result (not a native check's); nothing was kept")
    return NativeCheck(path, out["runtime"], out["passed"], _text(out["reason"]), out["verification"],
                       program=Path(_text(out["program"], 1000)) if out["program"] else None,
                       timings_ms={_text(k, 40): v for k, v in out["timings_ms"].items()},
                       checks=[_text(c, 200) for c in out["checks"]])
