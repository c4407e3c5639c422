"""TensorFlow's native start-up lines, kept out of a notebook's cells.

Importing TensorFlow in a kernel, and its first look for devices, write C++ log lines straight
to file descriptor 2, regardless of ``TF_CPP_MIN_LOG_LEVEL``: absl's pre-init warning, oneDNN and
CPU-instruction notices, "failed call to cuInit ... (303)" on a machine without a GPU. Jupyter
shows them as red boxes under the first TensorFlow cell, where a person looks for errors.
``%load_ext tfserve_magic`` puts a filter on fd 2 of a Jupyter kernel for the kernel's life: the
known lines (:func:`~tfserve_magic.serving.process.native_log.is_startup_noise`, the list the
server's own log uses) are dropped, everything else passes unchanged and in order (a line not
ended within a tenth of a second passes as it is). Terminal IPython is left alone.
"""

from __future__ import annotations

import os
import select
import sys
import threading
from typing import Any

from tfserve_magic.serving.process.native_log import is_startup_noise

__all__ = ["filter_native_noise"]

_installed = threading.Lock()
_PARTIAL_WAIT = 0.1  # seconds a line without its newline is held before it passes as it is


def _is_kernel(ipython: Any) -> bool:
    return type(ipython).__name__ == "ZMQInteractiveShell"


def filter_native_noise(ipython: Any) -> bool:
    """In a Jupyter kernel, drop TensorFlow's known start-up lines from fd 2 (once per
    process); returns whether the filter is in place."""
    if not _is_kernel(ipython) or not hasattr(os, "pipe"):
        return False
    if not _installed.acquire(blocking=False):
        return True  # already filtering
    sys.stderr.flush()
    target = os.dup(2)  # where fd 2 went: the kernel's own capture, shown in the cell
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    threading.Thread(target=_copy, args=(read_fd, target), name="tfserve-native-noise",
                     daemon=True).start()
    return True


def _copy(read_fd: int, target: int) -> None:
    pending = b""
    while True:
        ready, _, _ = select.select([read_fd], [], [], _PARTIAL_WAIT if pending else None)
        if not ready:  # a partial line, and nothing more came: let it through
            os.write(target, pending)
            pending = b""
            continue
        chunk = os.read(read_fd, 65536)
        if not chunk:
            if pending:
                os.write(target, pending)
            return
        *lines, pending = (pending + chunk).split(b"\n")
        kept = b"".join(line + b"\n" for line in lines
                        if not is_startup_noise(line.decode("utf-8", "replace")))
        if kept:
            os.write(target, kept)
