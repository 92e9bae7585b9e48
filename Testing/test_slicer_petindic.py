"""OncoQIPETIndiC's Qt-free library (``OncoQIPETIndiCLib``) on Slicer's real MRML (``slicer-core``).

A synthetic PET/CT study (``oncoqi.phantom``, no blur or noise, one round tumour of SUV 8) is
written as DICOM; the PET is put into a volume node in Bq/ml, as Slicer's DICOM module loads it,
and the CT tumour label into a segmentation on the CT grid, as OncoQILungTumorSegmentation leaves it.
Expected values are the core's own results on the same data (``oncoqi.pet``), which
``test_pet_synthetic.py`` checks against the phantom's truth. The module's own Logic test
(``OncoQIPETIndiCTest.test_OncoQIPETIndiCLogic``) runs in ``test_slicer_mrml.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from helpers.pet import TUMOUR_SUV, options
from oncoqi.dicom.source import load_source
from oncoqi.errors import InputError
from oncoqi.pet import (
    PETIndices,
    SUVType,
    apply_suv,
    compute_indices,
    compute_suv_factors,
    load_pet_series,
)
from oncoqi.pet.segment import threshold_segment, transfer_labels
from oncoqi.phantom import make_petct, write_study
from oncoqi.report import read_report

pytestmark = pytest.mark.slicer


@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> dict:
    result = make_petct(options(0.0))
    root = tmp_path_factory.mktemp("petindic")
    write_study(result, root)
    series = load_pet_series(root / "PET")
    factors = compute_suv_factors(series.datasets)
    return {
        "root": root,
        "truth": result.truth,
        "pet_bqml": series.image,
        "suv": apply_suv(series.image, factors, SUVType.BW),
        "factor": factors.suvbw,
        "ct_label": result.tumour_label,
        "headers": load_source(root / "PET").datasets,
    }


@pytest.fixture
def nodes(mrml_scene, phantom):
    from OncoQISlicer.mrml import segmentation_node_from_labels, volume_node_from_image

    pet = volume_node_from_image(mrml_scene, phantom["pet_bqml"], "PET")
    segmentation = segmentation_node_from_labels(mrml_scene, phantom["ct_label"], {1: "tumour"}, name="lesions")
    return pet, segmentation


def core_indices(phantom) -> PETIndices:
    return compute_indices(phantom["suv"], transfer_labels(phantom["ct_label"], phantom["suv"], "fraction"), 1)


def test_indices_of_a_ct_segment_on_the_pet_from_dicom_headers(nodes, phantom) -> None:
    from OncoQIPETIndiCLib.indices import segmentation_indices_from_nodes

    pet, segmentation = nodes
    suv, rows = segmentation_indices_from_nodes(pet, segmentation, phantom["headers"])
    assert suv.source == "dicom" and suv.factor == pytest.approx(phantom["truth"]["pet"]["suvbw_factor"], rel=1e-9)
    (row,) = rows
    assert row.name == "tumour"
    expected = core_indices(phantom)
    for key in ("suv_mean", "suv_max", "suv_peak", "mtv_ml", "tlg", "sam", "q3"):
        assert getattr(row.indices, key) == pytest.approx(getattr(expected, key), rel=1e-6), key  # float32 SUV
    assert row.indices.suv_max == pytest.approx(TUMOUR_SUV, rel=0.01)
    assert any("transferred onto the PET grid" in w for w in row.indices.warnings)


def test_suv_factor_attribute_and_values_taken_as_they_are(nodes, phantom) -> None:
    from OncoQIPETIndiCLib.indices import segmentation_indices_from_nodes
    from OncoQIPETIndiCLib.suv import SUV_FACTOR_ATTRIBUTE

    pet, segmentation = nodes
    _, (raw,) = segmentation_indices_from_nodes(pet, segmentation)
    assert raw.indices.suv_max == pytest.approx(TUMOUR_SUV / phantom["factor"], rel=0.01)  # Bq/ml, flagged
    assert any("taken as SUVbw as they are" in w for w in raw.indices.warnings)

    pet.SetAttribute(SUV_FACTOR_ATTRIBUTE, repr(phantom["factor"]))
    suv, (row,) = segmentation_indices_from_nodes(pet, segmentation)
    assert suv.source == "attribute"
    assert row.indices.suv_mean == pytest.approx(core_indices(phantom).suv_mean, rel=1e-6)
    assert not any("SUV:" in w for w in row.indices.warnings)

    pet.SetAttribute(SUV_FACTOR_ATTRIBUTE, "-1")
    with pytest.raises(InputError, match="not positive"):
        segmentation_indices_from_nodes(pet, segmentation)


def test_a_volume_marked_suvbw_is_not_scaled_again(mrml_scene, nodes, phantom) -> None:
    """A PET loaded in SUVbw (voxel value units {SUVbw}g/ml, as OncoQI's DICOM plugin marks it)
    also names its DICOM files; its values must not be multiplied by the factor a second time."""
    import slicer
    from OncoQISlicer.mrml import volume_node_from_image

    from OncoQIPETIndiCLib.indices import segmentation_indices_from_nodes

    _, segmentation = nodes
    pet = volume_node_from_image(mrml_scene, phantom["suv"], "PET SUVbw")
    units = slicer.vtkCodedEntry()
    units.SetValueSchemeMeaning("{SUVbw}g/ml", "UCUM", "Standardized Uptake Value body weight")
    pet.SetVoxelValueUnits(units)
    suv, (row,) = segmentation_indices_from_nodes(pet, segmentation, phantom["headers"])
    assert suv.source == "units" and suv.factor is None
    assert row.indices.suv_max == pytest.approx(core_indices(phantom).suv_max, rel=1e-6)
    assert not any("SUV:" in w for w in row.indices.warnings)


def test_indices_table_has_a_row_per_segment_and_the_cli_keys(mrml_scene, nodes, phantom) -> None:
    from OncoQIPETIndiCLib.indices import (
        TABLE_COLUMNS,
        segmentation_indices_from_nodes,
        write_indices_table,
    )

    pet, segmentation = nodes
    segmentation.GetSegmentation().AddEmptySegment("", "empty")  # no voxels: no row
    _, rows = segmentation_indices_from_nodes(pet, segmentation, phantom["headers"])
    table_node = mrml_scene.AddNewNodeByClass("vtkMRMLTableNode", "indices")
    write_indices_table(table_node, rows)
    table = table_node.GetTable()
    columns = [table.GetColumnName(c) for c in range(table.GetNumberOfColumns())]
    assert tuple(columns) == TABLE_COLUMNS
    assert set(PETIndices.keys()) <= set(columns)
    assert table_node.GetNumberOfRows() == 1
    expected = core_indices(phantom)
    assert table_node.GetCellText(0, columns.index("segment")) == "tumour"
    assert table.GetColumnByName("suv_max").GetValue(0) == pytest.approx(expected.suv_max, rel=1e-6)
    assert table.GetColumnByName("mtv_ml").GetValue(0) == pytest.approx(expected.mtv_ml, rel=1e-12)
    assert table_node.GetCellText(0, columns.index("units")) == "{SUVbw}g/ml"


def test_threshold_segment_from_a_seed_and_within_a_region(nodes, phantom) -> None:
    from OncoQISlicer.mrml import labels_from_segmentation_node

    from OncoQIPETIndiCLib.indices import segment_masks_on_pet
    from OncoQIPETIndiCLib.segment import threshold_segment_from_nodes

    pet, segmentation = nodes
    tumour = phantom["truth"]["tumours"][0]
    seed_lps = np.array(tumour["centre_lps_mm"])
    seed_ras = seed_lps * [-1, -1, 1]
    segment_id, result = threshold_segment_from_nodes(
        pet, segmentation, "percent", 50, seed_ras=seed_ras, dicom_headers=phantom["headers"]
    )
    expected = threshold_segment(phantom["suv"], "percent", 50, seed_lps=tuple(seed_lps))
    assert result.voxel_count == expected.voxel_count > 0
    assert result.threshold == pytest.approx(0.5 * TUMOUR_SUV, rel=1e-6)
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 2
    assert segmentation.GetSegmentation().GetSegment(segment_id).GetName() == "PET percent 50"
    labels, _ = labels_from_segmentation_node(segmentation, pet, [segment_id])
    np.testing.assert_array_equal(labels.array != 0, expected.mask.array != 0)
    # the new segment is stored on PET voxels (the segmentation's geometry is the CT's): read exactly
    ((_, _, mask, notes),) = segment_masks_on_pet(segmentation, pet, phantom["suv"], [segment_id])
    assert notes == ()
    np.testing.assert_array_equal(mask.array, expected.mask.array)

    first = segmentation.GetSegmentation().GetNthSegmentID(0)
    _, inside = threshold_segment_from_nodes(
        pet, segmentation, "fixed", 2.5, region_segment_id=first, name="in tumour", dicom_headers=phantom["headers"]
    )
    region = transfer_labels(phantom["ct_label"], phantom["suv"], "fraction")
    assert inside.voxel_count == np.count_nonzero((phantom["suv"].array >= 2.5) & (region.array != 0))
    with pytest.raises(InputError, match="region .* or a seed"):
        threshold_segment_from_nodes(pet, segmentation, "fixed", 2.5, dicom_headers=phantom["headers"])


def test_display_presets_use_slicer_colour_tables_and_suv_windows(mrml_scene, nodes, phantom) -> None:
    from OncoQIPETIndiCLib.display import DISPLAY_PRESETS, apply_display_preset

    pet, _ = nodes
    for preset in DISPLAY_PRESETS.values():  # the IDs exist in a scene with Slicer's default colours
        assert mrml_scene.GetNodeByID(preset.color_node_id) is not None, preset.color_node_id
    display = apply_display_preset(pet, "fdg")
    assert display.GetColorNodeID() == "vtkMRMLColorTableNodeInvertedGrey"
    assert (display.GetWindow(), display.GetLevel(), display.GetAutoWindowLevel()) == (6.0, 3.0, 0)
    display = apply_display_preset(pet, "rainbow", suv_factor=phantom["factor"])
    assert display.GetColorNodeID() == "vtkMRMLColorTableNodeRainbow"
    assert display.GetWindow() == pytest.approx(10.0 / phantom["factor"])  # Bq/ml showing SUV 0-10
    with pytest.raises(InputError, match="unknown PET display preset"):
        apply_display_preset(pet, "hot-iron")


def test_export_writes_seg_and_sr_with_the_indices(nodes, phantom, tmp_path) -> None:
    from OncoQIPETIndiCLib.export import export_indices_report

    pet, segmentation = nodes
    with pytest.raises(InputError, match="not loaded from DICOM"):
        export_indices_report(pet, segmentation, tmp_path / "none")
    written = export_indices_report(pet, segmentation, tmp_path / "report", phantom["root"] / "PET")
    sr = read_report(written.sr_path)
    values = {(r["quantity_code"], r["derivation_code"]): r["value"] for r in sr.rows()}
    expected = core_indices(phantom)
    assert values[("126401 DCM", "56851009 SCT")] == pytest.approx(expected.suv_max, rel=1e-6)
    assert values[("126032 DCM", None)] == pytest.approx(expected.mtv_ml, rel=1e-6)
    seg = read_report(written.seg_path, str(phantom["root"] / "PET"))
    assert np.count_nonzero(seg.labels[0].array) == expected.voxel_count
