"""The documentation stands on its own: no file of the repository cites files outside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A path that climbs out of the checkout, or the session's shared folder beside it.
OUTSIDE = re.compile(r"(?<![\w./])(?:\.\./)+shared/|(?<![\w/])shared/[A-Z_]+\.md")


def test_no_file_cites_files_outside_the_repository() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    offenders = []
    for name in tracked:
        path = ROOT / name
        if path.suffix not in {".md", ".py", ".ipynb", ".ts", ".toml", ".txt", ""} or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if OUTSIDE.search(line) and name != "tests/test_docs.py":
                offenders.append(f"{name}:{number}: {line.strip()[:100]}")
    assert offenders == []


def test_the_pattern_catches_what_it_must() -> None:
    assert OUTSIDE.search("see ../shared/STYLE.md")
    assert OUTSIDE.search("(shared/PERF_NOTES.md)")
    assert not OUTSIDE.search("tfserve_magic/serving/api/shared_state.py")
