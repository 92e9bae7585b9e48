"""Slicer's real Python layer, assembled around ``slicer-core``'s real MRML, for the module tests.

What is real (unmodified files from ``../shared/slicer-python/<version>``, Slicer v5.8.0 or v5.12.0):
``slicer.ScriptedLoadableModule``, ``slicer.parameterNodeWrapper`` (serializers, validators, GUI
connectors and ``connectGui``), ``slicer.util``, ``slicer.i18n``, ``slicer.packaging`` (5.12 only:
it first shipped in 5.11) and ``DICOMLib.DICOMPlugin``/``DICOMLib.DICOMUtils``. The MRML scene,
nodes and module logics are ``slicer-core``'s (Slicer's C++ core as a wheel).

What stands in, and only because it cannot be had outside the application (named like the real
thing, doing the least that Slicer's code above needs):

* ``qt`` and ``ctk`` (PythonQt): ``slicer_layer.qt``, ``slicer_layer.ctk``; the qMRML widgets:
  ``slicer_layer.mrml_widgets``; ``.ui`` files are built by ``slicer_layer.ui``;
* ``slicer.app`` (:class:`SlicerApplication`): testing/headless flags, the module manager, modal
  dialogs (recorded; in headless mode a modal dialog is an error, since nobody could answer it);
* ``slicer.dicomDatabase`` (:class:`FakeDICOMDatabase`): answers ``fileValue`` from the files' top
  level, as ``ctkDICOMDatabase`` does (a tag inside a sequence is not found), and counts how often
  a plugin asks;
* the ``SampleData`` module (not in ``../shared/slicer-python``): ``SampleDataLogic.
  registerCustomSampleDataSource`` with Slicer's signature (identical in 5.8, 5.10 and 5.12),
  recording each source in :attr:`SlicerLayer.sample_sources`.

:func:`install` puts all of it in place for one test (through a ``pytest.MonkeyPatch``, so
everything is restored afterwards).
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import types
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Slicer's Python layer at two release tags (never copied into the repository).
SLICER_PYTHON = REPO_ROOT.parent / "shared" / "slicer-python"
#: The Slicer releases the tier runs against: the oldest branch we test and the newest.
VERSIONS = ("v5.8.0", "v5.12.0")

#: What Slicer 5.12.0 bundles in its Python (``SuperBuild/External_python-*.cmake`` at v5.12.0) as
#: import names, besides the standard library and Slicer's own packages. A DICOM plugin's
#: ``examine`` runs on every DICOM browse, before any module could install anything: it may import
#: only these. tqdm, onnxruntime and scikit-image are not among them.
SLICER_5_12_BUNDLED = frozenset(
    {
        "numpy",
        "scipy",
        "pydicom",
        "highdicom",
        "dcmqi",
        "PIL",
        "jpeg_ls",
        "requests",
        "urllib3",
        "idna",
        "certifi",
        "charset_normalizer",
        "packaging",
        "SimpleITK",
        "typing_extensions",
        "dicomweb_client",
        "retrying",
        "pip",
        "setuptools",
        "wheel",
    }
)


def skip_without_slicer_python(version: str) -> Path:
    """The folder of Slicer's Python layer at ``version``; skip saying it is absent (the skip fails the
    run under ``ONCOQI_REQUIRE_ALL=1``, which ``.ci/run`` sets)."""
    folder = SLICER_PYTHON / version
    if not (folder / "Base" / "Python" / "slicer" / "ScriptedLoadableModule.py").is_file():
        pytest.skip(f"Slicer's Python layer is not at {folder} (../shared/slicer-python beside the checkout)")
    return folder


# --- the application ---------------------------------------------------------------------------


class HeadlessDialogError(RuntimeError):
    """A modal dialog was opened with no main window: a real headless Slicer would wait for ever."""


@dataclass
class ScriptedModule:
    """What ``slicer.app.moduleManager().module(name)`` returns for a scripted module."""

    name: str
    path: str


class ModuleManager:
    """The module manager: module paths, and the signal Widgets connect to for cleanup."""

    def __init__(self, modules: dict[str, str]) -> None:
        self.modules = {name: ScriptedModule(name, path) for name, path in modules.items()}
        self.slots: dict[str, list[Any]] = {}

    def module(self, name: str) -> ScriptedModule | None:
        return self.modules.get(name)

    def connect(self, signature: str, slot: Any) -> bool:
        self.slots.setdefault(signature, []).append(slot)
        return True

    def disconnect(self, signature: str, slot: Any) -> bool:
        if slot in self.slots.get(signature, []):
            self.slots[signature].remove(slot)
        return True


class SlicerApplication:
    """``slicer.app``: what Slicer's Python layer and the modules ask of the application.

    Attributes
    ----------
    dialogs
        ``(window title, text)`` of every modal message box opened (error, info, confirmation).
    answers
        What the user clicks in the next confirmation dialogs (default OK).
    """

    applicationName = "3D Slicer"
    documentationBaseUrl = "https://slicer.readthedocs.io/en/latest/"

    def __init__(self, booted: Any, modules: dict[str, str], *, testing: bool, headless: bool, home: Path) -> None:
        import qt

        self.booted = booted
        self.testing = testing
        self.headless = headless
        self.slicerHome = str(home)
        self.temporaryPath = str(home / "tmp")
        self.options = types.SimpleNamespace(noMainWindow=headless, runPythonAndExit=False)
        self.manager = ModuleManager(modules)
        self.dialogs: list[tuple[str, str]] = []
        self.answers: list[int] = []
        self.overrideCursorDepth = 0
        self.exitStatus: int | None = None
        self._mainWindow = None if headless else qt.QMainWindow()
        if self._mainWindow is not None:
            self._mainWindow.objectName = "qSlicerMainWindow"
        self._startupSlots: list[Any] = []

    def testingEnabled(self) -> bool:
        return self.testing

    def commandOptions(self) -> Any:
        return self.options

    def topLevelWidgets(self) -> list[Any]:
        return [self._mainWindow] if self._mainWindow is not None else []

    def moduleManager(self) -> ModuleManager:
        return self.manager

    def applicationLogic(self) -> Any:
        return self.booted.application_logic

    def mrmlScene(self) -> Any:
        return self.booted.scene

    def translate(self, context: str, text: str) -> str:
        return text

    def setOverrideCursor(self, cursor: Any) -> None:
        self.overrideCursorDepth += 1

    def restoreOverrideCursor(self) -> None:
        self.overrideCursorDepth -= 1

    def processEvents(self, *args: Any) -> None:
        pass

    def userSettings(self) -> Any:
        import qt

        return qt.QSettings()

    settings = userSettings

    def connect(self, signature: str, slot: Any) -> bool:
        if signature.startswith("startupCompleted"):
            self._startupSlots.append(slot)
        return True

    def completeStartup(self) -> None:
        """Emit ``startupCompleted()`` (what Slicer does once every module is loaded)."""
        for slot in self._startupSlots:
            slot()

    def exit(self, status: int = 0) -> None:
        self.exitStatus = status

    def showModal(self, box: Any) -> int:
        """A modal dialog's ``exec_``: recorded; with no main window nobody could answer it."""
        import qt

        self.dialogs.append((str(box.windowTitle).strip(), str(box.text)))
        if self.headless:
            raise HeadlessDialogError(f"modal dialog with no main window: {box.text!r}")
        return self.answers.pop(0) if self.answers else qt.QMessageBox.Ok


# --- the DICOM database -------------------------------------------------------------------------


def _element_text(element: Any) -> str:
    """A data element's value as ``ctkDICOMDatabase.fileValue`` returns it (multi-values joined by ``\\``)."""
    import pydicom

    if element.VR == "SQ" or element.value is None:
        return ""
    value = element.value
    if isinstance(value, bytes):
        return value.decode("ascii", errors="replace").strip(" \x00")
    if isinstance(value, pydicom.multival.MultiValue):
        return "\\".join(str(v) for v in value)
    return str(value)


class FakeDICOMDatabase:
    """``slicer.dicomDatabase`` for files indexed once, as Slicer's DICOM import does.

    ``fileValue(file, "gggg,eeee")`` answers from the file's top-level elements read at indexing
    (``ctkDICOMItem::GetAllElementValuesAsString`` does not search into sequences): missing -> "".
    ``calls`` counts the questions; ``indexed_reads`` the files read when indexing.
    """

    def __init__(self, files: Iterable[str | Path]) -> None:
        self.values: dict[str, dict[str, str]] = {}
        self.series: dict[str, list[str]] = {}
        self.instances: dict[str, str] = {}
        self.calls = 0
        self.tagsToPrecache: list[str] = []
        self.add_files(files)

    def add_files(self, files: Iterable[str | Path]) -> None:
        """Index files (``ctkDICOMIndexer``): read each header once."""
        import pydicom

        for path in files:
            ds = pydicom.dcmread(str(path), stop_before_pixels=True)
            tags = {f"{e.tag.group:04X},{e.tag.element:04X}": _element_text(e) for e in ds}
            self.values[str(path)] = tags
            self.series.setdefault(tags.get("0020,000E", ""), []).append(str(path))
            self.instances[tags.get("0008,0018", "")] = str(path)

    @property
    def isOpen(self) -> bool:
        """A Qt property in ``ctkDICOMDatabase``: an attribute in PythonQt, not a method."""
        return True

    def fileForInstance(self, sop_instance_uid: str) -> str:
        return self.instances.get(sop_instance_uid, "")

    def fileValue(self, file: str, tag: str) -> str:
        self.calls += 1
        return self.values.get(str(file), {}).get(tag.upper(), "")

    def fileValueExists(self, file: str, tag: str) -> bool:
        return tag.upper() in self.values.get(str(file), {})

    def filesForSeries(self, series_uid: str, hits: int = -1) -> list[str]:
        files = self.series.get(series_uid, [])
        return files if hits < 0 else files[:hits]

    def seriesForFile(self, file: str) -> str:
        return self.values.get(str(file), {}).get("0020,000E", "")


class SubjectHierarchyPluginHandler:
    """``slicer.qSlicerSubjectHierarchyPluginHandler.instance()``: the display options DICOMPlugin reads."""

    displayPatientIDInSubjectHierarchyItemName = False
    displayPatientBirthDateInSubjectHierarchyItemName = False
    displayStudyIDInSubjectHierarchyItemName = False
    displayStudyDateInSubjectHierarchyItemName = False

    @staticmethod
    def instance() -> SubjectHierarchyPluginHandler:
        return SubjectHierarchyPluginHandler()


def sample_data_module(sources: list[dict[str, Any]]) -> types.ModuleType:
    """A ``SampleData`` module whose logic records what is registered (Slicer's keyword signature)."""

    class SampleDataLogic:
        @staticmethod
        def registerCustomSampleDataSource(
            category="Custom",
            sampleName=None,
            uris=None,
            fileNames=None,
            nodeNames=None,
            customDownloader=None,
            thumbnailFileName=None,
            loadFileTypes=None,
            loadFiles=None,
            loadFileProperties={},  # noqa: B006
            checksums=None,
            loadFileType=None,
        ):
            sources.append(
                dict(
                    category=category,
                    sampleName=sampleName,
                    uris=uris,
                    fileNames=fileNames,
                    nodeNames=nodeNames,
                    customDownloader=customDownloader,
                    thumbnailFileName=thumbnailFileName,
                )
            )

    module = types.ModuleType("SampleData", "Test-only stand-in: Slicer's Sample Data module")
    module.SampleDataLogic = SampleDataLogic
    return module


# --- loading Slicer's files -------------------------------------------------------------------


def _load(patch: pytest.MonkeyPatch, name: str, path: Path, package: bool = False) -> types.ModuleType:
    """Import Slicer's file (or package folder) at ``path`` as module ``name`` (undone by ``patch``)."""
    init = path / "__init__.py" if package else path
    spec = importlib.util.spec_from_file_location(
        name, init, submodule_search_locations=[str(path)] if package else None
    )
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    patch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


@dataclass
class SlicerLayer:
    """What :func:`install` put in place for one test."""

    version: str
    app: SlicerApplication
    modules: types.SimpleNamespace
    patch: pytest.MonkeyPatch
    modules_before: set[str]
    loaded: dict[str, types.ModuleType] = field(default_factory=dict)
    widgets: list[tuple[str, Any]] = field(default_factory=list)
    sample_sources: list[dict[str, Any]] = field(default_factory=list)

    def unload_modules(self) -> None:
        """Unload every module whose Widget was created: Slicer emits ``moduleAboutToBeUnloaded``
        and the base class calls the Widget's ``cleanup`` (observers off, jobs cancelled)."""
        for name, _widget in reversed(self.widgets):
            for slot in list(self.app.manager.slots.get("moduleAboutToBeUnloaded(QString)", [])):
                slot(name)
        self.widgets.clear()

    def cleanup(self) -> None:
        """Forget the modules of Slicer's layer imported under this layer (their versions differ).

        The modules' ``*Lib`` and ``OncoQISlicer`` packages stay: they look ``slicer.util`` up at call time.
        """
        for name in set(sys.modules) - self.modules_before:
            if name.split(".")[0] in ("slicer", "DICOMLib", "qt", "ctk"):
                sys.modules.pop(name, None)

    @property
    def slot_errors(self) -> list[BaseException]:
        """Exceptions raised in slots (button clicks, timers), which PythonQt prints and swallows."""
        from slicer_layer import qt

        return qt.SLOT_ERRORS

    @property
    def has_packaging(self) -> bool:
        return "slicer.packaging" in self.loaded

    def load_module(self, name: str, folder: Path) -> types.ModuleType:
        """Import ``folder/<name>.py`` as Slicer's scripted-module factory does (module ``name``)."""
        path = folder / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None, path
        module = importlib.util.module_from_spec(spec)
        self.patch.setitem(sys.modules, name, module)
        spec.loader.exec_module(module)
        return module

    def instantiate_module(self, module: types.ModuleType, name: str) -> Any:
        """The module class with the ``parent`` Slicer gives it (``qSlicerScriptedLoadableModule``)."""
        parent = types.SimpleNamespace(path=str(Path(module.__file__)), hidden=False)
        return getattr(module, name)(parent), parent

    def create_widget(self, module: types.ModuleType, name: str) -> Any:
        """``<name>Widget`` on a module panel, set up and entered, as when a user opens the module."""
        import qt
        import slicer

        panel = slicer.qSlicerScriptedLoadableModuleWidget()
        panel.setLayout(qt.QVBoxLayout())
        widget = getattr(module, f"{name}Widget")(panel)
        self.widgets.append((name, widget))
        widget.setup()
        panel.isEntered = True
        widget.enter()
        return widget


def install(
    patch: pytest.MonkeyPatch,
    version: str,
    booted: Any,
    modules: dict[str, str],
    home: Path,
    *,
    testing: bool = False,
    headless: bool = False,
) -> SlicerLayer:
    """Put Slicer's ``version`` Python layer, the stand-ins and the booted MRML scene in place.

    Parameters
    ----------
    patch
        Restores ``sys.modules`` and ``slicer``'s attributes after the test.
    version
        ``"v5.8.0"`` or ``"v5.12.0"`` (skipped when ``../shared/slicer-python`` lacks it).
    booted
        The real MRML application of ``conftest._boot_mrml``.
    modules
        Slicer module name -> path of its ``<Name>.py`` (what the module manager knows).
    home
        A temporary folder for ``slicer.app.slicerHome`` and ``temporaryPath``.
    testing, headless
        ``Slicer --testing`` and ``Slicer --no-main-window``.
    """
    import slicer

    folder = skip_without_slicer_python(version)
    python = folder / "Base" / "Python" / "slicer"
    dicomlib = folder / "Modules" / "Scripted" / "DICOMLib"
    from slicer_layer import ctk, mrml_widgets, qt

    before = set(sys.modules)
    for name in list(sys.modules):
        if name.startswith(("slicer.parameterNodeWrapper", "DICOMLib")) or name in (
            "slicer.util",
            "slicer.i18n",
            "slicer.ScriptedLoadableModule",
            "slicer.packaging",
        ):
            patch.delitem(sys.modules, name)
    patch.setitem(sys.modules, "qt", qt)
    patch.setitem(sys.modules, "ctk", ctk)
    qt.QSettings.store = {}
    qt.SLOT_ERRORS.clear()
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    app = SlicerApplication(booted, modules, testing=testing, headless=headless, home=home)
    logics = {
        name.lower(): types.SimpleNamespace(logic=lambda logic=logic: logic)
        for name, logic in booted.module_logics.items()
    }
    slicer_modules = types.SimpleNamespace(**logics)
    for name, path in modules.items():
        setattr(slicer_modules, name.lower(), types.SimpleNamespace(path=path, logic=lambda: None))
    for name, value in {
        "app": app,
        "mrmlScene": booted.scene,
        "modules": slicer_modules,
        "qSlicerSubjectHierarchyPluginHandler": SubjectHierarchyPluginHandler,
        "qSlicerScriptedLoadableModule": ScriptedModule,
        **mrml_widgets.WIDGETS,
    }.items():
        patch.setattr(slicer, name, value, raising=False)
    for name in ("selfTests", "dicomDatabase", "packaging"):
        if hasattr(slicer, name):
            patch.delattr(slicer, name)

    layer = SlicerLayer(version, app, slicer_modules, patch, before)
    patch.setitem(sys.modules, "SampleData", sample_data_module(layer.sample_sources))
    if "OncoQISlicer.sampledata" in sys.modules:  # registered once per Slicer session: a new session here
        patch.setattr(sys.modules["OncoQISlicer.sampledata"], "_registered", False)
    for name, path, package in (
        ("slicer.i18n", python / "i18n.py", False),
        ("slicer.util", python / "util.py", False),
        ("slicer.packaging", python / "packaging.py", False),
        ("slicer.parameterNodeWrapper", python / "parameterNodeWrapper", True),
        ("slicer.ScriptedLoadableModule", python / "ScriptedLoadableModule.py", False),
    ):
        if not path.exists():
            continue  # slicer.packaging before 5.11
        module = _load(patch, name, path, package)
        patch.setattr(slicer, name.split(".", 1)[1], module, raising=False)
        layer.loaded[name] = module
    dicom_package = types.ModuleType("DICOMLib", "Slicer's DICOMLib: only DICOMPlugin and DICOMUtils are loaded")
    dicom_package.__path__ = [str(dicomlib)]  # type: ignore[attr-defined]
    patch.setitem(sys.modules, "DICOMLib", dicom_package)
    for part in ("DICOMPlugin", "DICOMUtils"):
        module = _load(patch, f"DICOMLib.{part}", dicomlib / f"{part}.py")
        for attribute in getattr(module, "__all__", [n for n in vars(module) if not n.startswith("_")]):
            setattr(dicom_package, attribute, getattr(module, attribute))
        layer.loaded[f"DICOMLib.{part}"] = module
    logging.getLogger(__name__).debug("Slicer %s layer installed", version)
    return layer
