"""The real Colab bridge (``GoogleColabBridge``, not a replacement of it): found through the
``google.colab`` package, it asks Colab's frontend for ``google.colab.kernel.proxyPort(PORT)``
through ``google.colab.output.eval_js``, and falls back to the direct URL when that fails.

Only Colab's own package is provided here, as a package on ``sys.path`` with Colab's module
names and ``eval_js`` signature: that is the contract the bridge relies on."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tfserve_magic.notebook import colab

_OUTPUT_MODULE = '''
asked = []


def eval_js(script, ignore_result=False, timeout_sec=None):
    asked.append(script)
    if "FAIL" in __import__("os").environ:
        raise RuntimeError("no frontend answered eval_js")
    return "https://{}-colab.example/".format(script.split("(")[1].rstrip(")"))
'''


@pytest.fixture
def google_colab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A ``google.colab`` package importable for this test only (beside protobuf's google)."""
    package = tmp_path / "site" / "google" / "colab"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "output.py").write_text(_OUTPUT_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setattr(colab, "bridge", colab.GoogleColabBridge())
    yield
    for name in ("google.colab.output", "google.colab"):
        sys.modules.pop(name, None)


def test_the_real_bridge_asks_colab_for_the_proxy_url(google_colab) -> None:
    assert colab.in_colab() is True
    assert colab.colab_url(8501) == "https://8501-colab.example"
    from google.colab import output

    assert output.asked == ["google.colab.kernel.proxyPort(8501)"]


def test_the_real_bridge_falls_back_when_the_frontend_does_not_answer(
        google_colab, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAIL", "1")
    assert colab.in_colab() is True
    assert colab.colab_url(8501) is None


def test_outside_colab_there_is_no_colab_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(colab, "bridge", colab.GoogleColabBridge())
    assert colab.in_colab() is False and colab.colab_url(8501) is None
