"""The README of this folder maps every conformance test (issue 9 §3): none goes unlisted,
and none listed is missing."""

from __future__ import annotations

import ast
import re
from pathlib import Path

HERE = Path(__file__).parent


def test_every_conformance_test_is_mapped_in_the_readme() -> None:
    readme = (HERE / "README.md").read_text()
    names = {
        node.name
        for path in HERE.glob("test_conf_*.py")
        if path.name != Path(__file__).name
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_rfc7296_")
    }
    listed = set(re.findall(r"`(test_rfc7296_[a-z0-9_]+)`", readme))
    elided = re.findall(r"`…(_[a-z0-9_]+)`", readme)
    assert listed <= names, sorted(listed - names)
    unlisted = [n for n in names if n not in listed and not any(n.endswith(e) for e in elided)]
    assert not unlisted, sorted(unlisted)
