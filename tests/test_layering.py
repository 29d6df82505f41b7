"""The import rules of docs/ARCHITECTURE.md, enforced: who may import whom.

Each package's modules are imported in a fresh interpreter and the modules
that came with them are listed.  ``report/`` and ``label/`` read saved
results only, through ``unitscope.results``; none of the three may pull in
torch (a report or a labeling server then starts in a second and runs where
torch is not installed); ``hooks/``
and ``stats/`` are leaves; ``models/`` and ``data/`` do not know each other.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

import unitscope

#: package -> (may it load torch?, unitscope packages it must not load)
RULES = {
    "unitscope.report": (False, ("unitscope.experiments", "unitscope.models", "unitscope.data", "unitscope.hooks",
                                 "unitscope.stats", "unitscope.training", "unitscope.cli", "unitscope.label")),
    "unitscope.results": (False, ("unitscope.experiments", "unitscope.models", "unitscope.data", "unitscope.hooks",
                                  "unitscope.stats", "unitscope.training", "unitscope.cli", "unitscope.report",
                                  "unitscope.label")),
    "unitscope.label": (False, ("unitscope.experiments", "unitscope.models", "unitscope.data", "unitscope.hooks",
                                "unitscope.stats", "unitscope.training", "unitscope.cli", "unitscope.report")),
    "unitscope.hooks": (True, ("unitscope.experiments", "unitscope.models", "unitscope.data", "unitscope.stats",
                               "unitscope.training", "unitscope.cli", "unitscope.report", "unitscope.label")),
    "unitscope.stats": (True, ("unitscope.experiments", "unitscope.models", "unitscope.data", "unitscope.hooks",
                               "unitscope.training", "unitscope.cli", "unitscope.report", "unitscope.label")),
    "unitscope.models": (True, ("unitscope.data", "unitscope.experiments", "unitscope.training", "unitscope.cli",
                                "unitscope.report", "unitscope.label")),
    "unitscope.data": (True, ("unitscope.models", "unitscope.experiments", "unitscope.training", "unitscope.cli",
                              "unitscope.report", "unitscope.label")),
    "unitscope.experiments": (True, ("unitscope.cli", "unitscope.report", "unitscope.label")),
    # the study wires experiments, results and the report together; only the CLI sits above it
    "unitscope.study": (True, ("unitscope.cli", "unitscope.label")),
    # training uses models and data (and what they use), never the experiments or what sits above them
    "unitscope.training": (True, ("unitscope.experiments", "unitscope.study", "unitscope.published", "unitscope.cli", "unitscope.report", "unitscope.label")),
    # published data are read with numpy/pandas/scipy.io; consensus is the labeling app's own code
    "unitscope.published": (False, ("unitscope.experiments", "unitscope.models", "unitscope.data", "unitscope.hooks",
                                    "unitscope.stats", "unitscope.training", "unitscope.cli", "unitscope.report")),
}

PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(sys.modules)))
"""


def modules_of(package: str) -> list[str]:
    root = __import__(package, fromlist=["_"])
    return [package] + [info.name for info in pkgutil.walk_packages(root.__path__, prefix=package + ".")]


def loaded_by(modules: list[str]) -> set[str]:
    done = subprocess.run([sys.executable, "-c", PROBE, *modules], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout))


@pytest.mark.parametrize("package", sorted(RULES))
def test_package_imports_only_what_the_architecture_allows(package):
    may_load_torch, forbidden = RULES[package]
    modules = modules_of(package)
    loaded = loaded_by(modules)
    if not may_load_torch:
        assert "torch" not in loaded, f"{package} pulls in torch"
    broken = sorted(m for m in loaded for f in forbidden if m == f or m.startswith(f + "."))
    assert not broken, f"{package} imports {broken}"


def test_the_rules_cover_every_package():
    packages = {info.name for info in pkgutil.iter_modules(unitscope.__path__, prefix="unitscope.") if info.ispkg}
    assert packages - set(RULES) <= {"unitscope.cli"}


def test_the_command_line_parses_without_torch():
    """``unitscope --help`` and every option check load no torch: a command imports the library when it runs."""
    loaded = loaded_by(["unitscope.cli.main"])
    assert "torch" not in loaded, "unitscope.cli.main pulls in torch"
