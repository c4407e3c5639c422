"""Guards of the architecture: what each layer may import, and that public names are declared."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import tfserve_magic
import tfserve_magic.serving

JUPYTER = ("IPython", "ipywidgets", "jupyter_server", "ipykernel", "traitlets.config.application")


def _modules(package) -> list[str]:
    return [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]


def _imported_after(code: str) -> set[str]:
    script = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300, check=True)
    import json

    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _imports_in_source(module_name: str) -> set[str]:
    spec = importlib.util.find_spec(module_name)
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_serving_core_source_never_imports_jupyter() -> None:
    for module in [*_modules(tfserve_magic.serving), "tfserve_magic.serving"]:
        bad = {n for n in _imports_in_source(module) for j in JUPYTER
               if n == j or n.startswith(j + ".")}
        assert not bad, f"{module} imports {bad}"


def test_importing_the_core_without_tensorflow_pulls_no_jupyter() -> None:
    # (Keras itself imports IPython when it is installed, so the TF-side modules are only
    # checked at the source level above. grpc_service uses tensorflow-serving-api's generated
    # protos, which import the tensorflow package: it is TF-side too.)
    light = [m for m in _modules(tfserve_magic.serving)
             if m.rsplit(".", 1)[-1] not in ("loader", "server", "__main__", "grpc_service")]
    loaded = _imported_after("\n".join(f"import {m}" for m in light))
    leaked = sorted(m for m in loaded for j in JUPYTER if m == j or m.startswith(j + "."))
    assert leaked == [], f"the serving core pulled in {leaked}"
    assert "tensorflow" not in loaded


def test_only_the_loader_imports_tensorflow() -> None:
    for module in _modules(tfserve_magic.serving):
        if module.endswith(".loader"):
            continue
        assert not {n for n in _imports_in_source(module) if n.split(".")[0] == "tensorflow"}, module


def test_load_ext_does_not_import_tensorflow() -> None:
    loaded = _imported_after(
        "from IPython.testing.globalipapp import start_ipython\n"
        "ip = start_ipython()\n"
        "ip.run_line_magic('load_ext', 'tfserve_magic')\n"
        "assert 'tfserve' in ip.magics_manager.magics['line']")
    assert "tensorflow" not in loaded
    assert "tfserve_magic.notebook.magics" in loaded


PUBLIC_MODULES = ["tfserve_magic"] + [m for m in _modules(tfserve_magic)
                                       if not m.endswith("__main__") and ".labextension" not in m]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_public_names_match_all(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    for symbol in exported:
        assert hasattr(module, symbol), f"{name}.__all__ lists {symbol}, which does not exist"
    assert module.__doc__, f"{name} has no module docstring"
