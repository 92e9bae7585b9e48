"""The Slicer tier: the four modules and the DICOM plugin under Slicer's own Python layer.

Slicer's real ``ScriptedLoadableModule``, ``parameterNodeWrapper``, ``util``, ``packaging`` and
``DICOMLib`` at v5.8.0 and v5.12.0 (``../shared/slicer-python``) run on ``slicer-core``'s real MRML,
with stand-ins only for the application (``Testing/slicer_layer``). For each module and version:

* the parameter node round-trips every parameter on a real scene;
* the Widget is set up as Slicer does it (``.ui`` built from the file, ``connectGui``): whatever
  Slicer's connector choice refuses fails here, and every widget the ``.ui`` binds carries a user's
  edit to the parameter node and back;
* every button's path through the Logic is clicked, on the embedded sample;
* the module's own Test class runs (``runTest``, as ``--testing`` does).

Then the DICOM plugin through Slicer's ``DICOMPlugin`` machinery with only Slicer 5.12's bundled
packages importable, the headless script with no dialog possible, and bad input in the modules.
"""

from __future__ import annotations

import builtins
import json
import runpy
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import MODULE_NAMES, module_folder
from slicer_layer import SLICER_5_12_BUNDLED, VERSIONS, FakeDICOMDatabase, HeadlessDialogError

pytestmark = pytest.mark.slicer

#: Seconds a background job may take on the sample.
JOB_TIMEOUT_S = 300


@pytest.fixture(params=VERSIONS)
def version(request) -> str:
    return request.param


@pytest.fixture
def layer(slicer_layer_factory, version):
    """Slicer's layer of ``version``, as a user's (interactive) Slicer has it."""
    return slicer_layer_factory(version)


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    from oncoqi.phantom.sample import extract_sample

    return extract_sample(tmp_path_factory.mktemp("tier_sample"))


@pytest.fixture(scope="module")
def test_model(tmp_path_factory) -> Path:
    """The exact ``codes / 255`` graph (fast; every dense voxel of the search region is 'tumour')."""
    from helpers.lung import small_identity_model

    return small_identity_model(tmp_path_factory.mktemp("tier_model") / "identity.onnx")


def load(layer, name: str):
    return layer.load_module(name, module_folder(name))


def load_dicom_plugin(layer):
    """Load the hidden plugin module as Slicer does at startup: it registers the plugin class."""
    module = layer.load_module("DICOMOncoQIPlugin", module_folder("OncoQIQuantitativeReporting"))
    layer.instantiate_module(module, "DICOMOncoQIPlugin")
    return module


def ui_bindings(name: str) -> dict[str, ET.Element]:
    """``SlicerParameterName`` -> the ``<widget>`` of the module's ``.ui`` that carries it."""
    root = ET.parse(module_folder(name) / "Resources" / "UI" / f"{name}.ui").getroot()
    found = {}
    for widget in root.iter("widget"):
        prop = widget.find("property[@name='SlicerParameterName']")
        if prop is not None:
            found[prop.findtext("string")] = widget
    return found


def wait_for(timer, done, timeout: float = JOB_TIMEOUT_S) -> None:
    """Deliver ``timer``'s timeouts, as Slicer's event loop does, until ``done()``."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the background work did not finish"
        timer.fire()
        time.sleep(0.02)


# --- parameter values --------------------------------------------------------------------------


def other_value(info, current: Any, tmp_path: Path) -> Any:
    """A valid value of a parameter that differs from ``current``."""
    import slicer
    from slicer.parameterNodeWrapper import Choice, findFirstAnnotation, isNodeOrUnionOfNodes, splitAnnotations

    datatype, annotations = splitAnnotations(info.unalteredType)
    if isNodeOrUnionOfNodes(info.unalteredType):
        from slicer.parameterNodeWrapper import getNodeTypes

        return slicer.mrmlScene.AddNewNodeByClass(getNodeTypes(info.unalteredType)[0], f"{info.basename} node")
    choice = findFirstAnnotation(annotations, Choice)
    if choice is not None:
        return next(c for c in choice.choices if c != current)
    if datatype is bool:
        return not current
    if datatype is int:
        return current + 2
    if datatype is float:
        return current + 1.5
    if datatype is str:
        return f"{current}edited"
    if datatype is Path or (isinstance(datatype, type) and issubclass(datatype, Path)):
        return tmp_path
    raise AssertionError(f"no test value for a {datatype} parameter ({info.basename})")


def same(a: Any, b: Any) -> bool:
    if hasattr(a, "GetID") and hasattr(b, "GetID"):
        return a.GetID() == b.GetID()
    return a == b


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_parameter_node_round_trips_every_parameter(name, layer, tmp_path) -> None:
    module = load(layer, name)
    logic = getattr(module, f"{name}Logic")()
    parameters = logic.getParameterNode()
    values = {}
    for parameter, info in parameters.allParameters.items():
        values[parameter] = other_value(info, parameters.getValue(parameter), tmp_path)
        parameters.setValue(parameter, values[parameter])
    assert values, f"{name} has no parameters"

    fresh = getattr(module, f"{name}Logic")().getParameterNode()  # reads the MRML node again
    for parameter, value in values.items():
        assert same(fresh.getValue(parameter), value), parameter
    mrml = fresh.parameterNode
    assert mrml.GetAttribute("ModuleName") == name and mrml.GetSingletonTag() == name


# --- the Widget: Slicer's connectGui on every .ui widget --------------------------------------------


def user_edit(widget, tmp_path: Path) -> None:
    """What a user does to change a widget's value (select, tick, type, pick)."""
    import slicer

    kind = type(widget).__name__
    if kind == "qMRMLNodeComboBox":
        widget.setCurrentNode(slicer.mrmlScene.AddNewNodeByClass(widget.nodeTypes[0], "picked by the user"))
    elif kind in ("QCheckBox", "ctkCheckBox"):
        widget.checked = not widget.checked
    elif kind in ("QSpinBox", "QDoubleSpinBox", "ctkSliderWidget", "ctkDoubleSpinBox"):
        widget.value = widget.value + 1 if widget.value + 1 <= widget.maximum else widget.value - 1
    elif kind in ("QComboBox", "ctkComboBox"):
        widget.currentIndex = (widget.currentIndex + 1) % widget.count()
    elif kind == "QLineEdit":
        widget.text = widget.text + "typed"
    elif kind == "ctkDirectoryButton":
        widget.directory = str(tmp_path)
    elif kind == "ctkPathLineEdit":
        widget.currentPath = str(tmp_path)
    else:
        raise AssertionError(f"the test cannot edit a {kind}")


#: The property that shows a widget's value to the user.
SHOWN = {
    "QCheckBox": "checked",
    "ctkCheckBox": "checked",
    "QSpinBox": "value",
    "QDoubleSpinBox": "value",
    "ctkSliderWidget": "value",
    "ctkDoubleSpinBox": "value",
    "QComboBox": "currentText",
    "ctkComboBox": "currentText",
    "QLineEdit": "text",
    "ctkDirectoryButton": "directory",
    "ctkPathLineEdit": "currentPath",
}


def shown(widget) -> Any:
    kind = type(widget).__name__
    return widget.currentNode() if kind == "qMRMLNodeComboBox" else getattr(widget, SHOWN[kind])


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_connect_gui_binds_every_ui_widget_both_ways(name, layer, tmp_path) -> None:
    bindings = ui_bindings(name)
    widget = layer.create_widget(load(layer, name), name)  # Slicer's connectGui raises here if it refuses
    p = widget._parameterNode
    assert set(bindings) <= set(p.allParameters), f"{name}.ui binds unknown parameters"
    for parameter, element in bindings.items():
        ui_widget = getattr(widget.ui, element.get("name"))
        assert type(ui_widget).__name__ == element.get("class")
        before = p.getValue(parameter)
        user_edit(ui_widget, tmp_path)
        after = p.getValue(parameter)
        assert not same(after, before), f"{element.get('name')} did not change '{parameter}'"
        value = shown(ui_widget)
        assert same(after, value) or str(after) == str(value), (parameter, after, value)
        # and back: the parameter node drives the widget
        p.setValue(parameter, before)
        assert same(shown(ui_widget), before) or str(shown(ui_widget)) == str(before) or before is None
    assert layer.app.dialogs == []


def test_a_str_parameter_on_a_combo_box_without_choice_fails_the_tier(slicer_layer_factory, version, tmp_path) -> None:
    """Slicer refuses ``method: str`` on a QComboBox; the tier must refuse it too (it did, before the fix)."""
    layer = slicer_layer_factory(version)
    source = (module_folder("OncoQIPETIndiC") / "OncoQIPETIndiC.py").read_text(encoding="utf-8")
    broken = source.replace(
        'method: Annotated[str, Choice(["fixed", "percent", "background"])] = "percent"', 'method: str = "percent"'
    )
    assert broken != source
    (tmp_path / "OncoQIPETIndiC.py").write_text(broken, encoding="utf-8")
    resources = tmp_path / "Resources"
    resources.symlink_to(module_folder("OncoQIPETIndiC") / "Resources")
    layer.app.manager.modules["OncoQIPETIndiC"].path = str(tmp_path / "OncoQIPETIndiC.py")
    layer.modules.oncoqipetindic.path = str(tmp_path / "OncoQIPETIndiC.py")
    module = layer.load_module("OncoQIPETIndiC", tmp_path)
    with pytest.raises(RuntimeError, match="requires the Choice annotation"):
        layer.create_widget(module, "OncoQIPETIndiC")


# --- every button's path through the Logic -------------------------------------------------------


def sample_nodes(sample: Path):
    """The sample CT as a volume node and its true tumours as a segmentation node on it."""
    import slicer
    from OncoQISlicer.mrml import segmentation_node_from_labels, volume_node_from_image

    from oncoqi.dicom import read_image
    from oncoqi.lung.naming import lesion_name

    ct = volume_node_from_image(slicer.mrmlScene, read_image(sample / "CT"), "sample CT")
    truth = read_image(sample / "truth" / "tumor_label.nrrd")
    names = {int(v): lesion_name(int(v)) for v in np.unique(truth.array) if v}
    lesions = segmentation_node_from_labels(slicer.mrmlScene, truth, names, reference_volume_node=ct, name="Lesions")
    return ct, lesions


def load_pet_through_the_plugin(layer, sample: Path):
    """The sample PET as the DICOM browser loads it: database, examine, the plugin's load."""
    import slicer
    from DICOMLib import DICOMUtils

    files = sorted(str(f) for f in (sample / "PET").iterdir())
    slicer.dicomDatabase = FakeDICOMDatabase(files + sorted(str(f) for f in (sample / "CT").iterdir()))
    load_dicom_plugin(layer)
    loadables = DICOMUtils.getLoadablesFromFileLists([files], ["DICOMOncoQIPlugin"])[0]
    ((plugin, (loadable,)),) = loadables.items()
    assert loadable.selected and loadable.confidence > 0.5, loadable.warning
    return plugin.load(loadable)


def test_lung_apply_segments_in_the_background_and_fills_the_outputs(layer, sample, test_model, monkeypatch) -> None:
    import slicer

    import oncoqi.lung.segment

    monkeypatch.setattr(oncoqi.lung.segment, "default_model_path", lambda: test_model)
    name = "OncoQILungTumorSegmentation"
    widget = layer.create_widget(load(layer, name), name)
    ui = widget.ui
    assert not ui.applyButton.enabled and ui.applyButton.toolTip == "Select a CT volume"
    ct, _ = sample_nodes(sample)
    ui.inputSelector.setCurrentNode(ct)
    ui.includeLungsCheckBox.checked = True
    ui.threadsSpinBox.value = 1
    assert ui.applyButton.enabled

    ui.applyButton.click()
    assert ui.cancelButton.enabled and not ui.applyButton.enabled and ui.progressBar.visible
    wait_for(widget._pollTimer, lambda: widget._job is None)

    p = widget._parameterNode
    assert layer.app.dialogs == [], layer.app.dialogs
    segments = p.outputSegmentation.GetSegmentation()
    assert segments.GetNthSegment(0).GetName() == "GTV-1"
    assert p.outputTable.GetNumberOfRows() == segments.GetNumberOfSegments()
    assert p.lungSegmentation.GetSegmentation().GetNumberOfSegments() == 2
    assert ui.lesionTableView.mrmlTableNode() is p.outputTable
    assert ui.outputSegmentationSelector.currentNode() is p.outputSegmentation
    assert ui.statusLabel.text.startswith("sample CT: ")
    assert (ui.applyButton.enabled, ui.cancelButton.enabled, ui.progressBar.visible) == (True, False, False)
    assert layer.app.overrideCursorDepth == 0 and layer.slot_errors == []
    assert slicer.mrmlScene.GetFirstNodeByName("sample CT") is ct

    before = node_ids()  # Cancel: the second run adds nothing
    ui.applyButton.click()
    ui.cancelButton.click()
    assert ui.statusLabel.text == "Cancelling..."
    wait_for(widget._pollTimer, lambda: widget._job is None)
    assert ui.statusLabel.text == "Cancelled: nothing was added to the scene." and node_ids() == before


def test_petindic_buttons_compute_segment_show_and_export(layer, sample, tmp_path) -> None:
    import slicer

    pet = load_pet_through_the_plugin(layer, sample)
    assert pet.GetVoxelValueUnits().GetCodeValue() == "{SUVbw}g/ml"
    _, lesions = sample_nodes(sample)
    truth = json.loads((sample / "truth" / "truth.json").read_text())
    name = "OncoQIPETIndiC"
    widget = layer.create_widget(load(layer, name), name)
    ui, p = widget.ui, widget._parameterNode
    ui.inputVolumeSelector.setCurrentNode(pet)
    ui.segmentationSelector.setCurrentNode(lesions)
    assert ui.applyButton.enabled and not ui.segmentButton.enabled

    ui.applyButton.click()
    table = p.indicesTable
    assert table.GetNumberOfRows() == len(truth["tumours"])
    assert ui.indicesTableView.mrmlTableNode() is table
    suv_max = table.GetTable().GetColumnByName("suv_max")
    assert max(suv_max.GetValue(r) for r in range(table.GetNumberOfRows())) > 1.5

    seed = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "seed")
    seed.AddControlPoint(*(np.array(truth["tumours"][0]["centre_lps_mm"]) * [-1, -1, 1]))
    ui.seedPointSelector.setCurrentNode(seed)
    ui.methodComboBox.currentIndex = ui.methodComboBox.findText("percent")
    ui.thresholdValueSpinBox.value = 50.0
    count = lesions.GetSegmentation().GetNumberOfSegments()
    ui.segmentButton.click()
    assert lesions.GetSegmentation().GetNumberOfSegments() == count + 1

    ui.fdgPresetButton.click()
    assert pet.GetScalarVolumeDisplayNode().GetColorNodeID() == "vtkMRMLColorTableNodeInvertedGrey"
    ui.rainbowPresetButton.click()
    assert pet.GetScalarVolumeDisplayNode().GetColorNodeID() != "vtkMRMLColorTableNodeInvertedGrey"

    ui.exportFolderButton.directory = str(tmp_path / "export")
    ui.exportButton.click()
    assert (tmp_path / "export" / "seg.dcm").is_file() and (tmp_path / "export" / "sr.dcm").is_file()
    assert [text for _title, text in layer.app.dialogs] == [
        f"Wrote {tmp_path / 'export' / 'seg.dcm'} and {tmp_path / 'export' / 'sr.dcm'}"
    ]
    assert layer.slot_errors == []


def test_quantitativereporting_measures_and_saves_into_the_dicom_database(layer, sample) -> None:
    import slicer

    slicer.dicomDatabase = FakeDICOMDatabase(sorted(str(f) for f in (sample / "CT").iterdir()))
    ct, lesions = sample_nodes(sample)
    name = "OncoQIQuantitativeReporting"
    widget = layer.create_widget(load(layer, name), name)
    ui, p = widget.ui, widget._parameterNode
    assert p.segmentation is lesions and p.referenceVolume is ct  # chosen for the user on entering
    ui.applyButton.click()
    assert p.measurements.GetNumberOfRows() == lesions.GetSegmentation().GetNumberOfSegments()

    ui.readerNameLineEdit.text = "Doe^Jane"
    ui.sourceFolderLineEdit.text = str(sample / "CT")
    before = len(slicer.dicomDatabase.values)
    ui.saveButton.click()
    assert len(slicer.dicomDatabase.values) == before + 2  # the SEG and the SR, indexed
    ((_title, text),) = layer.app.dialogs
    assert text.startswith("Saved ") and text.endswith(" into the DICOM database.")


def test_quantitativereporting_save_without_a_dicom_database_says_where_the_files_are(layer, sample) -> None:
    import slicer

    slicer.dicomDatabase = None  # the DICOM module never opened a database
    ct, lesions = sample_nodes(sample)
    name = "OncoQIQuantitativeReporting"
    widget = layer.create_widget(load(layer, name), name)
    widget.ui.sourceFolderLineEdit.text = str(sample / "CT")
    widget.ui.saveButton.click()
    ((_title, text),) = layer.app.dialogs
    assert text.startswith("Failed to save the report.") and "could not be added to the DICOM database" in text
    folder = Path(text.split(" are in ")[1].split(" but ")[0])
    assert sorted(p.name for p in folder.iterdir()) == ["seg.dcm", "sr.dcm"]


def test_tciabrowser_connects_browses_downloads_and_indexes(layer, server, tmp_path) -> None:
    import slicer

    from helpers.tcia_server import COLLECTION

    slicer.dicomDatabase = FakeDICOMDatabase([])
    name = "OncoQITCIABrowser"
    widget = layer.create_widget(load(layer, name), name)
    ui = widget.ui
    ui.sourceComboBox.currentIndex = ui.sourceComboBox.findText("TCIA")
    ui.apiUrlLineEdit.text = server.url
    ui.downloadFolderButton.directory = str(tmp_path / "downloads")
    ui.workersSpinBox.value = 2
    ui.applyButton.click()
    assert layer.app.dialogs == [], layer.app.dialogs
    ui.collectionComboBox.currentIndex = ui.collectionComboBox.findText(COLLECTION)
    assert ui.patientsTable.rowCount() > 0
    ui.patientsTable.selectRow(0)
    assert ui.seriesTable.rowCount() > 0
    ui.seriesTable.selectRow(0)
    ui.downloadIndexButton.click()
    assert ui.cancelButton.enabled
    wait_for(widget._pollTimer, lambda: not widget._pollTimer.isActive())
    assert layer.app.dialogs == [], layer.app.dialogs
    assert ui.statusLabel.text.startswith("1 downloaded")
    assert len(slicer.dicomDatabase.values) > 0  # the series is in the DICOM database

    load_dicom_plugin(layer)  # Download and load: through the DICOM plugins Slicer has
    ui.searchLineEdit.text = "PHANTOM-002"
    ui.searchButton.click()
    modality = ui.seriesTable.horizontalHeaderLabels().index("Modality")
    pet_row = next(r for r in range(ui.seriesTable.rowCount()) if ui.seriesTable.item(r, modality).text() == "PT")
    ui.seriesTable.selectRow(pet_row)
    ui.downloadLoadButton.click()
    wait_for(widget._pollTimer, lambda: not widget._pollTimer.isActive())
    assert layer.app.dialogs == [] and layer.slot_errors == [], layer.app.dialogs
    assert ui.statusLabel.text.startswith("1 downloaded")


# --- the modules' own Test classes, as Slicer --testing runs them ---------------------------------


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_module_test_class_passes(name, slicer_layer_factory, version, monkeypatch) -> None:
    """``runTest`` as ``Slicer --testing`` calls it; the Logic asks for the core's requirements first."""
    layer = slicer_layer_factory(version, testing=True)
    import OncoQISlicer.dependencies as dependencies
    import slicer

    checks = []
    real = dependencies.ensure_requirements
    monkeypatch.setattr(dependencies, "ensure_requirements", lambda r, who: checks.append(who) or real(r, who))
    module = load(layer, name)
    instance, _parent = layer.instantiate_module(module, name)
    assert slicer.selfTests[name] == instance.runTest
    instance.runTest(msec=0)
    assert checks and set(checks) == {name}


# --- what the module list, the help panel and Sample Data show ----------------------------------


DOCS_PAGES = {
    "OncoQILungTumorSegmentation": "lung-tumor-segmentation.md",
    "OncoQIPETIndiC": "petindic.md",
    "OncoQIQuantitativeReporting": "reporting.md",
    "OncoQITCIABrowser": "tcia.md",
}


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_module_metadata_is_complete_and_links_its_page(name, layer, repo_root) -> None:
    import re

    _instance, parent = layer.instantiate_module(load(layer, name), name)
    assert parent.title and parent.categories == ["OncoQI"] and parent.acknowledgementText
    for contributor in parent.contributors:
        assert re.fullmatch(r"[^()]+ \([^()]+\)", contributor), f"not 'Name (Organisation)': {contributor}"
    page = DOCS_PAGES[name]
    assert f'href="https://github.com/OncoQI/SlicerOncoQI/blob/main/Docs/{page}"' in parent.helpText
    assert (repo_root / "Docs" / page).is_file()
    assert "3D Slicer 5.10 or later" in parent.helpText
    assert parent.icon.path.endswith(f"Resources/Icons/{name}.png")


def test_every_module_registers_the_sample_once_and_it_loads(layer) -> None:
    import slicer

    for name in MODULE_NAMES:
        layer.instantiate_module(load(layer, name), name)
    assert layer.sample_sources == []  # not before Slicer has started
    layer.app.completeStartup()
    ((source),) = layer.sample_sources
    assert (source["category"], source["sampleName"]) == ("OncoQI", "OncoQIPETCTPhantom")
    assert Path(source["thumbnailFileName"]).is_file()
    ct, pet, tumours = source["customDownloader"](source)  # what the sample's button does
    assert [ct.GetName(), pet.GetName(), tumours.GetName()] == source["nodeNames"]
    assert pet.GetVoxelValueUnits().GetCodeValue() == "{SUVbw}g/ml"
    assert tumours.GetSegmentation().GetNumberOfSegments() >= 1
    assert slicer.mrmlScene.GetNodeByID(ct.GetID()) is not None and layer.app.dialogs == []


# --- the DICOM plugin on a fresh install ----------------------------------------------------------


@pytest.fixture
def only_slicer_5_12_packages(monkeypatch) -> set[str]:
    """What the core needs beyond Slicer 5.12's bundled packages cannot be imported, as on a fresh
    install before any module ran (it is removed from ``sys.modules`` and its import raises)."""
    import importlib.metadata

    from OncoQISlicer.dependencies import read_requirements
    from packaging.requirements import Requirement

    owners = importlib.metadata.packages_distributions()  # import name -> distributions
    needed = {Requirement(line).name.lower().replace("_", "-") for line in read_requirements()}
    refused = {
        module
        for module, distributions in owners.items()
        if any(d.lower().replace("_", "-") in needed for d in distributions) and module not in SLICER_5_12_BUNDLED
    }
    assert {"tqdm", "skimage", "onnxruntime"} <= refused
    real_import = builtins.__import__

    def guarded(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and name.split(".")[0] in refused:
            raise ImportError(f"{name.split('.')[0]} is not bundled with Slicer 5.12")
        return real_import(name, globals, locals, fromlist, level)

    for name in list(sys.modules):
        if name.split(".")[0] in refused | {"oncoqi", "OncoQISlicer"}:
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(builtins, "__import__", guarded)
    return refused


@pytest.fixture
def real_pet_and_ct(shared_data) -> tuple[list[str], list[str]]:
    """QIN-HEADNECK-01-0139's PET series and 40 slices of LUNG1-001's CT (``../shared/data``)."""
    from helpers.datasets import dataset

    pet = sorted(str(p) for p in dataset("qin-headneck-01-0139-pet").rglob("*.dcm") if "mask" not in p.parts)
    ct = sorted(str(p) for p in dataset("nsclc-radiomics-lung1-001").rglob("*.dcm") if "CT" in str(p))[:40]
    return pet, ct


def test_dicom_plugin_offers_suv_for_a_real_pet_with_only_slicer_bundled_packages(
    slicer_layer_factory, real_pet_and_ct, only_slicer_5_12_packages, monkeypatch
) -> None:
    import slicer

    pet, ct = real_pet_and_ct
    layer = slicer_layer_factory("v5.12.0")
    slicer.dicomDatabase = database = FakeDICOMDatabase(pet + ct)
    assert not hasattr(slicer.modules, "dicomPlugins")  # no other plugin module created it first
    load_dicom_plugin(layer)
    assert "DICOMOncoQIPlugin" in slicer.modules.dicomPlugins

    import pydicom

    reads = []
    real_dcmread = pydicom.dcmread
    monkeypatch.setattr(pydicom, "dcmread", lambda *a, **k: reads.append(a[0]) or real_dcmread(*a, **k))
    from DICOMLib import DICOMUtils

    by_plugin, enabled = DICOMUtils.getLoadablesFromFileLists([pet, ct], ["DICOMOncoQIPlugin"])
    ((plugin, loadables),) = by_plugin.items()
    assert enabled
    (loadable,) = loadables
    assert loadable.name.endswith("(SUVbw)") and loadable.selected and loadable.confidence == 0.95
    assert "body weight" in loadable.tooltip
    with pytest.raises(ImportError, match="not bundled"):  # the guard was on: the core's full stack was not importable
        import tqdm  # noqa: F401
    assert len(reads) == 1  # the PET's radiopharmaceutical sequence, which the database cannot give
    assert database.calls >= len(pet)


# --- headless ------------------------------------------------------------------------------------


def run_script(argv: list[str]) -> int:
    """``Slicer --no-main-window --python-script batch.py -- ...``: the file runs as ``__main__``."""
    import slicer

    script = module_folder("OncoQILungTumorSegmentation") / "Scripts" / "batch.py"
    old = sys.argv
    sys.argv = ["Slicer", "--no-main-window", "--python-script", str(script), "--", *argv]
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = old
    return slicer.app.exitStatus


def missing_requirement(monkeypatch, tmp_path) -> None:
    import OncoQISlicer.dependencies as dependencies

    requirements = tmp_path / "requirements.txt"
    requirements.write_text("oncoqi-test-package-that-is-not-installed>=1\n", encoding="utf-8")
    monkeypatch.setattr(dependencies, "REQUIREMENTS_FILE", requirements)


def test_headless_script_installs_without_asking_and_never_waits(
    slicer_layer_factory, version, monkeypatch, tmp_path, capsys
) -> None:
    import slicer

    layer = slicer_layer_factory(version, headless=True)
    missing_requirement(monkeypatch, tmp_path)
    installs = []
    monkeypatch.setattr(slicer.util, "pip_install", lambda requirements, **kw: installs.append(requirements))
    if layer.has_packaging:
        monkeypatch.setattr(slicer.packaging, "pip_install", lambda requirements, **kw: installs.append(requirements))
    status = run_script([str(tmp_path / "no-such-cohort"), "--out", str(tmp_path / "out")])
    assert status == 2
    assert installs, "nothing was installed"
    assert layer.app.dialogs == []  # a dialog would have raised HeadlessDialogError
    assert "no-such-cohort" in capsys.readouterr().err


def test_headless_script_in_testing_mode_fails_in_one_line(
    slicer_layer_factory, version, monkeypatch, tmp_path, capsys
):
    slicer_layer_factory(version, headless=True, testing=True)
    missing_requirement(monkeypatch, tmp_path)
    assert run_script([str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: the OncoQI core cannot be used in this Slicer:")
    assert "oncoqi-test-package-that-is-not-installed" in err[-1] and "Traceback" not in "\n".join(err)


def test_a_modal_dialog_without_a_main_window_is_an_error(slicer_layer_factory) -> None:
    """The headless stand-in refuses a dialog, so the test above would have caught one."""
    import slicer

    slicer_layer_factory("v5.12.0", headless=True)
    with pytest.raises(HeadlessDialogError):
        slicer.util.confirmOkCancelDisplay("install?")


def test_slicer_5_8_python_is_refused_with_the_minimum_version(slicer_layer_factory, monkeypatch) -> None:
    import OncoQISlicer.dependencies as dependencies

    slicer_layer_factory("v5.8.0")
    monkeypatch.setattr(dependencies.sys, "version_info", (3, 9, 10, "final", 0))
    with pytest.raises(
        dependencies.DependencyError, match="needs 3D Slicer 5.10 or later: this Slicer runs Python 3.9"
    ):
        dependencies.ensure_core("OncoQIPETIndiC")


def test_interactive_install_asks_first_and_declining_installs_nothing(
    slicer_layer_factory, version, monkeypatch, tmp_path
):
    layer = slicer_layer_factory(version)
    import OncoQISlicer.dependencies as dependencies
    import qt
    import slicer

    missing_requirement(monkeypatch, tmp_path)
    installs = []
    monkeypatch.setattr(slicer.util, "pip_install", lambda requirements, **kw: installs.append(requirements))
    if layer.has_packaging:
        monkeypatch.setattr(slicer.packaging, "pip_install", lambda requirements, **kw: installs.append(requirements))
    layer.app.answers = [qt.QMessageBox.Cancel]
    with pytest.raises(Exception, match="declined|[Cc]ancel"):
        dependencies.ensure_core("OncoQIPETIndiC")
    assert installs == [] and len(layer.app.dialogs) == 1
    dependencies.ensure_core("OncoQIPETIndiC")  # OK this time
    assert installs and len(layer.app.dialogs) >= 2


# --- bad input in the modules: one clear message, nothing changed ---------------------------------


def node_ids() -> list[str]:
    import slicer

    nodes = slicer.mrmlScene.GetNodes()
    return sorted(nodes.GetItemAsObject(i).GetID() for i in range(nodes.GetNumberOfItems()))


def test_lung_refuses_no_volume_and_a_non_ct_with_one_message(layer, sample) -> None:
    import slicer

    name = "OncoQILungTumorSegmentation"
    widget = layer.create_widget(load(layer, name), name)
    before = node_ids()
    assert not widget.ui.applyButton.enabled and widget.ui.applyButton.toolTip == "Select a CT volume"
    widget.ui.applyButton.clicked.emit(False)  # even if the click reached the slot: one message, no change
    ((_title, text),) = layer.app.dialogs
    assert text.startswith("Cannot segment this volume.") and "Input volume is invalid" in text
    assert node_ids() == before

    from OncoQISlicer.mrml import volume_node_from_image

    from oncoqi.dicom import read_image

    pet = volume_node_from_image(slicer.mrmlScene, read_image(sample / "PET"), "a PET, not a CT")
    widget.ui.inputSelector.setCurrentNode(pet)
    before = node_ids()
    widget.ui.applyButton.click()
    assert len(layer.app.dialogs) == 2 and "not CT numbers in HU" in layer.app.dialogs[1][1]
    assert widget._job is None and node_ids() == before
    assert len(layer.slot_errors) == 2  # re-raised by tryWithErrorDisplay after the message, printed by PythonQt


def test_petindic_export_without_a_folder_or_into_a_file_changes_nothing(layer, sample, tmp_path, monkeypatch):
    pet = load_pet_through_the_plugin(layer, sample)
    _, lesions = sample_nodes(sample)
    name = "OncoQIPETIndiC"
    widget = layer.create_widget(load(layer, name), name)
    ui = widget.ui
    ui.inputVolumeSelector.setCurrentNode(pet)
    ui.segmentationSelector.setCurrentNode(lesions)
    work = tmp_path / "working-directory"
    work.mkdir()
    monkeypatch.chdir(work)
    before = node_ids()
    ui.exportButton.click()  # no folder chosen
    ((_title, text),) = layer.app.dialogs
    assert "Choose an export folder" in text and list(work.iterdir()) == []

    (tmp_path / "a-file").write_text("not a folder")
    ui.exportFolderButton.directory = str(tmp_path / "a-file" / "export")
    ui.exportButton.click()
    assert len(layer.app.dialogs) == 2 and "cannot be written" in layer.app.dialogs[1][1]
    assert str(tmp_path / "a-file") in layer.app.dialogs[1][1]
    assert node_ids() == before


def test_quantitativereporting_refuses_a_segmentation_on_another_grid(layer, sample) -> None:
    import slicer
    from OncoQISlicer.mrml import segmentation_node_from_labels

    from oncoqi.image import Image

    ct, _ = sample_nodes(sample)
    far = Image(np.ones((4, 4, 4), np.uint8), (1.0, 1.0, 1.0), (5000.0, 5000.0, 5000.0))
    elsewhere = segmentation_node_from_labels(slicer.mrmlScene, far, {1: "far away"}, name="Elsewhere")
    name = "OncoQIQuantitativeReporting"
    widget = layer.create_widget(load(layer, name), name)
    widget.ui.segmentationSelector.setCurrentNode(elsewhere)
    widget.ui.referenceVolumeSelector.setCurrentNode(ct)
    before = node_ids()
    widget.ui.applyButton.click()
    ((_title, text),) = layer.app.dialogs
    assert text.startswith("Failed to measure the segments.") and "Elsewhere" in text
    assert node_ids() == before
