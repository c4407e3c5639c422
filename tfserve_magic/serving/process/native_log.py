"""TensorFlow's native start-up noise, kept out of the server log unless ``--verbose``.

Importing TensorFlow and discovering devices writes C++ log lines straight to file descriptor 2,
below Python's logging and regardless of ``TF_CPP_MIN_LOG_LEVEL`` (absl's messages from before
its own initialisation): the absl pre-init warning, "Could not find cuda drivers", "failed call
to cuInit ... (303)" on a machine without a GPU, CPU-instruction and oneDNN notices. While
TensorFlow starts, stderr goes through a pipe that drops exactly those known lines; everything
else (a real error, a traceback) passes through unchanged and in order.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Iterator

__all__ = ["is_startup_noise", "quiet_native_startup"]

_NOISE = re.compile("|".join((
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$",
    r"\] Could not find cuda drivers on your machine, GPU will not be used\.$",
    r"\] failed call to cuInit: ",
    r"\] This TensorFlow binary is optimized to use available CPU instructions",
    r"^To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler",
    r"\] oneDNN custom operations are on\.",
    r"\] Unable to register cu(?:DNN|FFT|BLAS) factory",
    r"\] computation placer already registered",
    r"TF-TRT Warning: Could not find TensorRT",
)))


def is_startup_noise(line: str) -> bool:
    """Whether ``line`` is one of TensorFlow's known native start-up messages."""
    return _NOISE.search(line.rstrip("\r\n")) is not None


def _copy(read_fd: int, out_fd: int) -> None:
    with os.fdopen(read_fd, "rb") as pipe:
        for line in pipe:
            if not is_startup_noise(line.decode("utf-8", "replace")):
                os.write(out_fd, line)


@contextlib.contextmanager
def quiet_native_startup(verbose: bool) -> Iterator[None]:
    """Within the block, drop TensorFlow's known start-up lines from fd 2 (unless verbose)."""
    if verbose:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    copier = threading.Thread(target=_copy, args=(read_fd, saved), name="tfserve-stderr",
                              daemon=True)
    copier.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last writer goes: the copier drains it and stops
        copier.join(10)
        os.close(saved)
