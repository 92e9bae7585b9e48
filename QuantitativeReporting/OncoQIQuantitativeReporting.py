"""OncoQIQuantitativeReporting: measurements of segmented findings, saved as DICOM SEG + SR TID 1500 (OncoQI).

Pick a segmentation and the volume it was drawn on: the measurement table (volume, mean, min, max,
std, and SUVbw peak for a SUV PET) follows the segments as they are edited. Save writes the
segments as a DICOM SEG and the measurements as a TID 1500 SR through the ``oncoqi`` core and
imports both into Slicer's DICOM database. The folder also carries the bundle's DICOM plugin; the
MRML <-> ``oncoqi`` adapter shared by all OncoQI modules, ``OncoQISlicer``, has its own top-level folder.
"""

import logging

import qt
import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode, vtkMRMLTableNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin


def _ensureCore() -> None:
    """Install ``oncoqi`` on first use (Slicer forbids installing at import), then it can be imported."""
    from OncoQISlicer.dependencies import ensure_core

    ensure_core("OncoQIQuantitativeReporting")


class OncoQIQuantitativeReporting(ScriptedLoadableModule):
    """Module metadata shown in Slicer's module list and help panel."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        from OncoQISlicer.moduleinfo import CONTRIBUTORS, connect_sample_data, help_footer

        self.parent.title = _("Quantitative Reporting (OncoQI)")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "OncoQI")]
        self.parent.dependencies = []
        self.parent.contributors = list(CONTRIBUTORS)
        self.parent.helpText = _(
            "Measures segmented findings and saves them as DICOM: the segments as a Segmentation (SEG) "
            "and the measurements as a TID 1500 Structured Report, imported into the DICOM database. "
            "The reference volume must have been loaded from DICOM (or its series folder given), "
            "because a SEG references the images it was drawn on. Overlapping segments are each "
            "measured in full."
        ) + help_footer("reporting.md")
        self.parent.acknowledgementText = _(
            "Part of the OncoQI extension. The reporting workflow follows QIICR's QuantitativeReporting."
        )
        connect_sample_data(__file__)


@parameterNodeWrapper
class OncoQIQuantitativeReportingParameterNode:
    """Module state, saved with the scene.

    segmentation
        The segmentation whose segments are measured and saved.
    referenceVolume
        The volume the segments were drawn on (CT, or PET in SUV); statistics are its voxel values.
    measurements
        The table the measurements are shown in.
    readerName
        Who read the images (DICOM person name, e.g. ``Doe^Jane``): SEG content creator, SR observer.
    seriesDescription
        Series description of the SEG (the SR gets it with " measurements").
    sourceFolder
        The reference volume's DICOM series folder, for a volume not loaded through the DICOM module.
    """

    segmentation: vtkMRMLSegmentationNode
    referenceVolume: vtkMRMLScalarVolumeNode
    measurements: vtkMRMLTableNode
    readerName: str = ""
    seriesDescription: str = "Segmentation"
    sourceFolder: str = ""


class OncoQIQuantitativeReportingWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Wires the ``.ui`` to the Logic; holds no computation of its own.

    The table is refreshed (after a short pause, so that painting stays fluid) whenever a segment
    of the chosen segmentation is added, removed or edited. Save calls the Logic's
    ``saveToDicomDatabase``, whose import uses ``DICOMUtils.importDicom``, which exists only in the
    application: it is the one step of the Save button that the module Test does not run (see
    ``OncoQIQuantitativeReportingTest``).
    """

    #: Segmentation events after which the table is recomputed.
    SEGMENT_EVENTS = ("SegmentAdded", "SegmentRemoved", "SegmentModified", "RepresentationModified")

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._observedSegmentation = None
        self._measuredInputs = (None, None)
        self._refreshTimer = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/OncoQIQuantitativeReporting.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = OncoQIQuantitativeReportingLogic()
        self._refreshTimer = qt.QTimer()
        self._refreshTimer.setSingleShot(True)
        self._refreshTimer.setInterval(500)
        self._refreshTimer.connect("timeout()", self.updateTable)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.updateTable)
        self.ui.saveButton.connect("clicked(bool)", self.onSaveButton)

        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)

    def onSceneStartClose(self, caller, event) -> None:
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.segmentation:
            firstSegmentation = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLSegmentationNode")
            if firstSegmentation:
                self._parameterNode.segmentation = firstSegmentation
        if not self._parameterNode.referenceVolume and self._parameterNode.segmentation:
            reference = self.logic.referenceVolumeOf(self._parameterNode.segmentation)
            if reference:
                self._parameterNode.referenceVolume = reference

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
            self._onParameterNodeModified()

    def _onParameterNodeModified(self, caller=None, event=None) -> None:
        ready = bool(self._parameterNode and self._parameterNode.segmentation and self._parameterNode.referenceVolume)
        self.ui.applyButton.enabled = ready
        self.ui.saveButton.enabled = ready
        self.ui.saveButton.toolTip = (
            _("Save SEG and SR into the DICOM database")
            if ready
            else _("Select a segmentation and its reference volume")
        )
        segmentation = self._parameterNode.segmentation if self._parameterNode else None
        volume = self._parameterNode.referenceVolume if self._parameterNode else None
        self._observeSegmentation(segmentation)
        if ready and (segmentation, volume) != self._measuredInputs:  # not on the table's own updates
            self._measuredInputs = (segmentation, volume)
            self._scheduleRefresh()
        if self._parameterNode and self._parameterNode.measurements:
            self.ui.measurementsTableView.setMRMLTableNode(self._parameterNode.measurements)

    def _observeSegmentation(self, segmentationNode) -> None:
        """Follow segment edits of ``segmentationNode`` only (the previous one is let go)."""
        if segmentationNode is self._observedSegmentation:
            return
        if self._observedSegmentation is not None:
            for event in self.SEGMENT_EVENTS:
                self.removeObserver(
                    self._observedSegmentation.GetSegmentation(),
                    getattr(slicer.vtkSegmentation, event),
                    self._scheduleRefresh,
                )
        self._observedSegmentation = segmentationNode
        if segmentationNode is not None:
            for event in self.SEGMENT_EVENTS:
                self.addObserver(
                    segmentationNode.GetSegmentation(), getattr(slicer.vtkSegmentation, event), self._scheduleRefresh
                )

    def _scheduleRefresh(self, caller=None, event=None) -> None:
        if self._parameterNode and self._parameterNode.referenceVolume:
            self._refreshTimer.start()

    def updateTable(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to measure the segments."), waitCursor=True):
            p = self._parameterNode
            p.measurements = self.logic.measurementTable(p.segmentation, p.referenceVolume, p.measurements)

    def onSaveButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to save the report."), waitCursor=True):
            p = self._parameterNode
            written = self.logic.saveToDicomDatabase(
                p.segmentation, p.referenceVolume, p.readerName, p.seriesDescription, source=p.sourceFolder or None
            )
            slicer.util.infoDisplay(
                _("Saved {seg} and {sr} into the DICOM database.").format(
                    seg=written.seg_path.name, sr=written.sr_path.name
                )
            )


class OncoQIQuantitativeReportingLogic(ScriptedLoadableModuleLogic):
    """Converts MRML nodes for the ``oncoqi`` core, measures segments and exports reports; usable without the GUI."""

    def getParameterNode(self):
        return OncoQIQuantitativeReportingParameterNode(super().getParameterNode())

    @staticmethod
    def referenceVolumeOf(segmentation):
        """The scalar volume ``segmentation`` was drawn on (its reference image geometry), or None."""
        reference = segmentation.GetNodeReference(segmentation.GetReferenceImageGeometryReferenceRole())
        if reference and reference.IsA("vtkMRMLScalarVolumeNode"):
            return reference
        return None

    def measureSegments(self, segmentation):
        """Voxel count and volume (ml) of every segment of ``segmentation``, in segment order.

        Needs no reference volume (each segment's own labelmap is counted).

        Returns
        -------
        list[OncoQIQuantitativeReportingLib.measurements.SegmentMeasurement]
        """
        if not segmentation:
            raise ValueError("Segmentation is invalid")
        _ensureCore()
        from OncoQIQuantitativeReportingLib.measurements import segment_measurements

        rows = segment_measurements(segmentation)
        logging.info("OncoQIQuantitativeReporting: measured %d segments of '%s'", len(rows), segmentation.GetName())
        return rows

    def measurementTable(self, segmentation, referenceVolume, tableNode=None):
        """Fill ``tableNode`` (a new ``vtkMRMLTableNode`` when None) with each segment's measurements.

        Columns: ``OncoQIQuantitativeReportingLib.report.TABLE_COLUMNS``; statistics are in the reference
        volume's voxel units, with the SUVbw peak when they are SUVbw.

        Returns
        -------
        vtkMRMLTableNode
        """
        if not segmentation or not referenceVolume:
            raise ValueError("Select a segmentation and its reference volume")
        _ensureCore()
        from OncoQIQuantitativeReportingLib.report import fill_table, measure

        rows = measure(segmentation, referenceVolume)  # first: on an error the scene is left as it was
        if tableNode is None:
            tableNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLTableNode", f"{segmentation.GetName()} measurements")
        return fill_table(tableNode, rows)

    def export(
        self,
        segmentation,
        referenceVolume,
        outDir,
        readerName="",
        seriesDescription="",
        source=None,
        fileForInstance=None,
        force=False,
    ):
        """Write ``seg.dcm`` and ``sr.dcm`` into ``outDir`` (see ``OncoQIQuantitativeReportingLib.report.export``).

        ``source`` (a folder or list of files) or ``fileForInstance`` (the DICOM database's lookup
        of a SOP Instance UID) locates the reference volume's DICOM files.

        Returns
        -------
        oncoqi.report.WrittenReport
        """
        if not segmentation or not referenceVolume:
            raise ValueError("Select a segmentation and its reference volume")
        _ensureCore()
        from OncoQIQuantitativeReportingLib.report import export

        written = export(
            segmentation, referenceVolume, outDir, readerName, seriesDescription, source, fileForInstance, force
        )
        logging.info("OncoQIQuantitativeReporting: wrote %s and %s", written.seg_path, written.sr_path)
        return written

    def saveToDicomDatabase(self, segmentation, referenceVolume, readerName="", seriesDescription="", source=None):
        """:meth:`export` into a new temporary folder, then import both files into Slicer's DICOM database.

        The reference volume's DICOM files are ``source`` (a folder or list of files) or, when None,
        looked up in the DICOM database. The database keeps a copy of the files. The import uses
        ``DICOMUtils.importDicom``, which exists only in the application.

        Returns
        -------
        oncoqi.report.WrittenReport

        Raises
        ------
        RuntimeError
            When no DICOM database is open or the import fails; the message says where the files are.
        """
        from DICOMLib import DICOMUtils

        folder = slicer.util.tempDirectory("OncoQIQuantitativeReporting")  # a new folder per save
        written = self.export(
            segmentation,
            referenceVolume,
            folder,
            readerName,
            seriesDescription,
            source=source,
            fileForInstance=slicer.dicomDatabase.fileForInstance if slicer.dicomDatabase else None,
        )
        if not slicer.dicomDatabase or not DICOMUtils.importDicom(folder, copyFiles=True):  # the database keeps a copy
            raise RuntimeError(
                _(
                    "{seg} and {sr} are in {folder} but could not be added to the DICOM database "
                    "(open the DICOM module to create or choose one)."
                ).format(seg=written.seg_path.name, sr=written.sr_path.name, folder=folder)
            )
        return written


class OncoQIQuantitativeReportingTest(ScriptedLoadableModuleTest):
    """Runs the Logic on data made with numpy and the core (DICOM written to a temporary folder): known answers.

    Not run here: ``saveToDicomDatabase``'s import of the saved files into the DICOM database
    (``DICOMUtils.importDicom``), which needs the application; do it by hand with Save.
    """

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_OncoQIQuantitativeReportingLogic()
        self.setUp()
        self.test_OncoQIQuantitativeReportingSegmentSizes()
        self.setUp()
        self.test_OncoQIQuantitativeReportingParameterNode()

    def test_OncoQIQuantitativeReportingLogic(self) -> None:
        self.delayDisplay("Measurement table and SEG + SR export of overlapping segments on a DICOM CT")
        _ensureCore()
        import tempfile
        from pathlib import Path

        import numpy as np
        from OncoQISlicer.mrml import (
            segmentation_node_from_labels,
            volume_node_from_image,
        )

        from oncoqi.dicom import read_image
        from oncoqi.dicom.write import StudyInfo, uid_from, write_series
        from oncoqi.errors import InputError
        from oncoqi.image import Image
        from oncoqi.report import read_report

        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "ct"
            values = (np.arange(5 * 8 * 9, dtype=np.int16).reshape(5, 8, 9) % 50) * 10 - 100
            study = StudyInfo(study_instance_uid=uid_from("QR test"), frame_of_reference_uid=uid_from("QR test FoR"))
            write_series(Image(values, (0.7, 0.7, 2.5), (5.0, -3.0, 40.0)), folder, modality="CT", study=study)
            ct = read_image(folder)
            volume = volume_node_from_image(slicer.mrmlScene, ct, "CT (not from the DICOM module)")
            labels = np.zeros(values.shape, np.uint8)
            labels[1:4, 2:6, 2:7] = 1  # 3 x 4 x 5 = 60 voxels
            segmentation = segmentation_node_from_labels(
                slicer.mrmlScene, ct.with_array(labels), {1: "tumour"}, reference_volume_node=volume
            )
            core = segmentation.GetSegmentation().AddEmptySegment("", "core")
            coreMask = np.zeros_like(labels)
            coreMask[2:5, 3:5, 3:5] = 1  # 3 x 2 x 2 = 12 voxels, overlapping the tumour
            slicer.util.updateSegmentBinaryLabelmapFromArray(coreMask, segmentation, core, volume)

            logic = OncoQIQuantitativeReportingLogic()
            table = logic.measurementTable(segmentation, volume)
            self.assertEqual(table.GetNumberOfRows(), 2)
            self.assertEqual(table.GetCellText(1, 0), "core")
            for row, mask in enumerate((labels == 1, coreMask == 1)):
                self.assertAlmostEqual(float(table.GetCellText(row, 1)), mask.sum() * ct.voxel_volume_ml, places=6)
                self.assertAlmostEqual(float(table.GetCellText(row, 2)), values[mask].mean(), places=3)

            out = Path(tmp) / "report"
            with self.assertRaisesRegex(InputError, "load the volume from DICOM"):
                logic.export(segmentation, volume, out)
            self.assertFalse(out.exists())
            written = logic.export(segmentation, volume, out, "Doe^Jane", "Reading 1", source=folder)
            seg = read_report(written.seg_path, folder)
            np.testing.assert_array_equal(seg.mask(1).array, labels == 1)
            np.testing.assert_array_equal(seg.mask(2).array, coreMask == 1)
            self.assertEqual(seg.metadata.content_creator, "Doe^Jane")
            sr = read_report(written.sr_path)
            self.assertEqual({r["segment_number"] for r in sr.rows()}, {1, 2})
        self.delayDisplay("Test passed")

    def test_OncoQIQuantitativeReportingSegmentSizes(self) -> None:
        self.delayDisplay("Measuring overlapping and empty segments")
        _ensureCore()
        import numpy as np
        from OncoQISlicer.mrml import (
            segmentation_node_from_labels,
            volume_node_from_image,
        )

        from oncoqi.image import Image

        labels = np.zeros((8, 10, 12), dtype=np.uint8)
        labels[1:7, 1:9, 1:11] = 1  # "lung": 6 x 8 x 10 = 480 voxels
        labelImage = Image(labels, (0.5, 0.5, 2.0), (10.0, -20.0, 30.0))
        referenceVolume = volume_node_from_image(slicer.mrmlScene, labelImage, "grid")
        segmentationNode = segmentation_node_from_labels(
            slicer.mrmlScene, labelImage, {1: "lung", 2: "not found"}, reference_volume_node=referenceVolume
        )
        # A tumour inside the lung, overlapping it: both must be counted in full.
        tumour = segmentationNode.GetSegmentation().AddEmptySegment("", "tumour")
        tumourMask = np.zeros_like(labels)
        tumourMask[2:4, 2:5, 2:6] = 1  # 2 x 3 x 4 = 24 voxels
        slicer.util.updateSegmentBinaryLabelmapFromArray(tumourMask, segmentationNode, tumour, referenceVolume)

        rows = OncoQIQuantitativeReportingLogic().measureSegments(segmentationNode)

        voxelMl = 0.5 * 0.5 * 2.0 / 1000.0
        self.assertEqual([row.name for row in rows], ["lung", "not found", "tumour"])
        self.assertEqual([row.voxel_count for row in rows], [480, 0, 24])
        self.assertAlmostEqual(rows[0].volume_ml, 480 * voxelMl, places=12)
        self.assertEqual(rows[1].volume_ml, 0.0)
        self.assertAlmostEqual(rows[2].volume_ml, 24 * voxelMl, places=12)
        self.assertEqual(rows[2].segment_id, tumour)
        self.delayDisplay("Test passed")

    def test_OncoQIQuantitativeReportingParameterNode(self) -> None:
        self.delayDisplay("Parameter node keeps the segmentation, reference volume and metadata")
        segmentationNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "findings")
        volumeNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "CT")
        logic = OncoQIQuantitativeReportingLogic()
        parameters = logic.getParameterNode()
        self.assertEqual(parameters.seriesDescription, "Segmentation")
        parameters.segmentation = segmentationNode
        parameters.referenceVolume = volumeNode
        parameters.readerName = "Doe^Jane"
        self.assertEqual(logic.getParameterNode().segmentation.GetID(), segmentationNode.GetID())
        self.assertEqual(logic.getParameterNode().referenceVolume.GetID(), volumeNode.GetID())
        self.assertEqual(logic.getParameterNode().readerName, "Doe^Jane")
        self.delayDisplay("Test passed")
