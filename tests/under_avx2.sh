#!/bin/sh
# Run pytest as on an AVX2-only x86 CPU (no AVX-512, no VNNI, no BF16), on any x86-64 machine.
#
#   sh tests/under_avx2.sh tests/test_int8_isa.py -q          (needs: apt-get install qemu-user)
#   sh tests/under_avx2.sh --python benchmarks/bench_int8_isa.py --runs 5     (a script instead of pytest)
#
# qemu-user's CPU model has AVX2 but none of AVX-512, so ONNX Runtime, oneDNN and PyTorch pick their
# AVX2 kernels from CPUID: INT8 numerics are those of an AVX2-only machine (checked: a MatMulInteger of
# 255 x 127 over 64 terms gives the saturated 1,048,544 under it and the exact 2,072,640 natively).
# Every Python child (the job processes, the fork server) runs under it too: sys.executable is a
# wrapper that starts qemu again. Roughly 5-20x slower than native: run a few tests, not the suite.
#
# What differs from a real AVX2 machine: /proc/cpuinfo is the host's, so DEPLOY_STUDIO_CPU_FLAGS
# gives the app AVX2 flags; qemu-user cannot install seccomp filters, so the job fence is applied
# without its seccomp part here (sitecustomize below), and without its memory and CPU-time limits;
# jobs start by spawn rather than through the fork server (qemu-user's fork of a threaded process is broken).
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$repo/.venv}
command -v qemu-x86_64 >/dev/null || { echo "qemu-x86_64 is missing: apt-get install qemu-user" >&2; exit 2; }
[ -x "$venv/bin/python" ] || { echo "no virtual environment at $venv (README command 2 makes it)" >&2; exit 2; }
real=$(readlink -f "$venv/bin/python")
wrap=$(mktemp -d "${TMPDIR:-/tmp}/avx2-venv-XXXXXX")
trap 'rm -rf "$wrap"' EXIT
mkdir -p "$wrap/bin" "$wrap/site"
cp "$venv/pyvenv.cfg" "$wrap/"
ln -s "$venv/lib" "$wrap/lib"
cat > "$wrap/bin/python" <<EOF
#!/bin/sh
exec $(command -v qemu-x86_64) -0 "$wrap/bin/python" "$real" "\$@"
EOF
chmod +x "$wrap/bin/python"
cat > "$wrap/site/sitecustomize.py" <<'EOF'
# qemu-user cannot install seccomp filters: app.safety.sandbox skips seccomp on a machine name it does not know
import platform

_machine = platform.machine
platform.machine = lambda: "x86_64-under-qemu" if _machine() == "x86_64" else _machine()

# qemu-user's fork of a process with threads breaks the child's first new thread (an rcu assertion,
# exit 127): jobs start by spawn instead of through the fork server
import multiprocessing as _mp

_get_context = _mp.get_context


class _SpawnForForkserver:
    def __init__(self):
        self._context = _get_context("spawn")

    def set_forkserver_preload(self, modules):
        pass

    def __getattr__(self, name):
        return getattr(self._context, name)


_mp.get_context = lambda method=None: _SpawnForForkserver() if method == "forkserver" else _get_context(method)
EOF
cd "$repo"
export DEPLOY_STUDIO_CPU_FLAGS="${DEPLOY_STUDIO_CPU_FLAGS:-fpu sse sse2 ssse3 sse4_1 sse4_2 popcnt avx f16c fma bmi1 bmi2 avx2}"
export PYTHONPATH="$wrap/site${PYTHONPATH:+:$PYTHONPATH}"
# qemu-user maps the guest's address space up front: under the job fence's address-space limit it
# cannot start threads (an assertion in qemu, exit 127), and it is 5-20x slower than the CPU-time
# limit assumes. Both limits are off here (tests of the limits themselves do not hold under it).
export DEPLOYSTUDIO_JOB_MEMORY_MB="${DEPLOYSTUDIO_JOB_MEMORY_MB:-0}" DEPLOYSTUDIO_JOB_CPU_SECONDS="${DEPLOYSTUDIO_JOB_CPU_SECONDS:-0}"
if [ "${1:-}" = "--python" ]; then
  shift
  "$wrap/bin/python" "$@"
else
  "$wrap/bin/python" -m pytest -p no:cacheprovider "$@"
fi
