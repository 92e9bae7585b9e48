"""Real-MRML tier: the Slicer-side adapter and each module's Logic on Slicer's own C++ core.

Everything here runs on a scene booted from the ``slicer-core`` wheel (``mrml_scene`` fixture), so
volume, segmentation, storage and scene classes are Slicer's real ones. What the wheel cannot give
(Qt widgets, the parameter-node wrapper, pip installs) is covered by the module tests in a real
Slicer (``Docs/developers.md``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slicer

#: Slicer RAS = this matrix times DICOM LPS (and back).
FLIP = np.diag([-1.0, -1.0, 1.0])


def oblique_direction() -> np.ndarray:
    """Columns of i, j, k in LPS for a coronal-like, 20-degree-tilted grid (not a permutation, not identity)."""
    angle = np.deg2rad(20.0)
    tilt = np.array([[np.cos(angle), 0.0, np.sin(angle)], [0.0, 1.0, 0.0], [-np.sin(angle), 0.0, np.cos(angle)]])
    coronal = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    return tilt @ coronal


def ct_image():
    """A small int16 'CT' with distinct voxel values on an oblique grid."""
    from oncoqi.image import Image

    array = (np.arange(4 * 5 * 6, dtype=np.int16) * 7 - 1000).reshape(4, 5, 6)
    return Image(array, (0.7, 0.8, 2.5), (-120.5, 35.25, -60.0), oblique_direction(), {"modality": "CT"})


def label_image():
    """Labels 1-3 on the CT grid: a block, a bar and a single voxel; label 3 touches label 1."""
    labels = np.zeros((4, 5, 6), dtype=np.uint8)
    labels[1:3, 1:4, 1:4] = 1  # 18 voxels
    labels[0, 0, :] = 2  # 6 voxels
    labels[3, 4, 5] = 3  # 1 voxel
    labels[1, 1, 4] = 3  # 1 more, next to label 1
    return ct_image().with_array(labels)


def slicer_array(node) -> np.ndarray:
    """The node's voxels as Slicer holds them (a view, ``[k, j, i]``)."""
    import slicer

    return slicer.util.arrayFromVolume(node)


# --- volumes ----------------------------------------------------------------------------------


def test_volume_round_trip_is_exact_on_an_oblique_grid(mrml_scene) -> None:
    from OncoQISlicer.mrml import image_from_volume_node, volume_node_from_image

    image = ct_image()
    node = volume_node_from_image(mrml_scene, image, "ct")
    back = image_from_volume_node(node)

    assert node.GetClassName() == "vtkMRMLScalarVolumeNode"
    assert back.array.dtype == np.int16
    np.testing.assert_array_equal(back.array, image.array)
    assert back.spacing == image.spacing
    assert back.origin == image.origin
    np.testing.assert_array_equal(back.direction, image.direction)
    assert back.metadata == {"name": "ct"}
    back.array[0, 0, 0] = 1234  # the image owns a copy: the node must not change
    assert slicer_array(node)[0, 0, 0] == image.array[0, 0, 0]


def test_node_geometry_is_the_ras_of_the_lps_image(mrml_scene) -> None:
    import slicer
    import vtk
    from OncoQISlicer.mrml import volume_node_from_image

    image = ct_image()
    node = volume_node_from_image(mrml_scene, image, "ct")

    assert node.GetOrigin() == (120.5, -35.25, -60.0)
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    ijk_to_ras = slicer.util.arrayFromVTKMatrix(matrix)
    corners = np.array([[0, 0, 0], [5, 0, 0], [0, 4, 0], [0, 0, 3], [5, 4, 3]], dtype=float)
    ras = corners @ ijk_to_ras[:3, :3].T + ijk_to_ras[:3, 3]
    np.testing.assert_allclose(ras, image.index_to_lps(corners) @ FLIP.T, atol=1e-12)
    # The voxel Slicer shows at IJK (i, j, k) is array[k, j, i].
    np.testing.assert_array_equal(slicer_array(node)[3, 4, 5], image.array[3, 4, 5])


def test_volume_node_from_image_stores_types_slicer_can_show(mrml_scene) -> None:
    from OncoQISlicer.mrml import image_from_volume_node, volume_node_from_image

    from oncoqi.errors import InputError

    base = ct_image()
    mask = volume_node_from_image(mrml_scene, base.with_array(base.array > 0), "mask", labelmap=True)
    assert mask.GetClassName() == "vtkMRMLLabelMapVolumeNode"
    assert mask.GetDisplayNode() is not None
    assert image_from_volume_node(mask).array.dtype == np.uint8
    np.testing.assert_array_equal(image_from_volume_node(mask).array, base.array > 0)

    wide = base.with_array(base.array.astype(np.int64))
    assert image_from_volume_node(volume_node_from_image(mrml_scene, wide, "wide")).array.dtype == np.int32
    half = base.with_array(base.array.astype(np.float16))
    assert image_from_volume_node(volume_node_from_image(mrml_scene, half, "half")).array.dtype == np.float32

    too_wide = base.with_array(np.full(base.array.shape, 2**40, dtype=np.int64))
    with pytest.raises(InputError, match="32-bit"):
        volume_node_from_image(mrml_scene, too_wide, "too wide")


def test_update_volume_node_replaces_voxels_and_grid_in_place(mrml_scene) -> None:
    from OncoQISlicer.mrml import image_from_volume_node, update_volume_node, volume_node_from_image

    from oncoqi.image import Image

    node = volume_node_from_image(mrml_scene, ct_image(), "result")
    replacement = Image(np.ones((2, 3, 4), np.float32), (1.5, 1.5, 3.0), (1.0, 2.0, 3.0))

    update_volume_node(node, replacement)

    assert mrml_scene.GetFirstNodeByName("result") is node
    back = image_from_volume_node(node)
    assert back.array.dtype == np.float32
    np.testing.assert_array_equal(back.array, replacement.array)
    assert (back.spacing, back.origin) == (replacement.spacing, replacement.origin)
    np.testing.assert_array_equal(back.direction, np.eye(3))


def test_volume_without_voxels_is_an_input_error(mrml_scene) -> None:
    from OncoQISlicer.mrml import image_from_volume_node

    from oncoqi.errors import InputError

    empty = mrml_scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty")
    with pytest.raises(InputError, match="'empty' has no voxels"):
        image_from_volume_node(empty)


def test_nodes_under_a_transform_are_refused(mrml_scene) -> None:
    from OncoQISlicer.mrml import (
        image_from_volume_node,
        labels_from_segmentation_node,
        segmentation_node_from_labels,
        update_volume_node,
        volume_node_from_image,
    )

    from oncoqi.errors import GeometryError
    from OncoQIQuantitativeReportingLib.measurements import segment_measurements

    volume = volume_node_from_image(mrml_scene, ct_image(), "ct")
    segmentation = segmentation_node_from_labels(mrml_scene, label_image(), {1: "a", 2: "b", 3: "c"})
    transform = mrml_scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "registration")
    volume.SetAndObserveTransformNodeID(transform.GetID())

    with pytest.raises(GeometryError, match="'ct' is under the transform 'registration'"):
        image_from_volume_node(volume)
    with pytest.raises(GeometryError):
        update_volume_node(volume, ct_image())
    with pytest.raises(GeometryError):
        labels_from_segmentation_node(segmentation, volume)
    segmentation.SetAndObserveTransformNodeID(transform.GetID())
    with pytest.raises(GeometryError):
        labels_from_segmentation_node(segmentation)
    with pytest.raises(GeometryError):
        segment_measurements(segmentation)


# --- segmentations ----------------------------------------------------------------------------


def test_segmentation_round_trip_keeps_names_colors_and_voxel_counts(mrml_scene) -> None:
    from OncoQISlicer.mrml import labels_from_segmentation_node, segmentation_node_from_labels

    labels = label_image()
    names = {1: "tumour", 2: "bar", 3: "dots", 4: "not found"}
    node = segmentation_node_from_labels(mrml_scene, labels, names, colors={1: (1.0, 0.5, 0.0)}, name="findings")

    segmentation = node.GetSegmentation()
    ids = list(segmentation.GetSegmentIDs())
    assert node.GetName() == "findings"
    assert [segmentation.GetSegment(i).GetName() for i in ids] == ["tumour", "bar", "dots", "not found"]
    assert segmentation.GetSegment(ids[0]).GetColor() == pytest.approx((1.0, 0.5, 0.0))
    assert segmentation.GetNumberOfLayers() == 1  # no overlaps: one shared labelmap, as the Segment Editor keeps it

    back, back_names = labels_from_segmentation_node(node)

    assert back_names == names
    assert back.array.dtype == np.uint16
    np.testing.assert_array_equal(back.array, labels.array)
    assert [int(np.count_nonzero(back.array == v)) for v in (1, 2, 3, 4)] == [18, 6, 2, 0]
    # Without a reference volume the grid comes back through Slicer's serialised geometry string.
    assert back.same_grid(labels, tol=1e-9)


def test_labels_on_the_reference_volume_grid_are_exact(mrml_scene) -> None:
    from OncoQISlicer.mrml import (
        image_from_volume_node,
        labels_from_segmentation_node,
        segmentation_node_from_labels,
        volume_node_from_image,
    )

    reference = volume_node_from_image(mrml_scene, ct_image(), "ct")
    node = segmentation_node_from_labels(
        mrml_scene, label_image(), {1: "a", 2: "b", 3: "c"}, reference_volume_node=reference
    )
    assert node.GetNodeReference(node.GetReferenceImageGeometryReferenceRole()) is reference

    back, _ = labels_from_segmentation_node(node, reference)
    ct = image_from_volume_node(reference)

    np.testing.assert_array_equal(back.array, label_image().array)
    assert (back.spacing, back.origin) == (ct.spacing, ct.origin)
    np.testing.assert_array_equal(back.direction, ct.direction)


def test_labels_follow_the_requested_segment_order(mrml_scene) -> None:
    from OncoQISlicer.mrml import labels_from_segmentation_node, segmentation_node_from_labels

    node = segmentation_node_from_labels(mrml_scene, label_image(), {1: "a", 2: "b", 3: "c"})
    a, b, c = node.GetSegmentation().GetSegmentIDs()

    back, names = labels_from_segmentation_node(node, segment_ids=[c, a])

    assert names == {1: "c", 2: "a"}
    np.testing.assert_array_equal(back.array == 1, label_image().array == 3)
    np.testing.assert_array_equal(back.array == 2, label_image().array == 1)

    nothing, no_names = labels_from_segmentation_node(node, segment_ids=[])
    assert no_names == {} and nothing.array.shape == (4, 5, 6) and not nothing.array.any()
    with pytest.raises(ValueError, match="no segments with IDs"):
        labels_from_segmentation_node(node, segment_ids=["no such segment"])


def test_segmentation_from_labels_needs_a_name_for_every_label(mrml_scene) -> None:
    from OncoQISlicer.mrml import segmentation_node_from_labels

    with pytest.raises(ValueError, match=r"\[2, 3\] in the image have no segment name"):
        segmentation_node_from_labels(mrml_scene, label_image(), {1: "a"})
    with pytest.raises(ValueError, match="background"):
        segmentation_node_from_labels(mrml_scene, label_image(), {0: "air", 1: "a", 2: "b", 3: "c"})


def test_segmentation_without_geometry_needs_a_reference_volume(mrml_scene) -> None:
    from OncoQISlicer.mrml import labels_from_segmentation_node

    from oncoqi.errors import InputError

    node = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "blank")
    with pytest.raises(InputError, match="choose a reference volume"):
        labels_from_segmentation_node(node)


# --- each module's Logic job ------------------------------------------------------------------


def test_pet_indices_refuse_non_integer_labels_and_skip_background(mrml_scene) -> None:
    from oncoqi.errors import InputError
    from OncoQIPETIndiCLib.indices import label_indices

    pet = ct_image().with_array(np.full((4, 5, 6), 2.0, np.float32))
    assert label_indices(pet, pet.with_array(np.zeros((4, 5, 6), np.uint8))) == []
    with pytest.raises(InputError, match="integer labels"):
        label_indices(pet, pet.with_array(np.ones((4, 5, 6), np.float32)))


def test_lung_summary_is_computed_on_the_core_image(mrml_scene) -> None:
    from OncoQISlicer.mrml import volume_node_from_image

    from OncoQILungTumorSegmentationLib.summary import summarize_volume_node

    image = ct_image()
    summary = summarize_volume_node(volume_node_from_image(mrml_scene, image, "ct"))

    assert (summary.minimum, summary.maximum) == (float(image.array.min()), float(image.array.max()))
    assert summary.origin == image.origin  # LPS, not the node's RAS
    report = summary.report()
    assert "Size (i x j x k): 6 x 5 x 4 voxels" in report
    assert "Origin (LPS): -120.50 x 35.25 x -60.00 mm" in report


def test_segments_with_only_a_surface_are_measured_on_a_labelmap(mrml_scene) -> None:
    import slicer
    import vtk

    from OncoQIQuantitativeReportingLib.measurements import segment_measurements

    sphere = vtk.vtkSphereSource()
    sphere.SetRadius(10.0)
    sphere.SetThetaResolution(64)
    sphere.SetPhiResolution(64)
    sphere.Update()
    node = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "model import")
    grid = slicer.vtkOrientedImageData()
    grid.SetSpacing(0.5, 0.5, 0.5)
    grid.SetOrigin(-12.0, -12.0, -12.0)
    grid.SetDimensions(49, 49, 49)
    node.GetSegmentation().SetConversionParameter(
        slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName(),
        slicer.vtkSegmentationConverter.SerializeImageGeometry(grid),
    )
    node.AddSegmentFromClosedSurfaceRepresentation(sphere.GetOutput(), "sphere")

    (measurement,) = segment_measurements(node)

    assert measurement.name == "sphere"
    assert measurement.volume_ml == pytest.approx(4.0 / 3.0 * np.pi * 10.0**3 / 1000.0, rel=0.02)
    assert measurement.volume_ml == pytest.approx(measurement.voxel_count * 0.125 / 1000.0)


# --- TCIA settings (no MRML needed, but the library lives in the module folder) ---------------


@pytest.mark.parametrize("url", ["ftp://example.org/nbia", "nbia.cancerimagingarchive.net", "https://", ""])
def test_tcia_settings_refuse_urls_that_are_not_http(url, tmp_path, extension_paths) -> None:
    from oncoqi.errors import InputError
    from OncoQITCIABrowserLib.settings import download_settings

    with pytest.raises(InputError, match="URL"):
        download_settings(url, tmp_path)


def test_tcia_settings_create_the_folder_and_refuse_unusable_ones(tmp_path, monkeypatch, extension_paths) -> None:
    from oncoqi.errors import InputError
    from OncoQITCIABrowserLib.settings import download_settings

    monkeypatch.setenv("HOME", str(tmp_path))
    settings = download_settings(" https://nbia.example.org/api/v4 ", "~/tcia/new")
    assert settings.api_url == "https://nbia.example.org/api/v4/"  # one slash: the core client joins endpoints to it
    assert settings.download_folder == tmp_path / "tcia" / "new"
    assert settings.download_folder.is_dir()

    with pytest.raises(InputError, match="absolute"):
        download_settings("https://nbia.example.org", "relative/folder")
    with pytest.raises(InputError, match="choose a download folder"):
        download_settings("https://nbia.example.org", " ")
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    with pytest.raises(InputError, match="cannot create download folder"):
        download_settings("https://nbia.example.org", blocker / "sub")


def test_tcia_parameter_defaults_are_valid_settings(tmp_path, monkeypatch, slicer_module_loader) -> None:
    """What a user gets without touching the settings works, and the URL is the core client's default."""
    from oncoqi.tcia.nbia import NBIA_API_URL
    from OncoQITCIABrowserLib.settings import download_settings

    monkeypatch.setenv("HOME", str(tmp_path))
    module = slicer_module_loader.load("OncoQITCIABrowser")
    defaults = module.OncoQITCIABrowserLogic().getParameterNode()  # a new parameter node holds the defaults

    settings = download_settings(defaults.apiUrl, defaults.downloadFolder)

    assert settings.api_url == module.NBIA_API_URL == NBIA_API_URL
    assert settings.download_folder == tmp_path / "OncoQI" / "TCIA"


# --- parameter node and scene persistence -----------------------------------------------------


def _save_storable(node, folder: Path, extension: str) -> None:
    node.AddDefaultStorageNode()
    storage = node.GetStorageNode()
    storage.SetFileName(str(folder / f"{node.GetName()}{extension}"))
    assert storage.WriteData(node), node.GetName()


def test_scene_save_and_reload_keeps_data_and_parameter_node(
    mrml_scene, tmp_path, slicer_module_loader, boot_mrml_scene
) -> None:
    """Volumes, a segmentation and OncoQIPETIndiC's parameter node survive a .mrml save and reload.

    The parameter node is written in the layout ``parameterNodeWrapper`` uses (Slicer's
    ``serializers.py``: a node field is an empty parameter plus a node reference, both named after the
    field), with the field names and node classes read from the module's own parameter class. The
    wrapper itself is exercised by ``test_OncoQIPETIndiCParameterNode`` in a real Slicer.
    """
    from OncoQISlicer.mrml import (
        image_from_volume_node,
        labels_from_segmentation_node,
        segmentation_node_from_labels,
        volume_node_from_image,
    )

    annotations = slicer_module_loader.load("OncoQIPETIndiC").OncoQIPETIndiCParameterNode.__annotations__
    fields = {name: cls for name, cls in annotations.items() if name in ("inputVolume", "segmentation")}
    assert [cls.__name__ for cls in fields.values()] == ["vtkMRMLScalarVolumeNode", "vtkMRMLSegmentationNode"]
    pet = volume_node_from_image(mrml_scene, ct_image(), "pet")
    labels = volume_node_from_image(mrml_scene, label_image(), "lesions", labelmap=True)
    segmentation = segmentation_node_from_labels(
        mrml_scene, label_image(), {1: "a", 2: "b", 3: "c"}, reference_volume_node=pet
    )
    parameter_node = mrml_scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode")
    parameter_node.SetSingletonTag("OncoQIPETIndiC")
    parameter_node.SetAttribute("ModuleName", "OncoQIPETIndiC")
    for field_name, node in zip(fields, (pet, segmentation)):
        parameter_node.SetParameter(field_name, "")
        parameter_node.SetNodeReferenceID(field_name, node.GetID())

    _save_storable(pet, tmp_path, ".nrrd")
    _save_storable(labels, tmp_path, ".nrrd")
    _save_storable(segmentation, tmp_path, ".seg.nrrd")
    mrml_scene.SetURL(str(tmp_path / "scene.mrml"))
    assert mrml_scene.Commit()

    reloaded = boot_mrml_scene()
    reloaded.SetURL(str(tmp_path / "scene.mrml"))
    assert reloaded.Import()

    pet_back = reloaded.GetFirstNodeByName("pet")
    labels_back = reloaded.GetFirstNodeByName("lesions")
    assert labels_back.GetClassName() == "vtkMRMLLabelMapVolumeNode"
    image_back = image_from_volume_node(pet_back)
    np.testing.assert_array_equal(image_back.array, ct_image().array)
    # NRRD keeps about 9 significant digits of the grid, so the reload is close, not bit-identical.
    assert image_back.same_grid(ct_image(), tol=1e-6)
    np.testing.assert_array_equal(image_from_volume_node(labels_back).array, label_image().array)

    segmentation_back = reloaded.GetFirstNodeByName(segmentation.GetName())
    labels_image, names = labels_from_segmentation_node(segmentation_back, pet_back)
    assert names == {1: "a", 2: "b", 3: "c"}
    np.testing.assert_array_equal(labels_image.array, label_image().array)

    parameter_back = reloaded.GetSingletonNode("OncoQIPETIndiC", "vtkMRMLScriptedModuleNode")
    assert parameter_back is not None
    for field_name, cls in fields.items():
        assert parameter_back.HasParameter(field_name)
        referenced = parameter_back.GetNodeReference(field_name)
        assert isinstance(referenced, cls)
        assert referenced is {"inputVolume": pet_back, "segmentation": segmentation_back}[field_name]
