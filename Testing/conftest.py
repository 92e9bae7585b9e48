"""Shared fixtures of the pytest tiers (core, real MRML on ``slicer-core``, ``.ui`` structure).

Three kinds of fixture live here:

* paths: :func:`repo_root`, :func:`shared_data` (real DICOM next to the checkout, skipped when
  absent) and :func:`extension_paths` (the module folders and ``OncoQISlicer`` on ``sys.path``, as
  Slicer puts them);
* :func:`mrml_scene`: a real MRML scene with the module logics Slicer's own code relies on,
  booted from the ``slicer-core`` wheel (Slicer's C++ core, no Qt); skipped with the reason when
  the wheel is not installed or the unrelated PyPI ``slicer`` package shadows it;
* :func:`slicer_layer_factory` / :func:`slicer_module_loader`: Slicer's own Python layer
  (``ScriptedLoadableModule``, ``parameterNodeWrapper``, ``util``, ``packaging``, ``DICOMLib``) from
  ``../shared/slicer-python`` at v5.8.0 or v5.12.0 on that scene, with stand-ins only for what needs
  the application (PythonQt's ``qt``/``ctk``, qMRML widgets, ``slicer.app``, the DICOM database):
  see ``Testing/slicer_layer`` and ``Docs/developers.md``.
"""

from __future__ import annotations

import os
import types
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

#: The extension's module folders, in the order the top-level CMakeLists adds them, and the Slicer
#: module each holds (``OncoQI`` + the folder's name, a name no other extension of the Index uses).
MODULE_FOLDERS = {
    "LungTumorSegmentation": "OncoQILungTumorSegmentation",
    "PETIndiC": "OncoQIPETIndiC",
    "QuantitativeReporting": "OncoQIQuantitativeReporting",
    "TCIABrowser": "OncoQITCIABrowser",
}
#: The Slicer module names, in the same order.
MODULE_NAMES = tuple(MODULE_FOLDERS.values())


def module_folder(name: str) -> Path:
    """The folder holding Slicer module ``name`` (``OncoQIPETIndiC`` -> ``PETIndiC/``)."""
    return REPO_ROOT / name.removeprefix("OncoQI")


#: The Qt-free package the four modules share, a top-level folder installed by the top-level
#: CMakeLists beside the modules (into ``qt-scripted-modules``, which Slicer puts on ``sys.path``).
SHARED_PACKAGE = REPO_ROOT / "OncoQISlicer"


#: Set by ``.ci/run``: every check must run, so a skipped test (a missing validator, reference
#: library, data set or Slicer layer) fails the run instead, with the skip's reason.
REQUIRE_ALL = os.environ.get("ONCOQI_REQUIRE_ALL") == "1"

#: The test tiers the summary line counts, by marker or by the fixture a test uses.
TIERS = {
    "Slicer layer": lambda item: item.path.name == "test_slicer_tier.py",
    "real MRML": lambda item: item.get_closest_marker("slicer") is not None,
    "offscreen Qt": lambda item: item.get_closest_marker("qt") is not None,
    "real DICOM (../shared/data)": lambda item: item.get_closest_marker("shared_data") is not None,
}
_ran: Counter[str] = Counter()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that read ``../shared/data`` (the fixture, or a module importing
    ``helpers.datasets`` at its top)."""
    reads_data: dict[Path, bool] = {}
    for item in items:
        if item.path not in reads_data:
            reads_data[item.path] = "\nfrom helpers.datasets import" in item.path.read_text(encoding="utf-8")
        if "shared_data" in getattr(item, "fixturenames", ()) or reads_data[item.path]:
            item.add_marker(pytest.mark.shared_data)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """Under ``ONCOQI_REQUIRE_ALL=1`` a skip is a failure; count what ran per tier."""
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_ALL and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"ONCOQI_REQUIRE_ALL=1: a check that cannot run fails the run: {reason}"
    if report.when == "call" and report.passed:
        _ran["all"] += 1
        for tier, belongs in TIERS.items():
            if belongs(item):
                _ran[tier] += 1


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    """Under ``ONCOQI_REQUIRE_ALL=1`` a module skipped at import (``importorskip``) fails too."""
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_ALL and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"ONCOQI_REQUIRE_ALL=1: {collector.nodeid} cannot run: {report.longrepr}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line saying which tiers ran (how many tests passed in each)."""
    tiers = ", ".join(f"{tier} {_ran[tier]}" for tier in TIERS)
    mode = "every check required" if REQUIRE_ALL else "skips allowed"
    terminalreporter.write_line(f"OncoQI tiers passed: all {_ran['all']}; {tiers} ({mode})")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The checkout's root folder (where ``CMakeLists.txt`` and ``src/`` are)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data(repo_root: Path) -> Path:
    """``../shared/data`` next to the checkout: real DICOM sets that are never copied into the repo."""
    path = repo_root.parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"no shared test data at {path} (a fresh clone has none)")
    return path


@pytest.fixture(scope="session")
def extension_paths() -> Iterator[list[Path]]:
    """Put the four module folders and the folder holding ``OncoQISlicer`` on ``sys.path`` for the session.

    Slicer adds every scripted-module folder to ``sys.path``; that is how ``<Name>Lib`` is imported.
    The shared ``OncoQISlicer`` package is installed into ``qt-scripted-modules``, also on ``sys.path``;
    in the checkout it is a top-level folder (:data:`SHARED_PACKAGE`), so its parent goes on the path.
    """
    paths = [REPO_ROOT / folder for folder in MODULE_FOLDERS] + [SHARED_PACKAGE.parent]
    with pytest.MonkeyPatch.context() as patch:
        for path in reversed(paths):
            patch.syspath_prepend(str(path))
        yield paths


def _slicer_core() -> types.ModuleType:
    """Import ``slicer`` from the ``slicer-core`` wheel, or skip saying why it is unusable."""
    try:
        import slicer
    except ImportError as exc:
        pytest.skip(f"slicer-core is not installed ({exc}); pip install 'slicer-core==5.12.*'")
    if not hasattr(slicer, "vtkMRMLScene"):
        pytest.skip(
            "'import slicer' has no MRML: the unrelated PyPI package 'slicer' shadows slicer-core; "
            "uninstall it and reinstall slicer-core with --force-reinstall"
        )
    return slicer


@dataclass
class MRMLApplication:
    """What :func:`mrml_scene` booted: the scene and the logics registered on it."""

    scene: Any
    application_logic: Any
    module_logics: dict[str, Any]


def _boot_mrml() -> MRMLApplication:
    """A new scene with the application logic and the module logics that MRML code expects.

    The Segmentations logic registers the labelmap/surface converters (without it a segment cannot
    be created), the Colors logic the default colour tables that display nodes use, and the
    Volumes logic is what ``slicer.util`` calls for labelmap helpers.
    """
    import vtk

    slicer = _slicer_core()
    scene = slicer.vtkMRMLScene()
    application_logic = slicer.vtkSlicerApplicationLogic()
    application_logic.SetMRMLScene(scene)
    color_logic = application_logic.GetColorLogic()
    color_logic.SetMRMLScene(scene)
    color_logic.AddDefaultColorNodes()
    application_logic.SetSliceLogics(vtk.vtkCollection())
    application_logic.SetViewLogics(vtk.vtkCollection())
    module_logics = {
        "Colors": color_logic,
        "Volumes": slicer.vtkSlicerVolumesLogic(),
        "Segmentations": slicer.vtkSlicerSegmentationsModuleLogic(),
        "SubjectHierarchy": slicer.vtkSlicerSubjectHierarchyModuleLogic(),
    }
    for name, logic in module_logics.items():
        logic.SetMRMLScene(scene)
        logic.SetMRMLApplicationLogic(application_logic)
        application_logic.SetModuleLogic(name, logic)
    return MRMLApplication(scene, application_logic, module_logics)


@pytest.fixture
def mrml_app(extension_paths: list[Path]) -> Iterator[MRMLApplication]:
    """A freshly booted real MRML scene, installed as ``slicer.mrmlScene`` for the test.

    ``slicer.app``, ``slicer.modules`` and ``slicer.mrmlScene`` exist only inside the Slicer
    application; code under test (and ``slicer.util``) reaches the scene and the module logics
    through them, so they are set for the duration of the test and restored afterwards.
    """
    slicer = _slicer_core()
    booted = _boot_mrml()
    modules = types.SimpleNamespace(
        **{
            name.lower(): types.SimpleNamespace(logic=lambda logic=logic: logic)
            for name, logic in booted.module_logics.items()
        }
    )
    application = types.SimpleNamespace(
        applicationLogic=lambda: booted.application_logic, mrmlScene=lambda: booted.scene
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(slicer, "mrmlScene", booted.scene, raising=False)
        patch.setattr(slicer, "modules", modules, raising=False)
        patch.setattr(slicer, "app", application, raising=False)
        yield booted
    booted.scene.Clear(1)


@pytest.fixture
def mrml_scene(mrml_app: MRMLApplication) -> Any:
    """The ``vtkMRMLScene`` of :func:`mrml_app` (also ``slicer.mrmlScene`` during the test)."""
    return mrml_app.scene


@pytest.fixture
def boot_mrml_scene(mrml_app: MRMLApplication) -> Callable[[], Any]:
    """Boot further, independent scenes (e.g. to reload a saved one) with the same logics registered.

    ``slicer.mrmlScene`` stays the scene of :func:`mrml_app`.
    """
    return lambda: _boot_mrml().scene


# --- Slicer's real Python layer (../shared/slicer-python) around the real MRML scene ---------------


@dataclass
class SlicerModuleLoader:
    """Loads module scripts under Slicer's real Python layer and records the dependency checks.

    Attributes
    ----------
    layer
        What :func:`slicer_layer.install` put in place (``layer.app`` is ``slicer.app``).
    requirement_checks
        ``(requirements, requester)`` for every ``OncoQISlicer.dependencies.ensure_requirements`` call.
    """

    layer: Any
    requirement_checks: list[tuple[list[str], str]] = field(default_factory=list)

    def load(self, name: str) -> types.ModuleType:
        """Import ``<folder>/<name>.py`` as module ``name`` (removed from ``sys.modules`` after the test)."""
        return self.layer.load_module(name, module_folder(name))


@pytest.fixture
def slicer_layer_factory(mrml_app: MRMLApplication, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Install Slicer's Python layer of a version: ``factory(version, testing=False, headless=False)``.

    Skips (fails under CI) when ``../shared/slicer-python`` is absent. Everything is undone after the test.
    """
    from slicer_layer import install

    modules = {name: str(module_folder(name) / f"{name}.py") for name in MODULE_NAMES}
    layers = []
    with pytest.MonkeyPatch.context() as patch:

        def factory(version: str = "v5.12.0", *, testing: bool = False, headless: bool = False) -> Any:
            layer = install(
                patch,
                version,
                mrml_app,
                modules,
                tmp_path / f"slicer-home-{len(layers)}",
                testing=testing,
                headless=headless,
            )
            layers.append(layer)
            return layer

        yield factory
        for layer in layers:
            layer.unload_modules()
    for layer in layers:
        layer.cleanup()


@pytest.fixture
def slicer_module_loader(slicer_layer_factory: Callable[..., Any]) -> Iterator[SlicerModuleLoader]:
    """Load module scripts on the real MRML scene under Slicer 5.12's real Python layer."""
    layer = slicer_layer_factory("v5.12.0")
    loader = SlicerModuleLoader(layer)
    import OncoQISlicer.dependencies as dependencies

    real = dependencies.ensure_requirements

    def recording(requirements: list[str], requester: str) -> None:
        loader.requirement_checks.append((list(requirements), requester))
        real(requirements, requester)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dependencies, "ensure_requirements", recording)
        yield loader


@pytest.fixture
def server():
    """A local NBIA v4 test server (``Testing/helpers/tcia_server.py``) on 127.0.0.1 with the shared catalogue."""
    from helpers.tcia_server import NBIATestServer, shared_catalog

    with NBIATestServer(shared_catalog(), lifetime=60) as srv:
        yield srv
