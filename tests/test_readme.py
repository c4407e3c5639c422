"""The README and the notebooks point only at things that exist: no file outside the repository,
no placeholder URL, no badge for a repository that may not exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_links_stay_inside_the_repository() -> None:
    text = (ROOT / "README.md").read_text()
    assert "<owner>" not in text and "<repo>" not in text
    assert "../" not in text
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if "://" not in target:
            assert (ROOT / target).exists(), target


def test_notebooks_carry_no_colab_badge() -> None:
    for path in (ROOT / "notebooks").glob("*.ipynb"):
        assert "colab.research.google.com/github" not in path.read_text(), path
