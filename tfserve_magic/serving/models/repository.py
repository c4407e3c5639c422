"""The model repository: a base path and its numeric version folders.

Pure and synchronous (the watcher calls it off the event loop). Mirrors
``file_system_storage_path_source.cc``: a child whose name parses as an int64 is a version
(``00000123`` is 123); any other name, such as a temporary ``.tmp-3`` being written, is skipped.
"""

from __future__ import annotations

import logging
import os
import re

from tfserve_magic.errors import TFServeError

__all__ = ["RepositoryError", "outside_base_path", "parse_version", "scan_versions"]

log = logging.getLogger(__name__)

_INT64_MAX = 2**63 - 1
_DIGITS = re.compile(r"[+-]?[0-9]+\Z")


class RepositoryError(TFServeError):
    """The base path cannot be listed (missing, not a folder, not readable)."""


def parse_version(name: str) -> int | None:
    """``absl::SimpleAtoi`` for int64 on a folder name, or None if it is not a version."""
    text = name.strip()
    if not _DIGITS.match(text):
        return None
    value = int(text)
    if not -_INT64_MAX - 1 <= value <= _INT64_MAX:
        return None
    return value


def scan_versions(base_path: str) -> dict[int, str]:
    """Map version number -> absolute path of its folder under ``base_path``."""
    try:
        names = os.listdir(base_path)
    except FileNotFoundError:
        raise RepositoryError(f"Could not find base path {base_path} for servable") from None
    except NotADirectoryError:
        raise RepositoryError(f"Base path {base_path} is not a directory") from None
    except OSError as exc:
        raise RepositoryError(f"Could not list base path {base_path}: {exc.strerror}") from None
    versions: dict[int, str] = {}
    for name in sorted(names):
        number = parse_version(name)
        if number is None or number < 0:
            continue
        if number in versions:
            log.warning("Two version folders map to version %d in %s: %s and %s; using %s",
                        number, base_path, os.path.basename(versions[number]), name, name)
        versions[number] = os.path.join(os.path.abspath(base_path), name)
    return versions


def outside_base_path(base_path: str, version_path: str) -> str | None:
    """Where ``version_path`` really is, when a symbolic link takes it outside ``base_path``
    (such a folder is not served); None when it stays inside."""
    if "://" in base_path:
        return None
    base = os.path.realpath(base_path)
    target = os.path.realpath(version_path)
    return None if os.path.commonpath([base, target]) == base else target
