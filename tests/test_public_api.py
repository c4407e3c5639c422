"""The public API: what the README documents is what ``tfserve_magic.__all__`` exports, every
name resolves (lazily), completion shows exactly those names, and the errors share one root."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import tfserve_magic

README = Path(__file__).resolve().parents[1] / "README.md"


def _documented() -> set[str]:
    text = README.read_text(encoding="utf-8")
    found = re.search(r"Public names \(`tfserve_magic.__all__`\):(.*?)\n\n", text, re.S)
    assert found, "the README lost its 'Public names (`tfserve_magic.__all__`):' paragraph"
    return set(re.findall(r"`([A-Za-z_]+)`", found.group(1)))


def test_all_is_what_the_readme_documents() -> None:
    assert set(tfserve_magic.__all__) == _documented()


def test_every_public_name_resolves_and_completion_shows_them() -> None:
    for name in tfserve_magic.__all__:
        assert getattr(tfserve_magic, name) is not None, name
    assert dir(tfserve_magic) == sorted(tfserve_magic.__all__)


def test_an_unknown_name_is_an_attribute_error_naming_it() -> None:
    with pytest.raises(AttributeError, match=r"^module 'tfserve_magic' has no attribute 'strat'$"):
        tfserve_magic.strat  # type: ignore[attr-defined]  # noqa: B018


def test_the_errors_users_catch_share_one_root() -> None:
    from tfserve_magic.operations.labels import LabelError
    from tfserve_magic.serving.errors import ConfigError, LoadError, NotFound, StatusError
    from tfserve_magic.serving.models.repository import RepositoryError

    root = tfserve_magic.TFServeError
    for error in (tfserve_magic.ServingError, tfserve_magic.LaunchError, LabelError, ConfigError,
                  StatusError, NotFound, RepositoryError, LoadError):
        assert issubclass(error, root), error
    assert tfserve_magic.ServingError is not StatusError


def test_importing_the_package_imports_nothing_heavy() -> None:
    code = ("import sys, tfserve_magic; dir(tfserve_magic); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'IPython', 'ipywidgets', 'numpy', 'tornado')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == "[]"
