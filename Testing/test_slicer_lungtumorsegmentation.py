"""OncoQILungTumorSegmentation's Logic and Qt-free library on Slicer's real MRML (``slicer-core``).

The embedded sample CT (``oncoqi.phantom.sample``) is loaded into a volume node, as Slicer's DICOM
module would. Most tests run the pipeline with the hand-built ONNX graph of ``helpers/lung.py``
(probability = network input / 255, exactly): it checks the plumbing (threads, progress, cancel,
node creation, coding, geometry) against the core's own result on the same CT, independently of
how good a trained model is. The Widget's job handling (start, poll, progress, cancel, error
display) runs with recording stand-ins for its Qt widgets and timer; its ``.ui`` and Qt bindings
are checked in ``test_slicer_ui.py`` and in a real Slicer. The module's own Test class, which
needs the trained model shipped in ``oncoqi/data`` and checks that GTV-1 lies in the sample's true
tumour, is skipped without it.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import ndimage

from conftest import module_folder
from helpers.known_models import half_blind_model
from helpers.lung import IDENTITY_THRESHOLD, SMALL_GRID, small_identity_model
from oncoqi import __version__
from oncoqi.dicom import read_image
from oncoqi.errors import Cancelled, InputError, OncoQIError
from oncoqi.image import Image
from oncoqi.lung import EmptyVolumeError, NotCTError
from oncoqi.lung.isolation import LungNotFoundError
from oncoqi.lung.naming import lesion_name
from oncoqi.lung.segment import NoModelError, TumourSegmentation, default_model_path, segment_ct
from oncoqi.phantom import PhantomOptions, TumourSpec, make_ct
from oncoqi.phantom.sample import extract_sample
from oncoqi.phantom.tissues import Tissue

MODULE = "OncoQILungTumorSegmentation"
#: Seconds a background job may take on the sample (it takes about 3 s with the test graph).
JOB_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> dict[str, Image]:
    root = extract_sample(tmp_path_factory.mktemp("lung_sample"))
    return {"ct": read_image(root / "CT"), "truth": read_image(root / "truth" / "tumor_label.nrrd")}


@pytest.fixture(scope="module")
def test_model(tmp_path_factory) -> Path:
    """The exact ``codes / 255`` graph: many lesions (all dense tissue), which exercises every path."""
    return small_identity_model(tmp_path_factory.mktemp("lung_model") / "identity.onnx")


@pytest.fixture(scope="module")
def core_result(sample, test_model) -> TumourSegmentation:
    """The core's own answer on the sample CT, to compare the Slicer side with."""
    return segment_ct(sample["ct"], test_model, threads=1)


@pytest.fixture
def trained_model() -> Path:
    path = default_model_path()
    if not path.is_file():
        pytest.skip(f"no trained model at {path}: train one with `oncoqi lung train` (see Docs/model-card.md)")
    return path


@pytest.fixture
def logic(slicer_module_loader):
    return slicer_module_loader.load(MODULE).OncoQILungTumorSegmentationLogic()


@pytest.fixture
def ct_node(mrml_scene, sample):
    from OncoQISlicer.mrml import volume_node_from_image

    return volume_node_from_image(mrml_scene, sample["ct"], "sample CT")


def segment_names(node) -> list[str]:
    segmentation = node.GetSegmentation()
    return [segmentation.GetNthSegment(n).GetName() for n in range(segmentation.GetNumberOfSegments())]


def segment_tag(segment, tag: str) -> str | None:
    import vtk

    value = vtk.reference("")
    return str(value) if segment.GetTag(tag, value) else None


def table_column(table_node, name: str) -> list:
    column = table_node.GetTable().GetColumnByName(name)
    assert column is not None, name
    return [column.GetValue(row) for row in range(table_node.GetNumberOfRows())]


# --- the background job, no MRML needed ---------------------------------------------------------


def test_job_returns_the_result_and_the_last_progress(extension_paths) -> None:
    from OncoQILungTumorSegmentationLib.job import BackgroundJob

    seen = []

    def work(progress, cancel):
        for done in range(4):
            progress(done, 3)
        return "answer"

    job = BackgroundJob(work, on_progress=lambda done, total: seen.append((done, total))).start()
    assert job.wait(10) and job.done
    assert job.result() == "answer" and job.error is None
    assert job.progress == (3, 3) and seen == [(0, 3), (1, 3), (2, 3), (3, 3)]


def test_job_keeps_the_stage_its_work_reports(extension_paths) -> None:
    from OncoQILungTumorSegmentationLib.job import BackgroundJob

    seen = []

    def work(progress, cancel):
        seen.append(job.stage)
        progress.stage("lungs")
        seen.append(job.stage)
        progress.stage("network")
        progress(1, 4)  # the network's callback: the stage's fraction too
        seen.append((job.stage, job.progress))
        progress.stage("lesions")
        return "answer"

    job = BackgroundJob(work)
    job.start()
    assert job.wait(10) and job.result() == "answer"
    assert seen == [None, ("lungs", 0.0), (("network", 0.25), (1, 4))]
    assert job.stage == ("lesions", 0.0) and job.progress == (1, 4)


def test_job_hands_its_error_to_the_caller_and_stops_when_cancelled(extension_paths) -> None:
    from OncoQILungTumorSegmentationLib.job import BackgroundJob

    started, release = threading.Event(), threading.Event()

    def work(progress, cancel):
        started.set()
        release.wait(10)
        if cancel.is_set():
            raise Cancelled("stopped")
        return 1

    job = BackgroundJob(work).start()
    assert started.wait(10)
    assert not job.done and job.progress is None and job.error is None
    with pytest.raises(RuntimeError, match="still running"):
        job.result()
    job.cancel()
    assert job.cancel_requested
    release.set()
    assert job.wait(10)
    assert isinstance(job.error, Cancelled)
    with pytest.raises(Cancelled, match="stopped"):
        job.result()


# --- the segmentation helper the results are written with (labels cropped to their boxes) -------


@pytest.mark.slicer
def test_cropped_segments_hold_every_voxel_on_the_grid(mrml_scene) -> None:
    from OncoQISlicer.mrml import labels_from_segmentation_node, segmentation_node_from_labels

    labels = np.zeros((7, 9, 11), np.uint8)
    labels[1:3, 2:5, 3:9] = 1
    labels[5, 0, 0] = 3  # a one-voxel label at the grid corner
    angle = np.deg2rad(15.0)
    direction = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    image = Image(labels, (0.8, 0.9, 2.5), (-10.0, 20.0, -30.0), direction)
    names = {1: "one", 2: "looked for, not found", 3: "three"}
    colors = {1: (1.0, 0.0, 0.0)}

    node = segmentation_node_from_labels(mrml_scene, image, names, colors, name="cropped")

    assert segment_names(node) == list(names.values())
    assert node.GetSegmentation().GetNthSegment(0).GetColor() == (1.0, 0.0, 0.0)
    got, got_names = labels_from_segmentation_node(node)
    np.testing.assert_array_equal(got.array, labels)  # segment n is label n: the empty one holds label 2's place
    assert got_names == names
    assert (got.spacing, got.origin) == (image.spacing, image.origin)
    np.testing.assert_array_equal(got.direction, image.direction)
    with pytest.raises(ValueError, match=r"\[3\] in the image have no segment name"):
        segmentation_node_from_labels(mrml_scene, image, {1: "one"})
    with pytest.raises(ValueError, match="non-negative integers"):
        segmentation_node_from_labels(mrml_scene, image.with_array(labels.astype(np.float32)), names)


# --- synchronous Logic -------------------------------------------------------------------------


@pytest.mark.slicer
def test_process_gives_coded_segments_and_a_table_equal_to_the_core(logic, ct_node, sample, test_model, core_result):
    from OncoQISlicer.mrml import labels_from_segmentation_node

    from OncoQILungTumorSegmentationLib import segmentation as lib
    from OncoQIQuantitativeReportingLib.report import segment_codes

    lesions = core_result.lesions
    assert len(lesions) > 2  # GTV-1 and several others: both codings are exercised

    nodes = logic.process(ct_node, modelPath=test_model, threads=1, includeLungs=True)

    # One segment per lesion, in label order, named as the command line's SEG names them.
    assert segment_names(nodes.segmentation) == ["GTV-1"] + [f"Lesion {n}" for n in range(2, len(lesions) + 1)]
    segmentation = nodes.segmentation.GetSegmentation()
    for n, lesion in enumerate(lesions):
        segment = segmentation.GetNthSegment(n)
        neoplasm = "SCT^86049000^Neoplasm, Primary" if lesion.label == 1 else "SCT^108369006^Neoplasm"
        side = {"right": "SCT^24028007^Right", "left": "SCT^7771000^Left"}.get(lesion.side, "^^")
        assert segment.GetTerminology() == (
            "Segmentation category and type - 3D Slicer General Anatomy list~"
            f"SCT^49755003^Morphologically Altered Structure~{neoplasm}~^^~"
            f"Anatomic codes - DICOM master list~SCT^39607008^Lung~{side}"
        )
        assert segment_tag(segment, "DICOM.SegmentAlgorithmType") == "AUTOMATIC"
        assert segment_tag(segment, "DICOM.SegmentAlgorithmName") == "OncoQI LungTumorSegmentation"
        assert segment_tag(segment, "DICOM.SegmentAlgorithmVersion").startswith(f"{__version__} identity.onnx sha256:")
        assert segment_tag(segment, "OncoQI.LesionLabel") == str(lesion.label)
        assert segment.GetColor() == pytest.approx(lib.lesion_color(lesion.label))
        # OncoQIQuantitativeReporting's SEG export reads the same codes back.
        codes = segment_codes(segment)
        assert (codes["category"].value, codes["type"].value, codes["anatomic_region"].value) == (
            "49755003",
            "86049000" if lesion.label == 1 else "108369006",
            "39607008",
        )

    # Voxel for voxel the core's labels, on the CT's exact grid.
    labels, names = labels_from_segmentation_node(nodes.segmentation, ct_node)
    np.testing.assert_array_equal(labels.array, core_result.labels.array)
    assert names == {lesion.label: lesion_name(lesion.label) for lesion in lesions}
    ct = sample["ct"]
    assert (labels.spacing, labels.origin) == (ct.spacing, ct.origin)
    np.testing.assert_array_equal(labels.direction, ct.direction)

    # The table holds the core's measurements, one row per lesion; the centroid in RAS.
    records = [lesion.to_dict() for lesion in lesions]
    table = nodes.table
    assert table.GetNumberOfRows() == len(records)
    assert [table.GetTable().GetColumnName(n) for n in range(table.GetNumberOfColumns())] == [
        c.name for c in lib.TABLE_COLUMNS
    ]
    assert table_column(table, "Label") == [r["label"] for r in records]
    assert table_column(table, "Segment") == [lesion_name(r["label"]) for r in records]
    for column, key in (
        ("Volume (ml)", "volume_ml"),
        ("RECIST (mm)", "recist_mm"),
        ("Perpendicular (mm)", "perpendicular_mm"),
        ("Mean HU", "mean_hu"),
        ("Confidence", "confidence"),
    ):
        assert table_column(table, column) == [r[key] for r in records], column
    for axis, (column, sign) in enumerate((("Centroid R (mm)", -1), ("Centroid A (mm)", -1), ("Centroid S (mm)", 1))):
        assert table_column(table, column) == [sign * r["centroid_lps_mm"][axis] for r in records], column
    assert table_column(table, "Side") == [r["side"] for r in records]
    assert table_column(table, "Slices") == [r["n_slices"] for r in records]
    assert table_column(table, "Doubts") == ["; ".join(r["doubts"]) for r in records]
    assert table_column(table, "Source") == [r["source"] for r in records]
    assert table.GetColumnUnitLabel("Volume (ml)") == "ml"

    # The lung mask, as a second segmentation, equals the core's.
    assert segment_names(nodes.lungs) == ["Right lung", "Left lung"]
    lungs, _names = labels_from_segmentation_node(nodes.lungs, ct_node)
    np.testing.assert_array_equal(lungs.array, core_result.lungs.array)
    right = nodes.lungs.GetSegmentation().GetNthSegment(0)
    assert "SCT^39607008^Lung~SCT^24028007^Right~" in right.GetTerminology()
    assert segment_codes(right)["type"].value == "39607008"


@pytest.mark.slicer
def test_apply_replaces_the_content_of_chosen_nodes(logic, mrml_scene, ct_node, test_model, core_result):
    from OncoQISlicer.mrml import labels_from_segmentation_node

    chosen_segmentation = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "my lesions")
    chosen_segmentation.GetSegmentation().AddEmptySegment("", "old drawing")
    chosen_table = mrml_scene.AddNewNodeByClass("vtkMRMLTableNode", "my table")
    chosen_lungs = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "my lungs")
    result = logic.segment(ct_node, modelPath=test_model, threads=1)
    count = mrml_scene.GetNumberOfNodes()

    for _run in range(2):
        nodes = logic.apply(result, ct_node, chosen_segmentation, chosen_table, chosen_lungs, includeLungs=True)
        assert (nodes.segmentation, nodes.table, nodes.lungs) == (chosen_segmentation, chosen_table, chosen_lungs)
        assert segment_names(chosen_segmentation)[0] == "GTV-1"
        assert chosen_segmentation.GetSegmentation().GetNumberOfSegments() == len(core_result.lesions)
        assert chosen_table.GetNumberOfRows() == len(core_result.lesions)
        assert segment_names(chosen_lungs) == ["Right lung", "Left lung"]
        labels, _names = labels_from_segmentation_node(chosen_segmentation, ct_node)
        np.testing.assert_array_equal(labels.array, core_result.labels.array)
        # Only display nodes for the two segmentations appear; no temporary node stays behind.
        assert mrml_scene.GetNumberOfNodes() == count + 2


@pytest.mark.slicer
def test_apply_adds_nothing_when_it_fails(logic, mrml_scene, ct_node, test_model, monkeypatch):
    from oncoqi.errors import InputError
    from OncoQILungTumorSegmentationLib import segmentation as lib

    result = logic.segment(ct_node, modelPath=test_model, threads=1)
    count = mrml_scene.GetNumberOfNodes()

    def broken_table(lesions):
        raise RuntimeError("table failed")

    monkeypatch.setattr(lib, "lesion_table", broken_table)
    with pytest.raises(RuntimeError, match="table failed"):
        logic.apply(result, ct_node, includeLungs=True)
    assert mrml_scene.GetNumberOfNodes() == count

    monkeypatch.undo()
    mrml_scene.RemoveNode(ct_node)
    with pytest.raises(InputError, match="removed from the scene"):
        logic.apply(result, ct_node)
    assert mrml_scene.GetNumberOfNodes() == count - 1


# --- background job on the scene ----------------------------------------------------------------


@pytest.mark.slicer
def test_job_segments_in_the_background_and_the_nodes_come_on_apply(
    logic, mrml_scene, ct_node, test_model, core_result
):
    count = mrml_scene.GetNumberOfNodes()
    reports = []
    main = threading.current_thread()
    threads = set()

    def progress(done, total):
        reports.append((done, total))
        threads.add(threading.current_thread())

    job = logic.startSegmentation(ct_node, modelPath=test_model, threads=1, progress=progress)
    assert job.wait(JOB_TIMEOUT_S)
    assert mrml_scene.GetNumberOfNodes() == count  # the worker wrote nothing to the scene
    assert main not in threads  # the core ran on the worker thread
    assert reports[0][0] == 0 and reports[-1][0] == reports[-1][1] == len(core_result.slices_run)
    assert job.progress == reports[-1]
    assert job.stage == ("lesions", 0.0)  # the core's last stage reached the job

    result = job.result()
    np.testing.assert_array_equal(result.segmentation.labels.array, core_result.labels.array)
    nodes = logic.apply(result, ct_node)
    assert nodes.segmentation.GetSegmentation().GetNumberOfSegments() == len(core_result.lesions)


@pytest.mark.slicer
def test_job_cancelled_before_it_starts_adds_nothing(logic, mrml_scene, ct_node, test_model):
    count = mrml_scene.GetNumberOfNodes()
    cancel = threading.Event()
    cancel.set()
    job = logic.startSegmentation(ct_node, modelPath=test_model, threads=1, cancel=cancel)
    assert job.wait(JOB_TIMEOUT_S)
    assert isinstance(job.error, Cancelled) and job.progress is None
    with pytest.raises(Cancelled, match="before it started"):
        job.result()
    assert mrml_scene.GetNumberOfNodes() == count


@pytest.mark.slicer
def test_job_cancelled_while_running_adds_nothing(logic, mrml_scene, ct_node, test_model):
    count = mrml_scene.GetNumberOfNodes()
    cancel = threading.Event()
    reports = []

    def cancel_after_first_batch(done, total):
        reports.append((done, total))
        if done > 0:
            cancel.set()  # what the Cancel button does, from another thread

    job = logic.startSegmentation(
        ct_node, modelPath=test_model, threads=1, progress=cancel_after_first_batch, cancel=cancel
    )
    assert job.wait(JOB_TIMEOUT_S)
    assert isinstance(job.error, Cancelled) and job.cancel_requested
    done, total = job.progress
    assert 0 < done < total and len(reports) == 2
    assert mrml_scene.GetNumberOfNodes() == count


# --- clear errors -------------------------------------------------------------------------------


@pytest.mark.slicer
@pytest.mark.parametrize(
    ("values", "error", "message"),
    [
        (np.full((6, 8, 10), 40, np.int16), EmptyVolumeError, "every voxel is 40"),
        (np.arange(480, dtype=np.float32).reshape(6, 8, 10), NotCTError, "not CT numbers in HU"),
    ],
    ids=["uniform", "no air"],
)
def test_a_volume_that_is_not_a_ct_is_refused_before_any_work(logic, mrml_scene, values, error, message):
    from OncoQISlicer.mrml import volume_node_from_image

    node = volume_node_from_image(mrml_scene, Image(values, (1.0, 1.0, 2.0), (0.0, 0.0, 0.0), np.eye(3)), "small")
    count = mrml_scene.GetNumberOfNodes()
    for run in (logic.segment, logic.startSegmentation, logic.process):
        with pytest.raises(error, match=message) as raised:
            run(node, modelPath="no model is loaded before the check")
        assert "volume 'small'" in str(raised.value)
    assert mrml_scene.GetNumberOfNodes() == count


@pytest.mark.slicer
def test_a_ct_without_lungs_fails_in_the_job_with_a_clear_error(logic, mrml_scene, test_model):
    from OncoQISlicer.mrml import volume_node_from_image

    # Air around a solid soft-tissue cylinder: a CT of something, but no lungs in it.
    values = np.full((20, 64, 64), -1000, np.int16)
    yy, xx = np.mgrid[:64, :64]
    values[:, (yy - 32) ** 2 + (xx - 32) ** 2 < 25**2] = 40
    ct = Image(values, (5.0, 5.0, 5.0), (-160.0, -160.0, 0.0), np.eye(3))
    node = volume_node_from_image(mrml_scene, ct, "phantom")
    count = mrml_scene.GetNumberOfNodes()

    job = logic.startSegmentation(node, modelPath=test_model, threads=1)
    assert job.wait(JOB_TIMEOUT_S)
    assert isinstance(job.error, LungNotFoundError) and isinstance(job.error, OncoQIError)
    assert "phantom" in str(job.error)
    with pytest.raises(LungNotFoundError):
        logic.process(node, modelPath=test_model, threads=1)
    assert mrml_scene.GetNumberOfNodes() == count


@pytest.mark.slicer
def test_without_a_model_the_error_says_how_to_get_one(logic, ct_node, tmp_path, monkeypatch):
    import oncoqi.lung.segment

    monkeypatch.setattr(oncoqi.lung.segment, "default_model_path", lambda: tmp_path / "lung_unet.onnx")
    with pytest.raises(NoModelError, match="oncoqi lung train"):
        logic.segment(ct_node)
    job = logic.startSegmentation(ct_node)
    assert job.wait(JOB_TIMEOUT_S) and isinstance(job.error, NoModelError)


# --- the Widget on Slicer's real layer (stand-in Qt widgets built from the .ui) -------------------


@pytest.fixture
def widget(slicer_module_loader, mrml_scene, ct_node, test_model, monkeypatch):
    """The module's Widget as Slicer sets it up, the CT chosen, the test model as the shipped one.

    ``errors`` lists the texts of the error boxes ``slicer.util.errorDisplay`` opened.
    """
    import oncoqi.lung.segment

    monkeypatch.setattr(oncoqi.lung.segment, "default_model_path", lambda: test_model)
    layer = slicer_module_loader.layer
    widget = layer.create_widget(slicer_module_loader.load(MODULE), MODULE)
    p = widget._parameterNode
    p.inputVolume, p.includeLungs, p.threads = ct_node, True, 1
    widget.errors = layer.app.dialogs
    return widget


def _poll_until_finished(widget) -> None:
    """What the QTimer does: call _pollJob until the job is handed over (bounded in time)."""
    import time

    deadline = time.monotonic() + JOB_TIMEOUT_S
    while widget._job is not None:
        assert time.monotonic() < deadline, "the job did not finish"
        widget._pollJob()
        time.sleep(0.02)


@pytest.mark.slicer
def test_widget_runs_the_job_and_writes_the_result_when_polled(widget, core_result) -> None:
    ui, p = widget.ui, widget._parameterNode
    ui.applyButton.click()
    assert widget._job is not None and widget._pollTimer.isActive()
    assert (ui.applyButton.enabled, ui.cancelButton.enabled, ui.progressBar.visible) == (False, True, True)

    _poll_until_finished(widget)

    assert widget.errors == []
    assert p.outputSegmentation.GetSegmentation().GetNumberOfSegments() == len(core_result.lesions)
    assert p.outputTable.GetNumberOfRows() == len(core_result.lesions)
    assert p.lungSegmentation.GetSegmentation().GetNumberOfSegments() == 2
    status = ui.statusLabel.text.splitlines()
    assert status[0].startswith(f"sample CT: {len(core_result.lesions)} lesion(s)")
    assert status[1].startswith("GTV-1: ") and len(status) == 7
    assert status[-1] == f"... and {len(core_result.lesions) - 5} smaller (see the table)"
    assert (ui.applyButton.enabled, ui.cancelButton.enabled, ui.progressBar.visible) == (True, False, False)
    assert ui.lesionTableView.mrmlTableNode() is p.outputTable


@pytest.mark.slicer
def test_widget_shows_the_stage_and_fills_the_bar_with_the_network_slices(widget) -> None:
    ui = widget.ui
    shown = []
    for stage, progress in [
        (("lungs", 0.0), None),
        (("network", 0.0), None),
        (("network", 0.5), (3, 6)),
        (("network", 1.0), (6, 6)),
        (("lesions", 0.0), (6, 6)),
    ]:
        widget._showProgress(stage, progress)
        shown.append((ui.statusLabel.text, ui.progressBar.maximum, ui.progressBar.value))
    assert [text for text, _, _ in shown] == [
        "Finding the lungs...",
        "Preparing the network's input...",
        "Running the network: 3 of 6 slices",
        "Running the network: 6 of 6 slices",
        "Labelling and measuring the lesions...",
    ]
    assert [maximum for _, maximum, _ in shown] == [0, 0, 6, 6, 0]  # 0: Qt's busy bar
    assert [value for _, _, value in shown[2:4]] == [3, 6]


@pytest.mark.slicer
def test_widget_cancel_adds_nothing(widget, mrml_scene) -> None:
    count = mrml_scene.GetNumberOfNodes()
    widget.ui.applyButton.click()
    widget.ui.cancelButton.click()
    assert widget.ui.statusLabel.text == "Cancelling..."
    _poll_until_finished(widget)
    assert widget.ui.statusLabel.text == "Cancelled: nothing was added to the scene."
    assert widget.errors == [] and widget._parameterNode.outputSegmentation is None
    assert mrml_scene.GetNumberOfNodes() == count

    # Cancel clicked after the work ended but before the timer saw it: still nothing is added.
    widget.ui.applyButton.click()
    assert widget._job.wait(JOB_TIMEOUT_S) and widget._job.error is None
    widget.ui.cancelButton.click()
    _poll_until_finished(widget)
    assert widget.ui.statusLabel.text == "Cancelled: nothing was added to the scene."
    assert mrml_scene.GetNumberOfNodes() == count


@pytest.mark.slicer
def test_widget_shows_one_message_when_the_job_fails(widget, mrml_scene, tmp_path, monkeypatch) -> None:
    import oncoqi.lung.segment

    monkeypatch.setattr(oncoqi.lung.segment, "default_model_path", lambda: tmp_path / "lung_unet.onnx")
    count = mrml_scene.GetNumberOfNodes()
    widget.ui.applyButton.click()
    _poll_until_finished(widget)
    ((_title, message),) = widget.errors
    assert message.startswith("Lung tumor segmentation failed.\n\nno trained model:")
    assert widget.ui.statusLabel.text == "Failed: nothing was added to the scene."
    assert widget.ui.applyButton.enabled and mrml_scene.GetNumberOfNodes() == count


# --- a missed tumour recovered from a markup point (issue 25) ------------------------------------


def _deepest_lps(image: Image, mask: np.ndarray) -> np.ndarray:
    """The LPS point (mm) of the mask's voxel farthest from its border: where a reader clicks."""
    depth = ndimage.distance_transform_edt(mask, sampling=image.spacing[::-1])
    return image.index_to_lps(np.array(np.unravel_index(np.argmax(depth), mask.shape)[::-1], float))


@pytest.fixture(scope="module")
def missed(tmp_path_factory) -> SimpleNamespace:
    """A phantom with two tumours on the right that the automatic pass misses.

    Tumour 1 (8 ml) lies against the mediastinum, tumour 2 (6 ml) in the lung parenchyma. The
    "network" is the identity graph blind to the right half of the image (``half_blind_model``): it
    finds the dense tissue of the left side as lesions and sees nothing of either tumour, so a click
    outlines them by growing on the CT. (The shipped model misses tumour 1 too, with a probability
    of 0.001 at most in it; the module's Test class checks that case in Slicer.)
    """
    options = PhantomOptions(
        seed=1,
        size=128,
        slices=50,
        slice_thickness_mm=5.0,
        tumours=(TumourSpec(location="mediastinum", volume_ml=8.0), TumourSpec(location="parenchyma", volume_ml=6.0)),
    )
    phantom = make_ct(options)
    truths = [phantom.tumour_label.array == value for value in (1, 2)]
    lps = [_deepest_lps(phantom.ct, truth) for truth in truths]
    assert all(point[0] < 0 for point in lps)  # both on the patient's right, where the model is blind
    # The middle of the right lung's parenchyma: aerated, and the model sees nothing there.
    lung = phantom.tissue.array == Tissue.LUNG
    lung[:, :, lung.shape[2] // 2 :] = False
    return SimpleNamespace(
        ct=phantom.ct,
        truths=truths,
        lps=lps,
        ras=[point * [-1, -1, 1] for point in lps],
        air_ras=_deepest_lps(phantom.ct, lung) * [-1, -1, 1],
        model=half_blind_model(tmp_path_factory.mktemp("blind") / "half_blind.onnx", SMALL_GRID, IDENTITY_THRESHOLD),
    )


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def _point_list(scene, name: str, *positions_ras):
    node = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", name)
    for position in positions_ras:
        node.AddControlPoint(*(float(v) for v in position))
    return node


def _same_segments(before: np.ndarray, after: np.ndarray) -> bool:
    """Every label of ``before`` is one label of ``after`` with exactly the same voxels (its number may change)."""
    for value in np.unique(before[before > 0]):
        (new,) = np.unique(after[before == value])
        if not np.array_equal(after == new, before == value):
            return False
    return True


@pytest.mark.slicer
def test_points_on_missed_tumours_add_them_as_lesions(logic, mrml_scene, missed) -> None:
    from OncoQISlicer.mrml import labels_from_segmentation_node, volume_node_from_image

    from oncoqi.lung.click import add_lesions_at_points

    ct_node = volume_node_from_image(mrml_scene, missed.ct, "phantom CT")
    nodes = logic.process(ct_node, modelPath=missed.model, threads=1)
    before, _names = labels_from_segmentation_node(nodes.segmentation, ct_node)
    assert before.array.any() and not any(before.array[truth].any() for truth in missed.truths)  # both missed
    first = _point_list(mrml_scene, "missed", missed.ras[0])

    added = logic.addLesionsAtPoints(ct_node, first)

    assert (added.nodes.segmentation, added.nodes.table) == (nodes.segmentation, nodes.table)  # rewritten in place
    assert len(added.notes) == 1 and re.fullmatch(r"missed-1: lesion of \d+\.\d ml added", added.notes[0])
    once, names = labels_from_segmentation_node(nodes.segmentation, ct_node)
    assert names == {value: lesion_name(value) for value in range(1, len(names) + 1)}
    assert _same_segments(before.array, once.array)  # the network's lesions keep their voxels
    sources = table_column(nodes.table, "Source")
    assert sources.count("point") == 1 and len(sources) == len(names) == before.array.max() + 1
    row = sources.index("point")
    name, label = table_column(nodes.table, "Segment")[row], table_column(nodes.table, "Label")[row]
    assert names[label] == name
    assert _dice(once.array == label, missed.truths[0]) >= 0.8
    segmentation = nodes.segmentation.GetSegmentation()
    segment = segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName(name))
    assert segment_tag(segment, "DICOM.SegmentAlgorithmType") == "SEMIAUTOMATIC"
    assert segment_tag(segment, "OncoQI.LesionLabel") == str(label)
    assert "added at a point" in logic.summaryText(added.result)

    # Later, two points on the second tumour in another list (the second 3 mm off its centre): one
    # lesion is added, and the first point's lesion stays as it was.
    later = _point_list(mrml_scene, "later", missed.ras[1], missed.ras[1] + [3.0, 0.0, 0.0])
    second = logic.addLesionsAtPoints(ct_node, later)
    twice, names = labels_from_segmentation_node(nodes.segmentation, ct_node)
    assert second.notes[0].startswith("later-1: lesion of ") and second.notes[0].endswith(" ml added")
    i, j, k = np.rint(missed.ct.lps_to_index(missed.lps[1] + [-3.0, 0.0, 0.0])).astype(int)
    assert second.notes[1] == f"later-2: inside {names[int(twice.array[k, j, i])]} already, nothing added"
    assert _same_segments(once.array, twice.array)
    rows = [n for n, source in enumerate(table_column(nodes.table, "Source")) if source == "point"]
    labels = [table_column(nodes.table, "Label")[n] for n in rows]
    assert len(labels) == 2
    for truth in missed.truths:  # each tumour is one of the two point lesions
        assert max(_dice(twice.array == value, truth) for value in labels) >= 0.8

    # What the command line gives with the same points: oncoqi lung segment --point X Y Z --point X Y Z.
    found = segment_ct(missed.ct, missed.model, threads=1)
    expected, _notes = add_lesions_at_points(missed.ct, found, missed.lps)
    np.testing.assert_array_equal(twice.array, expected.labels.array)
    assert table_column(nodes.table, "Source") == [lesion.source for lesion in expected.lesions]

    # Clicking again adds nothing and leaves the nodes as they are.
    again = logic.addLesionsAtPoints(ct_node, first)
    assert re.fullmatch(r"missed-1: inside (GTV-1|Lesion \d+) already, nothing added", again.notes[0]), again.notes
    np.testing.assert_array_equal(labels_from_segmentation_node(nodes.segmentation, ct_node)[0].array, twice.array)


@pytest.mark.slicer
def test_points_are_refused_without_a_result_outside_the_ct_on_air_or_after_an_edit(logic, mrml_scene, missed) -> None:
    from OncoQISlicer.mrml import labels_from_segmentation_node, volume_node_from_image

    ct_node = volume_node_from_image(mrml_scene, missed.ct, "phantom CT")
    points = _point_list(mrml_scene, "missed", missed.ras[0])
    count = mrml_scene.GetNumberOfNodes()
    with pytest.raises(InputError, match=r"no lesion segmentation of 'phantom CT' to add to: click Apply first"):
        logic.addLesionsAtPoints(ct_node, points)
    assert not logic.hasResult(ct_node) and mrml_scene.GetNumberOfNodes() == count

    nodes = logic.process(ct_node, modelPath=missed.model, threads=1)
    assert logic.hasResult(ct_node)
    written, _names = labels_from_segmentation_node(nodes.segmentation, ct_node)
    refused = [
        (None, "choose a point list and place a point on each missed tumor"),
        (_point_list(mrml_scene, "empty"), "point list 'empty' has no point: place one on each missed tumor"),
        (
            _point_list(mrml_scene, "far", missed.ras[0], (0.0, 0.0, 900.0)),
            r"point 'far-2' at RAS \(0.0, 0.0, 900.0\) mm is outside the CT 'phantom CT': move it onto the tumor",
        ),
        (
            _point_list(mrml_scene, "air", missed.air_ras),
            r"point 'air-1' at RAS \([-\d., ]+\) mm is in aerated lung \(-\d+ HU\) and the network saw nothing there",
        ),
    ]
    count = mrml_scene.GetNumberOfNodes()
    for bad, message in refused:
        with pytest.raises(InputError, match=message):
            logic.addLesionsAtPoints(ct_node, bad)
    assert mrml_scene.GetNumberOfNodes() == count

    # An edited segmentation is not rewritten (that would undo the edit).
    segmentation = nodes.segmentation.GetSegmentation()
    segmentation.RemoveSegment(segmentation.GetNthSegmentID(segmentation.GetNumberOfSegments() - 1))
    edited, _names = labels_from_segmentation_node(nodes.segmentation, ct_node)
    with pytest.raises(InputError, match="'phantom CT lung tumors' was edited after it was written"):
        logic.addLesionsAtPoints(ct_node, points)
    np.testing.assert_array_equal(labels_from_segmentation_node(nodes.segmentation, ct_node)[0].array, edited.array)
    assert not np.array_equal(edited.array, written.array)

    # Only the last Apply's result is kept, and forgetting it (scene close) refuses again.
    logic.forgetResult()
    with pytest.raises(InputError, match="click Apply first"):
        logic.addLesionsAtPoints(ct_node, points)


@pytest.mark.slicer
@pytest.mark.parametrize("version", ["v5.8.0", "v5.12.0"])
def test_widget_adds_lesions_at_the_chosen_points_after_apply(
    slicer_layer_factory, mrml_scene, missed, monkeypatch, version
) -> None:
    from OncoQISlicer.mrml import volume_node_from_image

    import oncoqi.lung.segment

    monkeypatch.setattr(oncoqi.lung.segment, "default_model_path", lambda: missed.model)
    layer = slicer_layer_factory(version)
    widget = layer.create_widget(layer.load_module(MODULE, module_folder(MODULE)), MODULE)
    ui, p = widget.ui, widget._parameterNode
    ct_node = volume_node_from_image(mrml_scene, missed.ct, "phantom CT")
    ui.inputSelector.setCurrentNode(ct_node)
    ui.threadsSpinBox.value = 1
    points = _point_list(mrml_scene, "missed", missed.ras[0])
    ui.lesionPointsSelector.setCurrentNode(points)
    assert p.lesionPoints is points
    assert not ui.addLesionsButton.enabled and ui.addLesionsButton.toolTip.startswith("Click Apply first")
    ui.addLesionsButton.clicked.emit(False)  # even if a click reached the slot: one message, nothing added
    ((_title, text),) = layer.app.dialogs
    assert text.startswith("Cannot add lesions at these points.") and "click Apply first" in text
    errors = len(layer.slot_errors)  # tryWithErrorDisplay re-raises after its message; PythonQt prints it

    ui.applyButton.click()
    assert not ui.addLesionsButton.enabled  # not while the job runs
    _poll_until_finished(widget)
    assert ui.addLesionsButton.enabled
    lesions = p.outputSegmentation.GetSegmentation().GetNumberOfSegments()

    ui.addLesionsButton.click()
    assert len(layer.app.dialogs) == 1 and len(layer.slot_errors) == errors
    assert p.outputSegmentation.GetSegmentation().GetNumberOfSegments() == lesions + 1
    assert table_column(p.outputTable, "Source").count("point") == 1
    status = ui.statusLabel.text.splitlines()
    assert re.fullmatch(r"missed-1: lesion of \d+\.\d ml added", status[0])
    assert status[1].startswith(f"phantom CT: {lesions + 1} lesion(s)")
    assert "added at a point" in ui.statusLabel.text

    ui.lesionPointsSelector.setCurrentNode(None)
    assert not ui.addLesionsButton.enabled and ui.addLesionsButton.toolTip.startswith("Choose a point list")
