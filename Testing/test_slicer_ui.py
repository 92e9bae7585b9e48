"""Structural tier: each module's ``.ui``, script and ``CMakeLists.txt`` agree with each other.

Slicer loads a module's ``.ui`` at run time and looks widgets up by name, binds parameters by the
``SlicerParameterName`` property, and installs only the files ``CMakeLists.txt`` lists; a typo in any of
them shows up only when a user opens the module. Without Slicer these can still be checked: the
``.ui`` is loaded with PySide6 offscreen (unknown Slicer/CTK classes fall back to their Qt base class,
so the class names are checked against an allowlist from the XML), the scripts are read with ``ast``.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import tomllib

from conftest import MODULE_FOLDERS, MODULE_NAMES, REPO_ROOT, SHARED_PACKAGE, module_folder

#: Modules a module script may import at load time; everything else (``oncoqi``, ``OncoQISlicer``,
#: ``<Name>Lib``) must wait until ``ensure_core`` has run, or the module would not load before the
#: core is installed.
LOAD_TIME_IMPORTS = {"logging", "os", "pathlib", "typing", "qt", "ctk", "vtk", "slicer"}

#: The oldest Python a module file must load on: Slicer 5.8 embeds 3.9, and must load the modules so
#: that their first action can say "needs 3D Slicer 5.10 or later" (the core needs 3.10).
OLDEST_PYTHON = (3, 9)


def module_dir(name: str) -> Path:
    return module_folder(name)


def module_script(name: str) -> Path:
    return module_dir(name) / f"{name}.py"


def ui_path(name: str) -> Path:
    return module_dir(name) / "Resources" / "UI" / f"{name}.ui"


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=OLDEST_PYTHON)


def slicer_side_python_files() -> list[Path]:
    """Every Python file of the four module folders (scripts, ``<Name>Lib``) and of ``OncoQISlicer``."""
    folders = [module_dir(name) for name in MODULE_NAMES] + [SHARED_PACKAGE]
    return sorted(p for folder in folders for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def classes(tree: ast.Module) -> dict[str, ast.ClassDef]:
    return {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}


def ui_names_used(tree: ast.AST) -> set[str]:
    """Every ``<name>`` in ``self.ui.<name>`` of a script."""
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "ui"
        and isinstance(node.value.value, ast.Name)
        and node.value.value.id == "self"
    }


def parameter_fields(name: str) -> dict[str, str]:
    """Fields of the module's ``@parameterNodeWrapper`` class: name -> annotation source."""
    cls = classes(parse(module_script(name)))[f"{name}ParameterNode"]
    decorators = [ast.unparse(d) for d in cls.decorator_list]
    assert decorators == ["parameterNodeWrapper"], decorators
    return {
        stmt.target.id: ast.unparse(stmt.annotation)
        for stmt in cls.body
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
    }


def ui_widgets(name: str) -> list[ET.Element]:
    return list(ET.parse(ui_path(name)).getroot().iter("widget"))


def string_property(widget: ET.Element, property_name: str) -> str | None:
    prop = widget.find(f"property[@name='{property_name}']")
    return None if prop is None else prop.findtext("string")


# --- .ui ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def qt_application():
    """One offscreen QApplication for the session (QUiLoader needs it; no display is used)."""
    import os

    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    widgets = pytest.importorskip("PySide6.QtWidgets", reason="PySide6 is needed to load .ui files offscreen")
    return widgets.QApplication.instance() or widgets.QApplication([])


@pytest.mark.qt
@pytest.mark.parametrize("name", MODULE_NAMES)
def test_ui_loads_offscreen_with_every_widget_the_script_uses(name, qt_application) -> None:
    from PySide6.QtCore import QFile, QObject
    from PySide6.QtUiTools import QUiLoader

    ui_file = QFile(str(ui_path(name)))
    assert ui_file.open(QFile.ReadOnly), ui_path(name)
    loader = QUiLoader()
    widget = loader.load(ui_file)
    ui_file.close()
    assert widget is not None, loader.errorString()
    assert widget.objectName() == name

    object_names = {child.objectName() for child in widget.findChildren(QObject)}
    used = ui_names_used(parse(module_script(name)))
    assert "applyButton" in used
    assert used <= object_names, f"{name}.py uses widgets missing from {name}.ui: {sorted(used - object_names)}"
    widget.deleteLater()


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_ui_parameter_bindings_are_fields_of_the_parameter_class(name) -> None:
    fields = parameter_fields(name)
    bound = {}
    for widget in ui_widgets(name):
        parameter = string_property(widget, "SlicerParameterName")
        if parameter is None:
            continue
        assert parameter in fields, f"{widget.get('name')} binds '{parameter}', not a field of {name}ParameterNode"
        assert parameter not in bound, f"'{parameter}' is bound twice"
        bound[parameter] = widget
    assert bound, f"{name}.ui binds no parameter"
    # Whether Slicer can bind each widget to its field is decided by Slicer's own connectGui:
    # Testing/test_slicer_tier.py runs it on every module, on Slicer 5.8 and 5.12.


# --- module script -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", slicer_side_python_files(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_slicer_side_files_parse_with_the_oldest_supported_python(path) -> None:
    parse(path)


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_module_script_has_module_widget_logic_and_test_classes(name) -> None:
    tree = parse(module_script(name))
    found = classes(tree)
    expected_bases = {
        name: "ScriptedLoadableModule",
        f"{name}Widget": "ScriptedLoadableModuleWidget",
        f"{name}Logic": "ScriptedLoadableModuleLogic",
        f"{name}Test": "ScriptedLoadableModuleTest",
    }
    for cls, base in expected_bases.items():
        assert cls in found, f"{name}.py has no class {cls}"
        assert base in [ast.unparse(b) for b in found[cls].bases], f"{cls} does not derive from {base}"

    init = next(f for f in found[name].body if isinstance(f, ast.FunctionDef) and f.name == "__init__")
    assigned = {
        target.attr: stmt.value
        for stmt in init.body
        if isinstance(stmt, ast.Assign)
        for target in stmt.targets
        if isinstance(target, ast.Attribute) and ast.unparse(target.value) == "self.parent"
    }
    for attribute in ("title", "categories", "contributors", "helpText", "acknowledgementText"):
        assert attribute in assigned, f"{name} does not set parent.{attribute}"
    assert isinstance(assigned["categories"], ast.List) and assigned["categories"].elts


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_run_test_runs_every_test_method(name) -> None:
    """Slicer's ctest calls ``runTest`` only: a ``test_*`` method it forgets never runs in Slicer."""
    test_class = classes(parse(module_script(name)))[f"{name}Test"]
    methods = {f.name: f for f in test_class.body if isinstance(f, ast.FunctionDef)}
    tests = {m for m in methods if m.startswith("test_")}
    called = {
        node.func.attr
        for node in ast.walk(methods["runTest"])
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert f"test_{name}Logic" in tests, "the pytest tier runs test_<Name>Logic on slicer-core"
    assert tests <= called, f"runTest does not call {sorted(tests - called)}"
    assert "setUp" in called


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_module_script_imports_the_core_only_after_ensuring_it(name) -> None:
    for node in parse(module_script(name)).body:
        if isinstance(node, ast.Import):
            roots = {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots = {(node.module or "").split(".")[0]}
        else:
            continue
        assert roots <= LOAD_TIME_IMPORTS, f"{name}.py imports {sorted(roots - LOAD_TIME_IMPORTS)} at load time"


def test_qt_free_libraries_do_not_import_qt_or_ctk() -> None:
    """``<Name>Lib`` and ``OncoQISlicer`` must run on slicer-core, which has no Qt."""
    libraries = [
        p for p in slicer_side_python_files() if p.parent.name.endswith("Lib") or p.parent.name == "OncoQISlicer"
    ]
    assert len(libraries) >= 9
    for path in libraries:
        for node in ast.walk(parse(path)):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for module in names:
                assert module.split(".")[0] not in {"qt", "ctk", "PythonQt"}, f"{path} imports {module}"
                assert module != "slicer.ScriptedLoadableModule", f"{path} imports the application-only {module}"


def test_no_slicer_util_function_is_reached_through_the_slicer_namespace() -> None:
    """``slicer.getNode`` works on slicer-core (it copies ``slicer.util`` into ``slicer``) but not in Slicer."""
    try:
        spec = importlib.util.find_spec("slicer.util")
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:
        pytest.skip("slicer-core is not installed: its slicer/util.py lists the names to look for")
    util_tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    util_names = {n.name for n in util_tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    for path in slicer_side_python_files():
        for node in ast.walk(parse(path)):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "slicer":
                assert node.attr not in util_names, f"{path}:{node.lineno}: use slicer.util.{node.attr}"


# --- CMake, resources --------------------------------------------------------------------------


def cmake_list(text: str, variable: str, module_name: str) -> list[str]:
    match = re.search(rf"set\(\s*{variable}\s+(.*?)\)", text, re.S)
    assert match, f"no set({variable} ...)"
    return [item.replace("${MODULE_NAME}", module_name) for item in match.group(1).split()]


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_cmake_lists_install_exactly_the_module_files(name) -> None:
    text = (module_dir(name) / "CMakeLists.txt").read_text(encoding="utf-8")
    assert re.search(rf"set\(\s*MODULE_NAME\s+{name}\s*\)", text)
    scripts = cmake_list(text, "MODULE_PYTHON_SCRIPTS", name)
    resources = cmake_list(text, "MODULE_PYTHON_RESOURCES", name)

    for listed in scripts + resources:
        assert (module_dir(name) / listed).is_file(), f"CMakeLists.txt lists missing {listed}"
    on_disk = {
        str(p.relative_to(module_dir(name))) for p in slicer_side_python_files() if p.is_relative_to(module_dir(name))
    }
    assert set(scripts) == on_disk, f"Python files not installed: {sorted(on_disk - set(scripts))}"
    resource_files = {
        str(p.relative_to(module_dir(name))) for p in (module_dir(name) / "Resources").rglob("*") if p.is_file()
    }
    assert set(resources) == resource_files, f"resources not installed: {sorted(resource_files - set(resources))}"
    assert f"Resources/UI/{name}.ui" in resources and f"Resources/Icons/{name}.png" in resources

    assert re.search(r"slicerMacroBuildScriptedModule\(.*WITH_GENERIC_TESTS.*?\)", text, re.S)
    assert re.search(r"slicer_add_python_unittest\(\s*SCRIPT\s+\$\{MODULE_NAME\}\.py\s*\)", text)


def test_extension_cmake_lists_declares_metadata_and_every_module() -> None:
    text = (REPO_ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    assert re.search(r"^project\(OncoQI\)", text, re.M)
    for variable in ("HOMEPAGE", "CONTRIBUTORS", "DESCRIPTION", "ICONURL", "SCREENSHOTURLS", "DEPENDS"):
        assert re.search(rf"^set\(EXTENSION_{variable} ", text, re.M), f"EXTENSION_{variable} missing"
    assert re.findall(r"^add_subdirectory\((\w+)\)", text, re.M) == list(MODULE_FOLDERS)
    for line in (
        "find_package(Slicer REQUIRED)",
        "include(${Slicer_USE_FILE})",
        "include(${Slicer_EXTENSION_GENERATE_CONFIG})",
        "include(${Slicer_EXTENSION_CPACK})",
    ):
        assert line in text


def test_extension_index_entry_matches_the_cmake_metadata() -> None:
    import json

    entry = json.loads((REPO_ROOT / "Docs" / "extension-index" / "OncoQI.json").read_text(encoding="utf-8"))
    text = (REPO_ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    homepage = re.search(r'^set\(EXTENSION_HOMEPAGE "([^"]+)"\)', text, re.M).group(1)
    assert entry["category"] == "Quantification"
    assert entry["scm_url"].removesuffix(".git") == homepage
    assert entry["build_dependencies"] == []
    assert "slicer-extension-catalog-entry-schema" in entry["$schema"]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_icons_are_distinct_square_pngs() -> None:
    icons = [REPO_ROOT / "OncoQI.png"] + [module_dir(n) / "Resources" / "Icons" / f"{n}.png" for n in MODULE_NAMES]
    assert png_size(icons[0]) == (128, 128), "the Extensions Index shows a 128x128 extension icon"
    for icon in icons[1:]:
        width, height = png_size(icon)
        assert width == height and 32 <= width <= 256, icon
        assert icon.stat().st_size < 64_000, f"{icon} is larger than an icon needs to be"
    assert len({hashlib.sha256(i.read_bytes()).hexdigest() for i in icons}) == len(icons)


def test_requirements_match_the_core_with_its_lower_bounds_and_pin_nothing() -> None:
    """Slicer's Python gets exactly the core's third-party dependencies with the core's lower bounds
    (so Slicer 5.10's older pydicom is upgraded, not trusted), as ranges, never pins."""
    path = SHARED_PACKAGE / "requirements.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    requirements = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    for requirement in requirements:
        assert not re.search(r"==|===|~=|<", requirement), f"Slicer asks for ranges, not pins: {requirement}"
        assert ">=" in requirement, f"no lower bound: {requirement}"
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert requirements == pyproject["project"]["dependencies"]


def test_extension_installs_the_core_package() -> None:
    """The oncoqi core is not on PyPI: the extension must ship it beside the modules."""
    cmake = (REPO_ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    assert "ctkMacroCompilePythonScript" in cmake and "src/oncoqi/*.py" in cmake
    for resource in ("sample_petct.zip", "lung_unet.onnx"):  # the embedded sample and the shipped model
        assert f"oncoqi/data/{resource}" in cmake
        assert (REPO_ROOT / "src" / "oncoqi" / "data" / resource).is_file()


def test_extension_installs_the_shared_slicer_package() -> None:
    """``OncoQISlicer`` is a top-level folder: the top-level CMakeLists installs all of it (every
    ``.py`` and its ``requirements.txt``) beside the modules, as the core; no module lists it."""
    cmake = (REPO_ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    assert "OncoQISlicer/*.py" in cmake and '"OncoQISlicer/requirements.txt"' in cmake
    assert (SHARED_PACKAGE / "__init__.py").is_file() and (SHARED_PACKAGE / "requirements.txt").is_file()
    stray = [
        p.name for p in SHARED_PACKAGE.iterdir() if p.is_file() and p.suffix != ".py" and p.name != "requirements.txt"
    ]
    assert stray == [], f"files the CMakeLists does not install: {stray}"
    for name in MODULE_NAMES:
        assert "OncoQISlicer" not in (module_dir(name) / "CMakeLists.txt").read_text(encoding="utf-8"), name


def test_one_requirements_file_for_the_four_modules() -> None:
    """Every module's ``Resources/`` is copied into one ``qt-scripted-modules/Resources``: a
    ``requirements.txt`` there would be the last module's. The list lives in ``OncoQISlicer/``."""
    for name in MODULE_NAMES:
        assert not (module_dir(name) / "Resources" / "requirements.txt").exists(), name
