"""Importing TensorFlow's runtime without its Python API surface (the server process only).

``import tensorflow`` runs ``tensorflow/__init__.py``, which builds the whole ``tf.*`` namespace:
``tf.__internal__.distribute.combinations`` (test helpers that import matplotlib), the legacy
``tensorflow.python.keras``, and, through ``find_spec`` on ``keras._tf_keras.keras`` and an eager
``import keras.src.optimizers``, all of Keras 3, which imports scikit-learn and SciPy. Measured
here (TensorFlow 2.21, Keras 3.15; CPU seconds, so machine load moves it little): 5.1 s and
748 MB resident for ``import tensorflow``; 3.1 s and 629 MB with Keras refused; 2.0 s and 539 MB
for the runtime alone. Serving a SavedModel needs none of that API: the graph, its functions and
its kernels live in ``tensorflow.python`` and the native library (TF Serving itself has no
Keras), and a SavedModel exported from Keras is revived as plain trackables.

:func:`use_lean_tensorflow` puts a stand-in for the ``tensorflow`` package in ``sys.modules``
before anything imports from it, so ``tensorflow.python.*``, ``tensorflow.core.*`` (the protos
``tensorflow-serving-api`` imports) load from the real package folder without its
``__init__``, and Keras is made unimportable. The stand-in is a real fallback, not a trap: the
first attribute asked of it (``tf.something``, from code that did ``import tensorflow``) runs
the real ``__init__`` into it, logs that it did, and answers. Where that ``__init__`` would load
plugins (a ``tensorflow-plugins`` folder, ``TF_PLUGGABLE_DEVICE_LIBRARY_PATH``), the full import
runs at once instead. Installing it is cheap (nothing is imported); the loader then imports the
runtime and turns on TF2 behaviour, the one other thing ``__init__`` does that serving needs.
No-op when ``tensorflow`` is already imported (tests that build models in
the same process). Imports nothing from TensorFlow itself.

:func:`importing_runtime` keeps the cyclic garbage collector out of that import: the ~1,100
modules it brings in build some 270,000 container objects, and the collector would walk the
growing heap about 400 times on the way, with nothing to free (0.1-0.15 s of a 1.5 s import
here). Binding the native libraries lazily (``RTLD_LAZY``, 0.17 s less for their ``dlopen``) was
measured too and left out: an op library loaded later (``load_op_library``, as TensorFlow's own
``tf.lite`` does when the full API is built) then crashes the process.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import logging
import os
import site
import sys
import sysconfig
import threading
import types
from collections.abc import Iterator
from typing import Any, cast

__all__ = ["REFUSED", "importing_runtime", "is_lean", "use_lean_tensorflow"]

log = logging.getLogger(__name__)

# Never imported by the server: Keras (both) serves nothing a SavedModel needs, and it is what
# imports scikit-learn, SciPy and matplotlib.
REFUSED = ("keras", "tf_keras")


class _LeanTensorFlow(types.ModuleType):
    """The ``tensorflow`` package before its ``__init__`` ran (see the module doc)."""

    _lock = threading.RLock()
    _materialized = False

    def __getattr__(self, name: str) -> Any:
        # Only names the package itself would define land here (submodules and dunders the
        # import system sets are ordinary attributes).
        if name.startswith("__") and name.endswith("__") and name != "__version__":
            raise AttributeError(name)
        _materialize(self)
        try:
            return self.__dict__[name]
        except KeyError:
            raise AttributeError(f"module 'tensorflow' has no attribute '{name}'") from None


def _materialize(module: _LeanTensorFlow) -> None:
    with module._lock:
        if module._materialized:
            return
        module._materialized = True
        log.info("Something asked for TensorFlow's Python API (tf.*): importing all of it")
        spec = module.__spec__
        assert spec is not None and spec.loader is not None
        spec.loader.exec_module(module)


def is_lean() -> bool:
    """Whether ``tensorflow`` in this process is the stand-in, its full API never built."""
    module = sys.modules.get("tensorflow")
    return isinstance(module, _LeanTensorFlow) and not module._materialized


def _plugins_wanted() -> bool:
    """Whether TensorFlow's ``__init__`` would load a device plugin here."""
    if os.environ.get("TF_PLUGGABLE_DEVICE_LIBRARY_PATH"):
        return True
    folders = [p for p in sys.path if "site-packages" in p]
    folders += site.getsitepackages() if hasattr(site, "getsitepackages") else []
    folders += [sysconfig.get_path("purelib"), sysconfig.get_path("platlib")]
    return any(os.path.isdir(os.path.join(folder, "tensorflow-plugins")) for folder in folders)


def use_lean_tensorflow() -> None:
    """Install the stand-in and refuse Keras (idempotent; see the module doc)."""
    for name in REFUSED:
        if name not in sys.modules:
            cast(dict[str, Any], sys.modules)[name] = None  # the import system's "absent"
    if "tensorflow" in sys.modules:
        return
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or spec.submodule_search_locations is None or _plugins_wanted():
        return  # not installed (the import fails where it is used), or plugins to load
    module = _LeanTensorFlow("tensorflow")
    module.__spec__ = spec
    module.__loader__ = spec.loader
    module.__file__ = spec.origin
    module.__path__ = list(spec.submodule_search_locations)
    module.__package__ = "tensorflow"
    sys.modules["tensorflow"] = module


@contextlib.contextmanager
def importing_runtime() -> Iterator[None]:
    """Around the import of TensorFlow's runtime: no cyclic GC until it is in (module doc)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
