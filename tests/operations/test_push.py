"""``%tfserve push`` in a real IPython shell: Keras models and tf.Modules become served versions,
atomically, and every refusal says why without a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def run(ip, capsys, line: str) -> tuple[str, str]:
    ip.run_line_magic("tfserve", line)
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_keras_model_pushed_into_an_empty_base_path(ip, capsys, tmp_path: Path) -> None:
    import keras

    base = tmp_path / "scorer"
    base.mkdir()
    out, err = run(ip, capsys, f"start {base}")  # nothing to load yet: ready to receive a push
    assert "Started server scorer" in out, err

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,), name="features"),
                              keras.layers.Dense(3, activation="softmax")])
    ip.user_ns["model"] = model
    out, err = run(ip, capsys, "push model --name scorer")
    assert "scorer version 1 is AVAILABLE" in out, err
    assert os.listdir(base) == ["1"]
    # The same model again (a notebook run twice): said, and no new version replaces version 1.
    out, err = run(ip, capsys, "push model --name scorer")
    assert out.startswith("scorer version 1 already serves this model (identical): nothing "
                          "pushed, no new version"), (out, err)
    assert os.listdir(base) == ["1"]

    x = np.random.default_rng(0).random((2, 4), dtype=np.float32)
    ip.user_ns["x"] = x
    ip.run_cell_magic("predict", "scorer -o p", "x")
    capsys.readouterr()
    assert np.allclose(ip.user_ns["p"], model.predict(x, verbose=0), atol=1e-5)

    out, _ = run(ip, capsys, "signatures scorer")
    assert "in  features: float32 [None, 4]" in out


def test_push_refusals_say_why(ip, capsys, tmp_path: Path, versioned_base: Path) -> None:
    out, err = run(ip, capsys, "push nothing --name plus")
    assert "no variable named nothing" in err

    ip.user_ns["numbers"] = [1, 2, 3]
    _, err = run(ip, capsys, "push numbers --name plus")
    assert "no running server serves a model named plus" in err

    run(ip, capsys, f"start {versioned_base}")
    _, err = run(ip, capsys, "push numbers --name plus")
    assert err.startswith("%tfserve push: Expected an object of type `Trackable`, such as "
                          "`tf.Module`"), err
    assert "Got [1, 2, 3] with type <class 'list'>." in err and "Traceback" not in err
    assert sorted(os.listdir(versioned_base)) == ["1"]  # the failed export left no staging dir

    import tensorflow as tf

    class PlusTwenty(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def serve(self, x):
            return {"y": x + 20.0}

    ip.user_ns["m"] = PlusTwenty()
    _, err = run(ip, capsys, "push m --name plus --version 1")
    assert "version 1 already exists" in err

    # Below the latest version, the default policy (latest 1) would never load it: say so now.
    _, err = run(ip, capsys, "push m --name plus --version 0 --timeout 600")
    assert "Wrote plus version 0 to" in err and "does not serve it" in err
    assert "latest { num_versions: 1 }" in err

    out, err = run(ip, capsys, "push m --name plus --version 7")
    assert "plus version 7 is AVAILABLE" in out, err
    ip.run_cell_magic("predict", "plus -o y", "[1.0]")
    capsys.readouterr()
    assert ip.user_ns["y"].tolist() == [21.0]


def test_two_servers_with_one_model_name_ask_for_server(ip, capsys, tmp_path: Path,
                                                        plus_version_builds: Path) -> None:
    import shutil

    import tensorflow as tf

    for server, version in (("first", 1), ("second", 2)):
        base = tmp_path / server / "twin"
        shutil.copytree(plus_version_builds / str(version), base / str(version))
        config = tmp_path / f"{server}.config"
        config.write_text(f'model_config_list {{ config {{ name: "twin" base_path: "{base}" '
                          'model_platform: "tensorflow" } }\n')
        out, err = run(ip, capsys, f"start --config {config}")
        assert f"Started server {server}" in out, err

    ip.run_cell_magic("predict", "twin", "[1.0]")
    err = capsys.readouterr().err
    assert "2 running servers serve a model named twin: first (http" in err, err
    assert "second (http" in err and "--server NAME" in err
    ip.run_cell_magic("predict", "twin --server second -o y", "[1.0]")
    assert list(ip.user_ns["y"]) == [3.0]  # y = x + 2: the second server's version
    _, err = run(ip, capsys, "signatures twin")
    assert "--server NAME" in err
    out, err = run(ip, capsys, "signatures twin --server first")
    assert "in  x: float" in out, err

    class PlusTwenty(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def serve(self, x):
            return {"y": x + 20.0}

    ip.user_ns["m"] = PlusTwenty()
    _, err = run(ip, capsys, "push m --name twin")
    assert "--server NAME" in err
    assert os.listdir(tmp_path / "first" / "twin") == ["1"]  # nothing written anywhere
    assert os.listdir(tmp_path / "second" / "twin") == ["2"]
    out, err = run(ip, capsys, "push m --name twin --server first")
    assert "twin version 2 is AVAILABLE" in out, err
    assert sorted(os.listdir(tmp_path / "first" / "twin")) == ["1", "2"]
    assert os.listdir(tmp_path / "second" / "twin") == ["2"]
    _, err = run(ip, capsys, "push m --name other --server first")
    assert "server first does not serve a model named other (it serves twin)" in err
