"""Exporting again, as a notebook run twice does: an identical model is not written twice, a
different one goes to the next version, and an explicit version is never overwritten."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tfserve_magic.demo.models import build_half_plus_two
from tfserve_magic.operations.export import ExportError, export_version


def _plus(amount: float):
    import tensorflow as tf

    class Plus(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.amount = tf.Variable(amount)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def serve(self, x):
            return {"y": x + self.amount}

    module = Plus()
    return module, {"serving_default": module.serve}


def test_the_same_model_again_writes_nothing_and_says_so(tmp_path: Path) -> None:
    base = tmp_path / "plus"
    module, signatures = _plus(1.0)
    first = export_version(module, str(base), signatures=signatures)
    assert (first.version, first.created) == (1, True)
    # A new object with the same graph and values (a notebook cell run again): the same model.
    module, signatures = _plus(1.0)
    again = export_version(module, str(base), signatures=signatures)
    assert (again.version, again.path, again.created) == (1, str(base / "1"), False)
    assert str(again) == (f"Version 1 at {base}/1 already holds this model (identical): "
                          "nothing written")
    assert sorted(os.listdir(base)) == ["1"]  # and no staging folder left behind
    # Asked for explicitly, the same.
    assert not export_version(module, str(base), 1, signatures=signatures).created


def test_a_different_model_goes_to_the_next_version_never_over_one(tmp_path: Path) -> None:
    base = tmp_path / "plus"
    module, signatures = _plus(1.0)
    export_version(module, str(base), signatures=signatures)
    changed, changed_signatures = _plus(2.0)
    second = export_version(changed, str(base), signatures=changed_signatures)
    assert (second.version, second.created) == (2, True)
    assert str(second) == f"Exported version 2 to {base}/2"
    with pytest.raises(ExportError, match=r"^version 1 already exists at .*/plus/1 and holds a "
                       r"different model: export without a version to add the next one$"):
        export_version(changed, str(base), 1, signatures=changed_signatures)
    assert sorted(os.listdir(base)) == ["1", "2"]


def test_the_demo_models_build_again_without_error(tmp_path: Path) -> None:
    base = tmp_path / "half_plus_two"
    assert build_half_plus_two(str(base), 1) == build_half_plus_two(str(base), 1)
    assert sorted(os.listdir(base)) == ["1"]
