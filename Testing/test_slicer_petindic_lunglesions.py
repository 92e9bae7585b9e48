"""PET-IndiC's "Measure lung lesions on PET": the PET's evidence picks GTV-1 (issue 25), on real MRML.

The phantom PET/CT (``helpers.pet_evidence``) has two round lung masses: the larger (30 ml) with
SUVbw 1.6, not FDG-avid, and the smaller (12 ml) with SUVbw 8, the tumour. Their segmentation is
written by OncoQILungTumorSegmentation's own writer (``write_results``), so by size the 30 ml mass
is "GTV-1" and the tumour "Lesion 2", with the lung module's colours, tags and terminology. The PET
is in Bq/ml with its SUVbw factor as a node attribute. Expected numbers are the phantom's truth and
the core's own results on the same images (``oncoqi.report.evidence.order_lesions_on_pet``).

The Lib runs on ``slicer-core``'s MRML; the Widget under Slicer's real Python layer at v5.8.0 and
v5.12.0 (``slicer_layer_factory``), its button clicked as a user does.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import module_folder
from helpers.pet_evidence import AVID_ML, AVID_SUV, LARGE_ML, LOW_SUV, options
from oncoqi.errors import InputError
from oncoqi.lung.measure import measure_lesions
from oncoqi.phantom import make_petct
from oncoqi.report.evidence import order_lesions_on_pet
from slicer_layer import VERSIONS

pytestmark = pytest.mark.slicer

NAME = "OncoQIPETIndiC"


@pytest.fixture(scope="module")
def study():
    return make_petct(options())


@pytest.fixture
def nodes(mrml_scene, study):
    """CT, PET (Bq/ml + SUVbw factor attribute) and the lung module's lesion segmentation of the two masses."""
    from OncoQISlicer.mrml import volume_node_from_image

    from oncoqi.lung.segment import TumourSegmentation
    from OncoQILungTumorSegmentationLib.segmentation import LungTumorResult, write_results
    from OncoQIPETIndiCLib.suv import SUV_FACTOR_ATTRIBUTE

    ct = volume_node_from_image(mrml_scene, study.ct, "CT")
    pet = volume_node_from_image(mrml_scene, study.pet, "PET")
    pet.SetAttribute(SUV_FACTOR_ATTRIBUTE, repr(study.truth["pet"]["suvbw_factor"]))
    labels = study.tumour_label
    lesions = measure_lesions(labels, study.ct)  # by size: the 30 ml mass is label 1
    found = TumourSegmentation(labels, labels.with_array(np.zeros_like(labels.array)), None, lesions, None, 0.5, None)
    result = LungTumorResult("CT", found, None, "test")
    written = write_results(mrml_scene, result, ct)
    return {"ct": ct, "pet": pet, "lesions": written.segmentation}


def segments(node) -> list:
    segmentation = node.GetSegmentation()
    return [segmentation.GetNthSegment(n) for n in range(segmentation.GetNumberOfSegments())]


def tag(segment, name: str) -> str:
    import vtk

    value = vtk.reference("")
    return str(value) if segment.GetTag(name, value) else ""


def voxels(node, ct, segment_id) -> np.ndarray:
    from OncoQISlicer.mrml import labels_from_segmentation_node

    labels, _ = labels_from_segmentation_node(node, ct, [segment_id])
    return labels.array != 0


def expected(study):
    suv = study.pet.with_array(study.pet.array * study.truth["pet"]["suvbw_factor"])
    labels = study.tumour_label
    return order_lesions_on_pet(suv, labels, measure_lesions(labels, study.ct), method="percent", value=41.0)


def test_the_avid_lesion_becomes_gtv1_keeping_its_voxels_and_the_other_is_doubted(mrml_scene, nodes, study) -> None:
    from OncoQILungTumorSegmentationLib import segmentation as lung
    from OncoQIPETIndiCLib.lunglesions import LESION_LABEL_TAG, measure_lung_lesions_on_pet, write_lung_lesions_on_pet

    ct, pet, node = nodes["ct"], nodes["pet"], nodes["lesions"]
    assert LESION_LABEL_TAG == lung.LESION_LABEL_TAG
    large_id, avid_id = (segment_id for segment_id in node.GetSegmentation().GetSegmentIDs())
    assert [s.GetName() for s in segments(node)] == ["GTV-1", "Lesion 2"]  # by size, as the lung module left it
    large_voxels, avid_voxels = voxels(node, ct, large_id), voxels(node, ct, avid_id)

    result = measure_lung_lesions_on_pet(node, ct, pet, ("percent", 41.0))
    assert [s.GetName() for s in segments(node)] == ["GTV-1", "Lesion 2"]  # measuring changes nothing
    table = mrml_scene.AddNewNodeByClass("vtkMRMLTableNode", "lesions on PET")
    pet_node = write_lung_lesions_on_pet(result, node, pet, table)

    gtv1, other = segments(node)
    segmentation = node.GetSegmentation()
    assert (gtv1.GetName(), other.GetName()) == ("GTV-1", "Lesion 2")
    assert (segmentation.GetNthSegmentID(0), segmentation.GetNthSegmentID(1)) == (avid_id, large_id)
    np.testing.assert_array_equal(voxels(node, ct, avid_id), avid_voxels)
    np.testing.assert_array_equal(voxels(node, ct, large_id), large_voxels)
    assert (tag(gtv1, LESION_LABEL_TAG), tag(other, LESION_LABEL_TAG)) == ("1", "2")
    assert gtv1.GetColor() == pytest.approx(lung.lesion_color(1)) and other.GetColor() == pytest.approx(
        lung.lesion_color(2)
    )
    assert lung.PRIMARY_NEOPLASM in gtv1.GetTerminology() and lung.NEOPLASM in other.GetTerminology()
    assert lung.PRIMARY_NEOPLASM not in other.GetTerminology()

    large, avid = (lesion.volume_ml for lesion in measure_lesions(study.tumour_label, study.ct))
    status = result.status("PET").splitlines()
    assert status[0] == f"2 lesion(s) measured on 'PET': GTV-1 {avid:.1f} ml, SUVmax {AVID_SUV:.1f}."
    assert status[1] == (
        f"GTV-1 is now the {avid:.1f} ml lesion (formerly Lesion 2): the former GTV-1 ({large:.1f} ml) "
        f"is not FDG-avid (SUVmax {LOW_SUV:.1f})."
    )
    assert "Lesion 2 is doubted: not FDG-avid (SUVmax 1.6)." in status
    assert pet_node is not None and pet_node.GetSegmentation().GetNumberOfSegments() == 1
    assert avid == pytest.approx(AVID_ML, rel=0.02) and large == pytest.approx(LARGE_ML, rel=0.02)


def test_the_table_holds_each_lesion_s_indices_doubts_and_the_pet_thresholded_gtv1(mrml_scene, nodes, study) -> None:
    from OncoQISlicer.mrml import labels_from_segmentation_node

    from OncoQIPETIndiCLib.lunglesions import (
        LESION_TABLE_COLUMNS,
        measure_lung_lesions_on_pet,
        write_lung_lesions_on_pet,
    )

    ct, pet, node = nodes["ct"], nodes["pet"], nodes["lesions"]
    result = measure_lung_lesions_on_pet(node, ct, pet, ("percent", 41.0))
    table = mrml_scene.AddNewNodeByClass("vtkMRMLTableNode", "lesions on PET")
    pet_node = write_lung_lesions_on_pet(result, node, pet, table)

    vtk_table = table.GetTable()
    assert [vtk_table.GetColumnName(c) for c in range(vtk_table.GetNumberOfColumns())] == list(LESION_TABLE_COLUMNS)
    assert table.GetNumberOfRows() == 3  # GTV-1, Lesion 2, GTV-1 thresholded on the PET

    def cell(row: int, column: str):
        array = vtk_table.GetColumnByName(column)
        return array.GetValue(row)

    core = expected(study)
    assert [cell(r, "segment") for r in range(3)] == ["GTV-1", "Lesion 2", "GTV-1 PET percent 41"]
    assert [cell(r, "doubts") for r in range(3)] == ["", f"not FDG-avid (SUVmax {LOW_SUV:.1f})", ""]
    for row, lesion in enumerate(core.on_pet.lesions):
        for key in ("suv_max", "suv_peak", "suv_mean", "mtv_ml", "tlg"):
            assert cell(row, key) == pytest.approx(getattr(lesion.indices, key), rel=1e-6), (row, key)
        assert cell(row, "units") == "{SUVbw}g/ml"
        assert cell(row, "ct_volume_ml") == pytest.approx(core.lesions[row].volume_ml)
    assert cell(0, "suv_max") == pytest.approx(AVID_SUV, rel=0.01)
    assert cell(1, "suv_max") == pytest.approx(LOW_SUV, rel=0.01)
    primary = core.on_pet.primary
    assert cell(2, "mtv_ml") == pytest.approx(primary.indices.mtv_ml) and np.isnan(cell(2, "ct_volume_ml"))
    assert (table.GetColumnUnitLabel("suv_max"), table.GetColumnUnitLabel("mtv_ml")) == ("SUVbw", "ml")

    # the PET-thresholded GTV-1 is a segment on the PET's own voxels, named in the table
    segment_id = cell(2, "segment_id")
    assert pet_node.GetSegmentation().GetSegment(segment_id).GetName() == "GTV-1 PET percent 41"
    labels, _ = labels_from_segmentation_node(pet_node, pet, [segment_id])
    np.testing.assert_array_equal(labels.array != 0, primary.threshold.mask.array != 0)


def test_a_second_run_changes_no_name_and_replaces_only_its_own_pet_segment(mrml_scene, nodes) -> None:
    from OncoQIPETIndiCLib.lunglesions import measure_lung_lesions_on_pet, write_lung_lesions_on_pet

    ct, pet, node = nodes["ct"], nodes["pet"], nodes["lesions"]
    table = mrml_scene.AddNewNodeByClass("vtkMRMLTableNode", "lesions on PET")
    pet_node = write_lung_lesions_on_pet(measure_lung_lesions_on_pet(node, ct, pet), node, pet, table)
    pet_node.GetSegmentation().AddEmptySegment("", "the user's own")
    again = measure_lung_lesions_on_pet(node, ct, pet)
    assert again.status("PET").splitlines()[1] == "GTV-1 and the numbering are unchanged."
    assert write_lung_lesions_on_pet(again, node, pet, table, pet_node) is pet_node
    names = sorted(s.GetName() for s in segments(pet_node))
    assert names == ["GTV-1 PET background 50", "the user's own"]
    assert [s.GetName() for s in segments(node)] == ["GTV-1", "Lesion 2"]


def test_without_a_pet_thresholded_gtv1_the_table_and_the_panel_say_so(mrml_scene, nodes) -> None:
    """A fixed threshold of SUV 41 is above the tumour's SUVmax 8: no PET-thresholded lesion, no PET segmentation."""
    from OncoQIPETIndiCLib.lunglesions import measure_lung_lesions_on_pet, write_lung_lesions_on_pet

    ct, pet, node = nodes["ct"], nodes["pet"], nodes["lesions"]
    result = measure_lung_lesions_on_pet(node, ct, pet, ("fixed", 41.0))
    table = mrml_scene.AddNewNodeByClass("vtkMRMLTableNode", "lesions on PET")
    assert write_lung_lesions_on_pet(result, node, pet, table) is None
    assert table.GetNumberOfRows() == 2
    assert "GTV-1: no PET-thresholded lesion (no voxel of the region reaches the threshold SUV 41" in result.status(
        "PET"
    )
    assert [s.GetName() for s in segments(node)] == ["GTV-1", "Lesion 2"]  # the evidence still renamed them


def test_bad_input_is_refused_before_anything_changes(mrml_scene, nodes) -> None:
    from OncoQIPETIndiCLib.lunglesions import measure_lung_lesions_on_pet

    ct, pet, node = nodes["ct"], nodes["pet"], nodes["lesions"]
    before = [s.GetName() for s in segments(node)]
    with pytest.raises(InputError, match="volume 'PET': no voxel is below -500 HU"):
        measure_lung_lesions_on_pet(node, pet, pet)  # the PET chosen as the CT
    empty = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "nothing")
    empty.GetSegmentation().AddEmptySegment("", "GTV-1")
    with pytest.raises(InputError, match="'nothing' has no lesion voxels on 'CT'"):
        measure_lung_lesions_on_pet(empty, ct, pet)
    assert [s.GetName() for s in segments(node)] == before


# --- the Widget under Slicer's layer ------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_the_button_renames_fills_the_table_and_says_why(slicer_layer_factory, version, nodes) -> None:
    layer = slicer_layer_factory(version)
    widget = layer.create_widget(layer.load_module(NAME, module_folder(NAME)), NAME)
    ui, p = widget.ui, widget._parameterNode
    ui.inputVolumeSelector.setCurrentNode(nodes["pet"])
    ui.segmentationSelector.setCurrentNode(nodes["lesions"])
    assert not ui.lungLesionsButton.enabled  # no CT chosen yet
    ui.ctVolumeSelector.setCurrentNode(nodes["ct"])
    assert ui.lungLesionsButton.enabled and p.ctVolume is nodes["ct"]
    ui.methodComboBox.currentIndex = ui.methodComboBox.findText("percent")  # GTV-1 thresholded at 41 % of SUVmax
    ui.thresholdValueSpinBox.value = 41.0

    ui.lungLesionsButton.click()
    assert layer.app.dialogs == [] and layer.slot_errors == []
    assert [s.GetName() for s in segments(nodes["lesions"])] == ["GTV-1", "Lesion 2"]
    assert ui.statusLabel.text.splitlines()[1].startswith("GTV-1 is now the 12.0 ml lesion (formerly Lesion 2)")
    table = p.indicesTable
    assert ui.indicesTableView.mrmlTableNode() is table and table.GetNumberOfRows() == 3
    assert table.GetCellText(1, 2) == "not FDG-avid (SUVmax 1.6)"
    assert p.petLesions.GetSegmentation().GetNumberOfSegments() == 1
    assert not widget._recomputeTimer.isActive()  # the renaming does not bring the plain indices table back


@pytest.mark.parametrize("version", VERSIONS)
def test_the_pet_chosen_as_the_ct_gives_one_message_and_changes_nothing(slicer_layer_factory, version, nodes) -> None:
    import slicer

    layer = slicer_layer_factory(version)
    widget = layer.create_widget(layer.load_module(NAME, module_folder(NAME)), NAME)
    ui = widget.ui
    ui.inputVolumeSelector.setCurrentNode(nodes["pet"])
    ui.segmentationSelector.setCurrentNode(nodes["lesions"])
    ui.ctVolumeSelector.setCurrentNode(nodes["pet"])
    count = slicer.mrmlScene.GetNumberOfNodes()
    ui.lungLesionsButton.click()
    ((_title, text),) = layer.app.dialogs
    assert text.startswith("Failed to measure the lung lesions on the PET.")
    assert "volume 'PET': no voxel is below -500 HU" in text
    assert slicer.mrmlScene.GetNumberOfNodes() == count and ui.statusLabel.text == ""
    assert [s.GetName() for s in segments(nodes["lesions"])] == ["GTV-1", "Lesion 2"]
