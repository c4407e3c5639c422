"""Exporting a model as the next version of a served base path, atomically.

The SavedModel is written under a temporary, non-numeric sibling (which the server ignores) and
renamed into place, so a polling server never sees a half-written version (TF Serving gives no
atomicity of its own). Works for Keras models (``model.export``) and ``tf.Module``s with
``tf.function`` signatures. TensorFlow is imported only when a function here runs.

Exporting again is safe: a notebook run twice exports the same model twice. When the version it
would compare with (the one asked for, else the newest) already holds an identical model (same
SavedModel fingerprint: graph, signatures, object graph and variable values, names aside),
nothing is written and the result says so (``created`` False); a different model goes to the
next version, and never over an existing one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tfserve_magic.errors import TFServeError
from tfserve_magic.serving.models.repository import scan_versions

__all__ = ["ExportError", "ExportResult", "export_version", "next_version"]


class ExportError(TFServeError):
    """A version that cannot be written: a negative number, or one that exists and holds a
    different model."""


@dataclass(frozen=True)
class ExportResult:
    """Where a model was exported. ``created`` is False when that version already held an
    identical model and nothing was written."""

    version: int
    path: str
    created: bool = True

    def __str__(self) -> str:
        if self.created:
            return f"Exported version {self.version} to {self.path}"
        return (f"Version {self.version} at {self.path} already holds this model (identical): "
                "nothing written")


def next_version(base_path: str) -> int:
    """One more than the highest numeric version folder (1 for an empty or new base path)."""
    if not os.path.isdir(base_path):
        return 1
    return max(scan_versions(base_path), default=0) + 1


def _is_keras(model: Any) -> bool:
    return any(cls.__module__.startswith(("keras", "tf_keras")) for cls in type(model).__mro__)


@contextlib.contextmanager
def _quiet_save() -> Iterator[None]:
    """A save without TensorFlow's INFO chatter, leaving Python's logging as it was.

    In a notebook TensorFlow gives its logger its own stdout handler at level INFO; saving also
    logs through absl, whose first call adds a stderr handler to the root logger when it has
    none (``logging.basicConfig``). Every TensorFlow message then printed twice, once in red:
    "INFO:tensorflow:Assets written to ...". Warnings and errors still show."""
    tf_logger = logging.getLogger("tensorflow")
    level, root_handlers = tf_logger.level, list(logging.root.handlers)
    tf_logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        tf_logger.setLevel(level)
        for handler in logging.root.handlers[:]:
            if handler not in root_handlers:  # absl's implicit basicConfig: not the user's
                logging.root.removeHandler(handler)


def _fingerprint(path: str) -> tuple[int, ...] | None:
    """What makes two SavedModels the same model: TF's fingerprint without the checksum of
    saved_model.pb (which holds generated names, new in every save). None without one."""
    import tensorflow as tf

    try:
        found = tf.saved_model.experimental.read_fingerprint(path)
    except (OSError, ValueError, tf.errors.OpError):
        return None  # an older export, or no SavedModel here
    return (found.graph_def_program_hash, found.signature_def_hash,
            found.saved_object_graph_hash, found.checkpoint_hash)


def export_version(model: Any, base_path: str, version: int | None = None,
                   signatures: Any = None) -> ExportResult:
    """Save ``model`` as ``base_path/<version>`` (default: the next version), atomically.

    When that version (default: the newest) already holds an identical model, nothing is
    written and the result has ``created=False``; an explicit ``version`` that holds a different
    model raises :class:`ExportError`."""
    import tensorflow as tf

    base_path = os.path.abspath(base_path)
    os.makedirs(base_path, exist_ok=True)
    if version is not None and int(version) < 0:
        raise ExportError(f"version must not be negative, got {version}")
    newest = max(scan_versions(base_path), default=None)
    compared = int(version) if version is not None else newest
    staging = os.path.join(base_path, f".tmp-{uuid.uuid4().hex[:8]}")
    try:
        with _quiet_save():
            if _is_keras(model) and signatures is None:
                model.export(staging, format="tf_saved_model", verbose=False)
            else:
                tf.saved_model.save(model, staging, signatures=signatures)
        if compared is not None:
            existing = os.path.join(base_path, str(compared))
            if os.path.exists(existing):
                same = _fingerprint(staging)
                if same is not None and same == _fingerprint(existing):
                    shutil.rmtree(staging)
                    return ExportResult(compared, existing, created=False)
                if version is not None:
                    raise ExportError(
                        f"version {version} already exists at {existing} and holds a different "
                        "model: export without a version to add the next one")
        final = os.path.join(base_path, str(next_version(base_path) if version is None
                                            else int(version)))
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportResult(int(os.path.basename(final)), final)
