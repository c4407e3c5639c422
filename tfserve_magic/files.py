"""Files written whole or read from the end: the one atomic writer and the one log-tail reader.

Model config files, server records, monitoring and batching parameters are read by other
processes while we write them (a polling server, another kernel, the Jupyter server extension),
so every such write goes through :func:`write_atomically`: a temporary file in the same folder,
then a rename, so a reader sees the old file or the new one, never half of one. Server logs are
shown by their last lines, read by :func:`tail_lines`. Pure standard library; no package imports.
"""

from __future__ import annotations

import collections
import contextlib
import os
import tempfile

__all__ = ["tail_lines", "write_atomically"]


def write_atomically(path: str | os.PathLike[str], text: str) -> None:
    """Replace ``path`` with ``text`` in one step (temporary file + rename in the same folder)."""
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    fd, staging = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(staging, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staging)
        raise


def tail_lines(path: str | os.PathLike[str] | None, count: int) -> list[str]:
    """The last ``count`` non-blank lines of a text file; [] when there is no such file.

    Blank lines are dropped: in a server log they only push the lines that say why out of view.
    """
    if not path or count <= 0:
        return []
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return list(collections.deque(
                (line.rstrip("\n") for line in handle if line.strip()), maxlen=count))
    except (FileNotFoundError, IsADirectoryError):
        return []
