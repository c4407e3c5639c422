"""The error model: everything the package raises on purpose is a ``TFServeError`` subclass.

An AST scan of the package for ``raise <built-in error>`` and for exception classes built on a
built-in error, with a short allow-list that says why each remaining one is not a refusal a
user meets. A user-reachable refusal raised as ``ValueError`` would slip past ``except
TFServeError`` in the magics and the server extension.
"""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

import pytest

import tfserve_magic
from tfserve_magic.errors import TFServeError

PACKAGE = Path(tfserve_magic.__file__).parent
BUILTIN_ERRORS = frozenset(name for name, value in vars(builtins).items()
                           if isinstance(value, type) and issubclass(value, BaseException))

# (module, built-in name) -> why it is not one of the package's refusals.
ALLOWED_RAISES = {
    ("tfserve_magic", "AttributeError"): "module __getattr__: Python's protocol for a missing name",
    ("tfserve_magic.serving.models.tensorflow_import", "AttributeError"):
        "the lazy TensorFlow module's __getattr__: Python's protocol for a missing name",
    ("tfserve_magic.serving.process.http1", "ValueError"):
        "the HTTP/1.1 parser's own signal, caught by the connection and answered 400",
    ("tfserve_magic.lifecycle.spawn", "EOFError"):
        "the handshake reader's signal that the child closed stdout, caught by its caller",
    ("tfserve_magic.notebook.magics", "RuntimeError"):
        "the magics class used without an IPython shell: a programming error, not a refusal",
}
# Exception classes built on a built-in error: the root, and private control-flow signals.
ALLOWED_CLASSES = {
    ("tfserve_magic.errors", "TFServeError"): "the root itself",
    ("tfserve_magic.serving.process.http1", "_Stop"): "stops a parse; never leaves the module",
    ("tfserve_magic.notebook.magics", "_UsageProblem"):
        "argparse's usage text, printed by the magic that parsed it",
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def built_in_errors(source: str) -> tuple[set[str], set[str]]:
    """(built-in errors raised, exception classes built directly on a built-in) in ``source``."""
    raised, classes = set(), set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Raise) and node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(target, ast.Name) and target.id in BUILTIN_ERRORS:
                raised.add(target.id)
        elif isinstance(node, ast.ClassDef) and any(
                isinstance(b, ast.Name) and b.id in BUILTIN_ERRORS for b in node.bases):
            classes.add(node.name)
    return raised, classes


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if "labextension" not in p.parts)


def test_the_scan_sees_every_module() -> None:
    assert len(SOURCES) > 50 and PACKAGE / "lifecycle" / "launcher.py" in SOURCES


@pytest.mark.parametrize("path", SOURCES, ids=_module_name)
def test_deliberate_errors_descend_from_the_root(path: Path) -> None:
    module = _module_name(path)
    raised, classes = built_in_errors(path.read_text(encoding="utf-8"))
    stray = sorted(name for name in raised if (module, name) not in ALLOWED_RAISES)
    assert stray == [], (f"{module} raises {stray}: raise a TFServeError subclass (or add it "
                         "to ALLOWED_RAISES with the reason)")
    mixed = sorted(name for name in classes if (module, name) not in ALLOWED_CLASSES)
    assert mixed == [], (f"{module} defines {mixed} on a built-in error: descend from "
                         "TFServeError only (an error that is also a ValueError is caught by "
                         "handlers meant for something else)")


def test_the_allow_lists_name_only_what_is_still_there() -> None:
    found = set()
    for path in SOURCES:
        raised, classes = built_in_errors(path.read_text(encoding="utf-8"))
        found |= {(_module_name(path), n) for n in raised | classes}
    assert set(ALLOWED_RAISES) | set(ALLOWED_CLASSES) <= found


def test_a_planted_value_error_and_a_mixed_class_are_caught() -> None:
    # A test that cannot fail is a defect: the scan finds the two shapes it forbids.
    raised, classes = built_in_errors(
        "def f():\n    raise ValueError('no server named x')\n"
        "class DeployError(TFServeError, ValueError):\n    pass\n")
    assert raised == {"ValueError"} and classes == {"DeployError"}


def test_public_errors_are_not_built_in_errors_too() -> None:
    from tfserve_magic.client import RequestError, ServingError
    from tfserve_magic.lifecycle.launcher import LaunchError
    from tfserve_magic.lifecycle.refusals import (
        AmbiguousName,
        ConnectError,
        NotOurServer,
        UnknownServer,
    )
    from tfserve_magic.operations.deploy import DeployError
    from tfserve_magic.operations.export import ExportError
    from tfserve_magic.operations.labels import LabelError
    from tfserve_magic.serving.models.repository import RepositoryError
    from tfserve_magic.serving.status_errors import ConfigError, LoadError, StatusError
    from tfserve_magic.status import ProtocolError

    for error in (ServingError, RequestError, ProtocolError, LaunchError, UnknownServer,
                  AmbiguousName, NotOurServer, ConnectError, ExportError, LabelError,
                  DeployError, StatusError, ConfigError, RepositoryError, LoadError):
        assert issubclass(error, TFServeError), error
        assert [c for c in error.__mro__ if c.__module__ == "builtins"] == [
            Exception, BaseException, object], error
