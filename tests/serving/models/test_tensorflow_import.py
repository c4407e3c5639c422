"""The server imports TensorFlow's runtime, not its Python API: a real server serving a model
exported from Keras never imports Keras, scikit-learn, SciPy or matplotlib (read from the
server's own ``-X importtime`` record of every module it imported), and still answers as the
Keras model does; code that asks for ``tf.*`` in a lean process still gets all of it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from server_process import start_server

NEVER = ("keras", "tf_keras", "sklearn", "scipy", "matplotlib")
_IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)\s*$", re.MULTILINE)


@pytest.fixture(scope="module")
def keras_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    import keras
    from models import build_keras_mlp

    base = tmp_path_factory.mktemp("models") / "keras_mlp"
    path = build_keras_mlp(str(base))
    rows = np.linspace(-1, 1, 16, dtype=np.float32).reshape(2, 8)
    reloaded = keras.layers.TFSMLayer(path, call_endpoint="serving_default")
    want = next(iter(reloaded(rows).values())).numpy()
    return base, rows, want


def test_a_server_serving_a_keras_export_never_imports_keras_sklearn_or_scipy(
        keras_model: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path) -> None:
    base, rows, want = keras_model
    server = start_server(f"--model_base_path={base}", "--model_name=mlp", log_dir=tmp_path,
                          env={"PYTHONPROFILEIMPORTTIME": "1"})
    try:
        server.wait_state("mlp", 1)
        answer = server.post("/v1/models/mlp:predict", {"instances": rows.tolist()})
        assert answer.status == 200, answer.body
        np.testing.assert_allclose(answer.json()["predictions"], want, rtol=1e-5, atol=1e-6)
        metadata = server.get("/v1/models/mlp/metadata")
        assert metadata.status == 200
    finally:
        server.stop()
    imported = set(_IMPORT_LINE.findall(server.log()))
    # The record is real: it saw the server import TensorFlow's SavedModel loader.
    assert "tensorflow.python.saved_model.load" in imported
    assert "tensorflow_serving.apis.predict_pb2" in imported
    assert sorted(m for m in imported if m.split(".")[0] in NEVER) == []
    # tensorflow/__init__ never ran: the tf.* namespace was never built.
    assert not [m for m in imported if m.startswith("tensorflow._api")]


def test_code_asking_for_tf_in_a_lean_process_gets_the_whole_api() -> None:
    script = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.INFO, stream=sys.stdout, format='%(message)s')\n"
        "from tfserve_magic.serving.models import loader, tensorflow_import\n"
        "print('lean before:', tensorflow_import.is_lean())\n"
        "import tensorflow as tf\n"
        "print('sum:', int(tf.reduce_sum(tf.constant([1, 2, 3]))))\n"
        "print('lean after:', tensorflow_import.is_lean())\n"
        "print('keras:', 'keras' in sys.modules and sys.modules['keras'] is not None)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=600, check=True).stdout
    assert "lean before: True" in out
    assert "Something asked for TensorFlow's Python API (tf.*): importing all of it" in out
    assert "sum: 6" in out
    assert "lean after: False" in out
    assert "keras: False" in out


def test_the_runtime_is_imported_without_cyclic_gc_which_comes_back_after() -> None:
    # Watched from inside the import: whether the collector runs when the loader's import
    # reaches TensorFlow's native library, and afterwards; and the full API still loads (and
    # its op libraries with it) in the same process.
    script = (
        "import gc, sys\n"
        "seen = []\n"
        "class Watch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'tensorflow.python.pywrap_tensorflow':\n"
        "            seen.append(gc.isenabled())\n"
        "sys.meta_path.insert(0, Watch())\n"
        "from tfserve_magic.serving.models import loader\n"
        "print('collecting during:', seen[0], 'after:', gc.isenabled())\n"
        "print('runs:', loader.tensor_to_array(loader.tensor_util.make_tensor_proto([1.5])))\n"
        "import tensorflow as tf\n"
        "print('lite:', tf.lite.Interpreter.__name__)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=600, check=True).stdout
    assert "collecting during: False after: True" in out
    assert "runs: [1.5]" in out
    assert "lite: Interpreter" in out


def test_importing_runtime_turns_the_collector_back_on_when_the_import_fails() -> None:
    import gc

    from tfserve_magic.serving.models.tensorflow_import import importing_runtime

    during = []

    def failing_import() -> None:
        with importing_runtime():
            during.append(gc.isenabled())
            import no_such_module  # type: ignore[import-not-found]  # noqa: F401

    with pytest.raises(ImportError, match="no_such_module"):
        failing_import()
    assert during == [False]
    assert gc.isenabled()
