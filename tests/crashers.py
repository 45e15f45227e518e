"""Child-process job targets that misbehave on purpose (crash, hang, raise)."""

import os
import time


def abort(payload, progress, should_cancel):
    progress("about to abort", None)
    os.abort()


def hang(payload, progress, should_cancel):
    progress("hanging", None)
    if payload:  # a folder: leave a temporary behind, as a converter would mid-write
        from app.artifacts.atomic_output import work_dir

        tmp = work_dir(payload)
        (tmp / "partial.onnx").write_bytes(b"half")
    while True:
        time.sleep(0.05)


def hang_after_writing_pid(payload, progress, should_cancel):
    """Write this child's pid into the file ``payload``, then hang."""
    from pathlib import Path

    Path(payload).write_text(str(os.getpid()))
    while True:
        time.sleep(0.05)


def echo(payload, progress, should_cancel):
    for i in range(3):
        progress("step", (i + 1) / 3)
    return {"got": payload, "pid": os.getpid()}


def setting(payload, progress, should_cancel):
    """The job's value of the environment variable ``payload`` (None when unset)."""
    return os.environ.get(payload)


def bad_input(payload, progress, should_cancel):
    from app.errors import BadInput

    raise BadInput("the file is unreadable")


def try_everything(payload, progress, should_cancel):
    """What a model's code might try: write beside the model, connect out, send UDP; what happened."""
    import socket

    outcome = {}
    try:
        with open(payload["write"], "w") as f:
            f.write("pwned")
        outcome["write"] = "written"
    except OSError as e:
        outcome["write"] = f"blocked: {e.strerror}"
    try:
        socket.create_connection(("127.0.0.1", payload["port"]), timeout=5).close()
        outcome["tcp"] = "connected"
    except OSError as e:
        outcome["tcp"] = f"blocked: {e.strerror or e}"
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(b"x", ("127.0.0.1", payload["port"]))
        outcome["udp"] = "sent"
    except OSError as e:
        outcome["udp"] = f"blocked: {e.strerror or e}"
    with open("/proc/self/status") as f:
        outcome["vm_kb"] = next(int(line.split()[1]) for line in f if line.startswith("VmSize"))
    return outcome


def allocate(payload, progress, should_cancel):
    """Allocate ``payload`` bytes (a model with an absurd layer size)."""
    block = bytearray(payload)
    return len(block)


def spin(payload, progress, should_cancel):
    """Burn CPU until stopped."""
    while True:
        pass


def killed_after_allocating(payload, progress, should_cancel):
    """Touch ``payload`` bytes, then die by SIGKILL — what the kernel's out-of-memory killer does."""
    import signal

    block = bytearray(payload)
    block[::4096] = b"x" * len(block[::4096])
    os.kill(os.getpid(), signal.SIGKILL)


def disk_full(payload, progress, should_cancel):
    """Fail as a write does when the disk is full, naming the file it was writing."""
    import errno

    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), payload)


def returns_a_lock(payload, progress, should_cancel):
    import threading

    return {"lock": threading.Lock()}


def forge_result(payload, progress, should_cancel):
    """Code inside the job writes a frame of garbage on every pipe it holds (its result channel included)."""
    import struct

    junk = b"\x80\x04not json at all"
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}").startswith("pipe:") and int(name) > 2:
                os.write(int(name), struct.pack("!i", len(junk)) + junk)
        except OSError:
            pass
    return {"fine": True}


def bad_input_with_escapes(payload, progress, should_cancel):
    from app.errors import BadInput

    raise BadInput("\x1b]0;title\x07the file is \x1b[31munreadable")
