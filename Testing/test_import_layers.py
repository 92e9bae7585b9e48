"""The core's sub-packages import one way: a lower layer never imports a higher one.

Data flows one way through the core (files -> image with geometry -> algorithm -> results ->
DICOM/CSV), and the packages are stacked the same way, so each can be read, tested and reused
knowing only what lies below it. The table below is the rule; every ``import`` in ``src/oncoqi``
(module level or inside a function, absolute or relative) is checked against it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import REPO_ROOT

CORE = REPO_ROOT / "src" / "oncoqi"

#: Layer of each core package or top-level module, lowest first. A module may import its own
#: package and anything on a strictly lower layer; packages on the same layer know nothing of each
#: other.
LAYERS: dict[str, int] = {
    "errors": 0,
    "progress": 0,  # stage reports of long work: imports nothing of the core
    "image": 1,
    "metrics": 2,
    "atomic": 2,
    "jsonio": 2,
    "picture": 3,
    "dicom": 3,  # encoding only: computes no PET, lung or report science
    "phantom": 4,
    "tcia": 4,
    "lung": 5,
    "pet": 5,
    "report": 6,  # results of lung and pet -> measurements -> DICOM SEG + SR
    "batch": 7,
    "demo": 8,
}

#: The command line sits on top of every layer: ``oncoqi/cli.py``, ``oncoqi/__main__.py`` and each
#: package's ``cli.py`` may import anything, and nothing else may import them.
CLI_MODULES = {"cli", "__main__"}


def module_name(path: Path) -> str:
    """``oncoqi.dicom.sr.writer`` for ``src/oncoqi/dicom/sr/writer.py`` (a package for ``__init__.py``)."""
    parts = list(path.relative_to(CORE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(name: str, tree: ast.AST, is_package: bool) -> list[tuple[int, str]]:
    """``(line, absolute module)`` of every ``oncoqi`` import in a module's syntax tree."""
    package = name if is_package else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # ``from oncoqi import pet`` imports a sub-package; ``from oncoqi import __version__`` does not
            found += [
                (node.lineno, f"{target}.{a.name}" if is_module(f"{target}.{a.name}") else target) for a in node.names
            ]
    return [(line, target) for line, target in found if target.split(".")[0] == "oncoqi"]


def is_module(dotted: str) -> bool:
    """Whether ``oncoqi.x.y`` names a module or package of the core (not an attribute)."""
    path = CORE.parent.joinpath(*dotted.split("."))
    return path.is_dir() or path.with_suffix(".py").is_file()


def unit(module: str) -> str | None:
    """The table entry a module belongs to (``dicom`` for ``oncoqi.dicom.sr``), or None for ``oncoqi`` itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def is_cli(module: str) -> bool:
    return module.split(".")[-1] in CLI_MODULES


def violations(name: str, source: str, is_package: bool = False) -> list[str]:
    """What in ``source`` (the text of module ``name``) breaks the layering."""
    tree = ast.parse(source)
    found = []
    importer = unit(name)
    for line, target in imported_modules(name, tree, is_package):
        imported = unit(target)
        if is_cli(target) and not is_cli(name) and target != "oncoqi.__main__":
            found.append(f"line {line}: {name} imports the command line {target}")
        if imported is None or is_cli(name) or imported == importer:
            continue
        if importer is None:  # the package's own __init__: only the lowest layers
            if LAYERS[imported] > LAYERS["image"]:
                found.append(f"line {line}: oncoqi/__init__.py imports {target}")
            continue
        if imported not in LAYERS or importer not in LAYERS:
            found.append(f"line {line}: {name} -> {target}: not in the layer table")
        elif LAYERS[imported] >= LAYERS[importer]:
            found.append(f"line {line}: {name} (layer {LAYERS[importer]}) imports {target} (layer {LAYERS[imported]})")
    return found


def core_modules() -> list[Path]:
    return sorted(p for p in CORE.rglob("*.py") if "__pycache__" not in p.parts)


def test_the_table_names_every_core_package_and_module() -> None:
    units = {unit(module_name(p)) for p in core_modules()} - {None}
    units -= {name for name in units if name in CLI_MODULES}
    assert units == set(LAYERS)


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: str(p.relative_to(CORE)))
def test_core_module_imports_only_its_own_or_lower_layers(path: Path) -> None:
    name = module_name(path)
    assert violations(name, path.read_text(encoding="utf-8"), path.name == "__init__.py") == []


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("oncoqi.dicom.sr.measurements", "from oncoqi.pet.suv import apply_suv\n"),
        ("oncoqi.dicom.sr.writer", "def f():\n    import oncoqi.pet.peak\n"),
        ("oncoqi.dicom.sr.writer", "from ...pet import suv\n"),
        ("oncoqi.dicom.sr.codes", "from oncoqi import pet\n"),
        ("oncoqi.metrics.detection", "from oncoqi.lung.measure import lesion_side\n"),
        ("oncoqi.lung.measure", "from oncoqi.pet import compute_indices\n"),
        ("oncoqi.pet.indices", "from oncoqi.lung.cli import main\n"),
    ],
)
def test_the_check_catches_an_import_from_a_higher_or_peer_layer(name: str, source: str) -> None:
    assert violations(name, source)


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("oncoqi.report.measure", "from oncoqi.pet.suv import apply_suv\nfrom oncoqi.dicom.sr import Measurement\n"),
        ("oncoqi.dicom.sr.writer", "from .measurements import Algorithm\nfrom oncoqi import __version__\n"),
        ("oncoqi.lung.cli", "from oncoqi.report.lung import write_lesion_report\n"),
    ],
)
def test_the_check_lets_lower_own_and_command_line_imports_pass(name: str, source: str) -> None:
    assert violations(name, source) == []
