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


def _imports_in_source(module_name: str, planted: str = "") -> set[str]:
    """Every module ``module_name``'s source imports, anywhere in the file (lazy imports inside
    functions too), relative imports resolved, ``from package import submodule`` included.
    ``planted``: lines added to the source (how the tests check that a rule can fail)."""
    spec = importlib.util.find_spec(module_name)
    assert spec is not None and spec.origin is not None, module_name
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8") + "\n" + planted)
    package = module_name if spec.submodule_search_locations else module_name.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            if base.split(".")[0] == module_name.split(".")[0]:  # our own package's submodules
                names.update(f"{base}.{alias.name}" for alias in node.names
                             if _is_module(f"{base}.{alias.name}"))
    return names


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


# --- What each part of the package may import from the package -----------------------------
# Pure helpers any layer may use (they import nothing from the package themselves).
NEUTRAL = ("tfserve_magic.errors", "tfserve_magic.status", "tfserve_magic.pids",
           "tfserve_magic.files", "tfserve_magic.waits")
# The serving core's pure pieces that the kernel side may use to read and write what the server
# reads (config files, policies, labels, batching parameters, flags) without running a server.
SERVING_PURE = ("tfserve_magic.serving.status_errors", "tfserve_magic.serving.models.config",
                "tfserve_magic.serving.models.repository", "tfserve_magic.serving.models.policy",
                "tfserve_magic.serving.models.label_rules", "tfserve_magic.serving.batching.parameters",
                "tfserve_magic.serving.process.flags", "tfserve_magic.serving.options",
                "tfserve_magic.serving.process.native_log")
# Inside the core, layers only point down: base modules <- models <- batching <- api <- process.
SERVING_BASE = ("tfserve_magic.serving.status_errors", "tfserve_magic.serving.options",
                "tfserve_magic.serving.tensor_types", "tfserve_magic.serving.tensor_protos",
                "tfserve_magic.serving.metrics", "tfserve_magic.serving.safelog",
                "tfserve_magic.serving.memory", "tfserve_magic.serving.proto_schemas")
SERVING_MODELS = ("tfserve_magic.serving.models", *SERVING_BASE)
SERVING_BATCHING = ("tfserve_magic.serving.batching", *SERVING_MODELS)
SERVING_API = ("tfserve_magic.serving.api", *SERVING_BATCHING)
CLIENT = ("tfserve_magic.client",)
LIFECYCLE = ("tfserve_magic.lifecycle",)
OPERATIONS = ("tfserve_magic.operations",)

ALLOWED: dict[str, tuple[str, ...]] = {
    # The core knows nothing of kernels, notebooks, Jupyter, clients or operations. (The root
    # package only for __version__: its public names are lazy, so importing it costs nothing.)
    "tfserve_magic.serving": (*SERVING_BASE, *NEUTRAL),
    # Model management knows nothing of batching, the surfaces or the process around it.
    "tfserve_magic.serving.models": (*SERVING_MODELS, *NEUTRAL),
    "tfserve_magic.serving.batching": (*SERVING_BATCHING, *NEUTRAL),
    # The surfaces call models and batching; the process (sockets, flags, start-up) calls them.
    "tfserve_magic.serving.api": (*SERVING_API, *NEUTRAL),
    "tfserve_magic.serving.process": ("tfserve_magic.serving", *NEUTRAL),
    "tfserve_magic.serving.__main__": ("tfserve_magic.serving", *NEUTRAL),
    # The client speaks to any TF Serving; besides the status vocabulary and errors it shares
    # only the core's pure TensorProto <-> numpy codec (no TensorFlow, no generated protos).
    "tfserve_magic.client": (*CLIENT, "tfserve_magic.serving.tensor_protos", *NEUTRAL),
    # Servers as seen from a kernel: launch, records, processes; writes the files servers read.
    "tfserve_magic.lifecycle": (*LIFECYCLE, *CLIENT, *SERVING_PURE, *NEUTRAL),
    # Operations on served models go through the client and the lifecycle, never a server's insides.
    "tfserve_magic.operations": (*OPERATIONS, *LIFECYCLE, *CLIENT, *SERVING_PURE, *NEUTRAL),
    # The notebook side is thin: it formats what lifecycle, client and operations return.
    "tfserve_magic.notebook": ("tfserve_magic.notebook", *OPERATIONS, *LIFECYCLE, *CLIENT,
                               *SERVING_PURE, *NEUTRAL),
    # The Jupyter server extension proxies recorded servers; the lab panel's rows are the
    # dashboard's views (client.traffic). Nothing of the kernel side (notebook/).
    "tfserve_magic.server_extension": ("tfserve_magic.server_extension", *LIFECYCLE, *CLIENT,
                                       *NEUTRAL),
    "tfserve_magic.demo": ("tfserve_magic.demo", *OPERATIONS, *LIFECYCLE, *CLIENT,
                           *SERVING_PURE, *NEUTRAL),
}
ALLOWED.update(dict.fromkeys(NEUTRAL, ()))
# The status vocabulary's ProtocolError descends from the root error.
ALLOWED["tfserve_magic.status"] = ("tfserve_magic.errors",)


def _rule_for(module: str) -> tuple[str, tuple[str, ...]] | None:
    owners = [prefix for prefix in ALLOWED if module == prefix or module.startswith(prefix + ".")]
    return (max(owners, key=len), ALLOWED[max(owners, key=len)]) if owners else None


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


ALL_MODULES = [m for m in _modules(tfserve_magic) if ".labextension" not in m]


def _bad_imports(module: str, planted: str = "") -> list[str]:
    """What ``module`` imports from the package that its rule does not allow."""
    rule = _rule_for(module)
    if rule is None:
        return []  # the root package: its lazy map may name anything public
    allowed = rule[1]
    ours = {n for n in _imports_in_source(module, planted)
            if n == "tfserve_magic" or n.startswith("tfserve_magic.")}
    # The root package itself (for __version__) is harmless: it imports nothing eagerly.
    return sorted(n for n in ours if n != "tfserve_magic" and not _within(n, allowed))


@pytest.mark.parametrize("module", ALL_MODULES)
def test_each_part_imports_only_what_its_rule_allows(module: str) -> None:
    rule = _rule_for(module)
    bad = _bad_imports(module)
    assert bad == [], f"{module} ({rule and rule[0]}) imports {bad}; allowed: {rule and rule[1]}"


def _import_graph(modules: list[str], planted: dict[str, str] | None = None) -> dict[str, set[str]]:
    """module -> the modules of ``modules`` its source imports (lazy and TYPE_CHECKING imports
    included: a cycle broken by a lazy import is still a cycle of design)."""
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for module in modules:
        targets = set()
        for imported in _imports_in_source(module, (planted or {}).get(module, "")):
            name = imported
            while name and name not in known:  # `from pkg.mod import function` names pkg.mod
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


# The root package's lazy map names every public module on purpose; it imports none eagerly.
GRAPH_MODULES = [m for m in ALL_MODULES if m != "tfserve_magic"]


def test_no_import_cycles() -> None:
    assert _cycles(_import_graph(GRAPH_MODULES)) == []


def test_a_planted_cycle_and_a_planted_upward_import_are_caught() -> None:
    # A test that cannot fail is a defect: plant what the rules forbid and watch them object.
    planted = {"tfserve_magic.lifecycle.registry":
               "def f():\n    from tfserve_magic.lifecycle import remote\n"}
    assert ["tfserve_magic.lifecycle.registry", "tfserve_magic.lifecycle.remote"] in \
        _cycles(_import_graph(GRAPH_MODULES, planted))
    assert _bad_imports("tfserve_magic.client.grpc_transport",
                        "from tfserve_magic.lifecycle import launcher") == [
        "tfserve_magic.lifecycle", "tfserve_magic.lifecycle.launcher"]
    # Upward inside the core: models and batching never import the surfaces or the process.
    for module, upward in (("tfserve_magic.serving.models.loader",
                            "from tfserve_magic.serving.api.codec import TensorSpec"),
                           ("tfserve_magic.serving.batching.merge",
                            "from tfserve_magic.serving.process import server"),
                           ("tfserve_magic.serving.api.rest",
                            "from tfserve_magic.serving.process.connections import x")):
        assert _bad_imports(module, upward), (module, upward)


def test_every_module_falls_under_a_rule() -> None:
    assert [m for m in ALL_MODULES if _rule_for(m) is None] == []


def test_the_rules_see_relative_and_lazy_imports(tmp_path, monkeypatch) -> None:
    # A test that cannot fail is a defect: the parser must catch the imports the old one missed.
    package = tmp_path / "pkg_probe"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "other.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "mod.py").write_text(
        "from .. import other\nfrom ..other import x\n"
        "def f():\n    from pkg_probe.sub import mod\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = _imports_in_source("pkg_probe.sub.mod")
    assert {"pkg_probe", "pkg_probe.other", "pkg_probe.sub.mod"} <= found


# Who sends HTTP requests with urllib: the client (to model servers) and the kernel's probe of
# the Jupyter server's own API; everything else goes through the client.
URLLIB_SENDERS = ("tfserve_magic.client.rest_transport", "tfserve_magic.notebook.jupyter_env")


def test_http_requests_go_through_the_client() -> None:
    senders = sorted(m for m in ALL_MODULES if "urllib.request" in _imports_in_source(m))
    assert senders == sorted(URLLIB_SENDERS), senders


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
