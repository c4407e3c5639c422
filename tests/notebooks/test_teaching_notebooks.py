"""The teaching notebooks as committed: valid nbformat, and no outputs (a learner's first run
is the only one they see).

They are executed, and their outputs checked, by tests/browser/test_run_all_notebooks.py: a
person's "Run All" in a real JupyterLab, the one execution of them in the suite.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def test_notebooks_are_committed_without_outputs() -> None:
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert paths, NOTEBOOKS
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code"), path


# The lessons' data and models (scikit-learn digits, half_plus_two) come from the demo module.
LESSON_HELPERS = {"tfserve_magic.demo.models"}


def test_notebooks_use_only_the_public_api() -> None:
    """What a teacher shows is what the package promises: names in ``tfserve_magic.__all__``
    (and the demo models), never a module's insides such as ``lifecycle.launcher.find``."""
    import re

    import tfserve_magic

    public = set(tfserve_magic.__all__)
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
        inside = []
        for module, names in re.findall(r"^\s*from (tfserve_magic[\w.]*) import ([^\n]+)", code,
                                        re.M):
            if module in LESSON_HELPERS:
                continue
            imported = {n.strip().split(" as ")[0] for n in names.strip("()").split(",")}
            if module != "tfserve_magic" or not imported <= public:
                inside.append(f"from {module} import {names}")
        for attribute in re.findall(r"\btfserve_magic\.(\w+)", code):
            if f"tfserve_magic.{attribute}" not in {m.rsplit(".", 1)[0] for m in LESSON_HELPERS} \
                    and attribute not in public:
                inside.append(f"tfserve_magic.{attribute}")
        assert not inside, f"{path.name} reaches into the package: {inside}"
