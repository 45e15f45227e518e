"""Child-process job targets that misbehave on purpose (crash, hang, raise)."""

import os
import time


def abort(payload, progress, should_cancel):
    progress("about to abort", None)
    os.abort()


def hang(payload, progress, should_cancel):
    progress("hanging", None)
    if payload:  # a folder: leave a temporary behind, as a converter would mid-write
        from app.files import work_dir

        tmp = work_dir(payload)
        (tmp / "partial.onnx").write_bytes(b"half")
    while True:
        time.sleep(0.05)


def echo(payload, progress, should_cancel):
    for i in range(3):
        progress("step", (i + 1) / 3)
    return {"got": payload, "pid": os.getpid()}


def bad_input(payload, progress, should_cancel):
    from app.errors import BadInput

    raise BadInput("the file is unreadable")
