"""The shared test toys: one home, and test files that never import one another."""

from __future__ import annotations

import ast
from pathlib import Path

import torch

from toys import IndicatorNet, PlantedClassifier, PlantedNet, ToyPool

TESTS = Path(__file__).resolve().parent


def test_no_test_file_imports_another():
    """Toys shared by several files live in tests/toys.py (or another shared module), not in a test file."""
    offenders = []
    for path in sorted(TESTS.rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            offenders += [f"{path.relative_to(TESTS)}:{node.lineno} imports {name}"
                          for name in names if name.split(".")[0].startswith("test_")]
    assert offenders == []


def test_planted_units_are_the_functions_their_docstrings_give():
    image, _ = ToyPool(n=1)[0]
    thing = image[0]
    with torch.no_grad():
        units = IndicatorNet().conv(image[None])[0]
        assert torch.equal(units[0], thing) and not units[1].any() and torch.equal(units[2], 1 - thing)
        x = torch.rand(1, 3, 4, 4)
        assert torch.equal(PlantedNet().conv(x)[0, :2], x[0, :2]) and not PlantedNet().conv(x)[0, 2].any()
        units = PlantedClassifier().conv(x)[0]
        assert torch.equal(units[:3], x[0])
        assert [float(units[k].unique()) for k in (3, 4, 5)] == [0.5, 1.0, 2.0]
