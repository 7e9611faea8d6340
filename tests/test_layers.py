"""The house's layers, read from the source: imports run one way, nothing imports the CLI, the
cloud app calls the training API, and the parts that must run without PyTorch import without it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Lowest first. A module may import its own layer and the ones below it, never one above.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("errors", "breeds", "config", "checkpoint", "seeding", "runtime", "perf", "pictures", "about")),
    ("core", ("core",)),
    ("data", ("data",)),
    ("reading published models", ("hub.layout", "hub.load", "hub.net", "hub")),
    ("loading any checkpoint", ("generator",)),
    ("jobs", ("training", "evaluate", "export")),
    (
        "shipping and facades",
        ("hub.stage", "hub.portable", "hub.space", "hub.check", "hub.card", "hub.publish", "api", "demo", "web"),
    ),
    ("command line", ("cli", "__main__")),
    ("cloud", ("cloud",)),
]
SIBLINGS = ("training", "evaluate", "export")  # jobs that must not lean on one another
TORCH_FREE = (
    "tinycats.export.onnx_sampler",
    "tinycats.export.standalone",
    "tinycats.core.noise",
    "tinycats.core.solvers",
    "tinycats.pictures",
    "tinycats.errors",
    "tinycats.about",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> tuple[int, str]:
    """(layer index, the matched prefix) by the longest prefix that names the module."""
    rel = module.removeprefix("tinycats.")
    best = max(
        (
            (i, prefix)
            for i, (_, prefixes) in enumerate(LAYERS)
            for prefix in prefixes
            if rel == prefix or rel.startswith(prefix + ".")
        ),
        key=lambda found: len(found[1]),
    )
    return best


def imports(path: Path) -> set[str]:
    """Every tinycats module the file imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tinycats"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names if (SRC / node.module.replace(".", "/") / a.name).exists()
                         or (SRC / node.module.replace(".", "/") / f"{a.name}.py").exists())  # fmt: skip
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("tinycats"))
    return {m for m in found if m != "tinycats"}


FILES = sorted(p for p in (SRC / "tinycats").rglob("*.py") if p.name != "__init__.py" or p.parent.name != "tinycats")


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_run_one_way(path):
    me = module_name(path)
    level, _ = layer_of(me)
    for target in imports(path):
        other, _ = layer_of(target)
        assert other <= level, f"{me} ({LAYERS[level][0]}) imports {target} ({LAYERS[other][0]}), a layer above it"
        if other == level and LAYERS[level][0] == "jobs":
            mine = me.removeprefix("tinycats.").split(".")[0]
            theirs = target.removeprefix("tinycats.").split(".")[0]
            assert mine == theirs or theirs not in SIBLINGS, f"{me} leans on the sibling job {target}"


def test_nothing_imports_the_command_line():
    for path in FILES:
        me = module_name(path)
        if not me.startswith(("tinycats.cli", "tinycats.__main__")):
            assert not any(t.startswith("tinycats.cli") for t in imports(path)), f"{me} imports the CLI"


def test_the_rule_sees_a_wrong_way_import():
    """The check itself: an import from core up into training is a violation."""
    assert layer_of("tinycats.core.model")[0] < layer_of("tinycats.training.loop")[0]
    assert layer_of("tinycats.hub.stage")[0] > layer_of("tinycats.export.onnx")[0] > layer_of("tinycats.hub.load")[0]


@pytest.mark.parametrize("module", TORCH_FREE)
def test_torch_free_parts_import_without_torch(module):
    code = f"import sys; sys.modules['torch'] = None; import {module}; print('ok')"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]
