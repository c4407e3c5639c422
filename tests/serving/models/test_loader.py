"""The production loader on real SavedModels, in process: a signature run through the servable
gives what TensorFlow's own call of the same signature gives, whichever way the servable calls
it (the flat call for inputs that fit the signature, TensorFlow's keyword call otherwise), and
inputs that do not fit get TensorFlow's refusal with the signature's inputs spelled out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tfserve_magic.serving.status_errors import Code, StatusError


@pytest.fixture(scope="module")
def pixels_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from models import build_pixels

    base = tmp_path_factory.mktemp("models") / "pixels"
    build_pixels(str(base))
    return base


def servable_and_reference(base: Path):
    import tensorflow as tf

    from tfserve_magic.serving.models.loader import SavedModelServable

    path = str(base / "1")
    return SavedModelServable(path, ["serve"]), tf.saved_model.load(path).signatures


def reference_run(signatures, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in signatures["serving_default"](**inputs).items()}


def assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].dtype == want[name].dtype, name
        np.testing.assert_array_equal(got[name], want[name])


def test_several_inputs_in_any_order_give_tensorflows_answer(multi_io: Path) -> None:
    servable, signatures = servable_and_reference(multi_io)
    a, b = np.float32([1, 2, 3]), np.float32([4, 5, 6])
    want = reference_run(signatures, {"a": a, "b": b})
    assert_same(servable.run("serving_default", {"a": a, "b": b}), want)
    assert_same(servable.run("serving_default", {"b": b, "a": a}), want)
    np.testing.assert_array_equal(want["product"], [4, 10, 18])


def test_inputs_of_other_dtypes_are_converted_as_tensorflow_would(ints_model: Path) -> None:
    servable, signatures = servable_and_reference(ints_model)
    inputs = {"small": np.int64([1, 2]), "big": np.int64([2**40, 5])}
    want = reference_run(signatures, {"small": np.int32([1, 2]), "big": inputs["big"]})
    assert_same(servable.run("serving_default", inputs), want)


def test_strings(strings_model: Path) -> None:
    servable, signatures = servable_and_reference(strings_model)
    text = np.array([b"ab", b"xyz"], dtype=object)
    assert_same(servable.run("serving_default", {"text": text}),
                reference_run(signatures, {"text": text}))


def test_fixed_dims_that_do_not_fit_are_refused_with_the_signature(pixels_model: Path) -> None:
    servable, signatures = servable_and_reference(pixels_model)
    fits = np.float32(np.arange(8).reshape(2, 4))
    assert_same(servable.run("serving_default", {"pixels": fits}),
                reference_run(signatures, {"pixels": fits}))
    for wrong in (np.float32(np.arange(6).reshape(2, 3)), np.float32([1, 2, 3, 4])):
        with pytest.raises(StatusError) as refused:
            servable.run("serving_default", {"pixels": wrong})
        assert refused.value.code is Code.INVALID_ARGUMENT
        assert "pixels: float32 [None, 4]" in refused.value.message, refused.value.message


def test_missing_and_unknown_inputs_are_refused(multi_io: Path) -> None:
    servable, _ = servable_and_reference(multi_io)
    with pytest.raises(StatusError) as missing:
        servable.run("serving_default", {"a": np.float32([1])})
    assert missing.value.code is Code.INVALID_ARGUMENT
    with pytest.raises(StatusError) as unknown:
        servable.run("serving_default", {"a": np.float32([1]), "b": np.float32([1]),
                                         "c": np.float32([1])})
    assert unknown.value.code is Code.INVALID_ARGUMENT


def test_inputs_that_fit_take_tensorflows_flat_call(multi_io: Path, pixels_model: Path,
                                                    strings_model: Path) -> None:
    # The flat call is TensorFlow's private ConcreteFunction._call_flat and _arg_keywords. This
    # runs on every supported TensorFlow: one that changed them fails here (the loader itself
    # then falls back to the public call, so clients never see the change as an error).
    import tensorflow as tf

    for base in (multi_io, pixels_model, strings_model):
        servable, _ = servable_and_reference(base)
        assert servable._signatures["serving_default"].flat, (tf.__version__, base.name)


def test_a_flat_call_of_another_shape_is_not_used() -> None:
    from tfserve_magic.serving.models.loader import _has_flat_call

    class Current:  # the shape of TensorFlow's revived signatures (2.20, 2.21)
        _arg_keywords = ("x",)

        def _call_flat(self, args, captured_inputs):
            raise AssertionError("never called")

    class Changed(Current):  # what a release that reshaped the private call would look like
        def _call_flat(self, args, captured_inputs, cancellation_manager):
            raise AssertionError("never called")

    class Missing:
        _arg_keywords = ("x",)

    assert _has_flat_call(Current())
    assert not _has_flat_call(Changed()) and not _has_flat_call(Missing())
