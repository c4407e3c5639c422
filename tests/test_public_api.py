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
    from tfserve_magic.serving.models.repository import RepositoryError
    from tfserve_magic.serving.status_errors import ConfigError, LoadError, NotFound, StatusError

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


def test_every_public_function_is_typed() -> None:
    import inspect

    for name in tfserve_magic.__all__:
        value = getattr(tfserve_magic, name)
        if not inspect.isfunction(value):
            continue
        signature = inspect.signature(value)
        untyped = [p for p in signature.parameters.values()
                   if p.annotation is inspect.Parameter.empty]
        assert not untyped and signature.return_annotation is not inspect.Signature.empty, name


def test_what_the_teaching_notebooks_do_through_public_names_only(
        isolated_runtime: Path, tmp_path: Path, plus_version_builds: Path) -> None:
    """Versions, labels and policies of 02_versions_and_rollback.ipynb, by the public API."""
    import shutil

    base = tmp_path / "plus"
    shutil.copytree(plus_version_builds / "1", base / "1")
    started = tfserve_magic.start(str(base), name="lesson")  # names the model too
    server = tfserve_magic.find("lesson")
    assert (server.name, server.url) == (started.name, started.url)
    assert server.batching_parameters_file is None  # started without batching
    shutil.copytree(plus_version_builds / "2", base / "2")
    shutil.copytree(plus_version_builds / "3", base / "3")
    client = server.client

    policy = tfserve_magic.set_version_policy(client, "lesson", tfserve_magic.VersionPolicy.all())
    assert policy == "all {}"
    assert tfserve_magic.wait_for_versions(client, "lesson", [1, 2, 3]) == [1, 2, 3]
    assert tfserve_magic.move_label(client, "lesson", "canary", 2) == {"canary": 2}
    assert server.predict("lesson", [1.0], label="canary").tolist() == [3.0]
    with pytest.raises(tfserve_magic.LabelError, match="version 7"):
        tfserve_magic.move_label(client, "lesson", "canary", 7)
    assert tfserve_magic.remove_label(client, "lesson", "canary") == {}

    assert tfserve_magic.set_version_policy(client, "lesson", "specific { versions: 1 versions: 3 }") \
        == "specific { versions: 1 versions: 3 }"
    assert tfserve_magic.wait_for_versions(client, "lesson", [1, 3]) == [1, 3]
    states = {s.version: s.state for s in server.status("lesson")}
    assert states[3] is tfserve_magic.VersionState.AVAILABLE
    with pytest.raises(tfserve_magic.LabelError, match="no model named nothing"):
        tfserve_magic.set_version_policy(client, "nothing", "all {}")
    # A wait that cannot be met returns what is there at its deadline.
    assert tfserve_magic.wait_for_versions(client, "lesson", [2], timeout=0.5) == [1, 3]
    tfserve_magic.stop("lesson")
    with pytest.raises(tfserve_magic.TFServeError, match="no running server named lesson"):
        tfserve_magic.find("lesson")
