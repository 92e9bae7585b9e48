"""OncoQIPETIndiC: quantitative PET indices of segmented lesions (OncoQI).

Select a PET volume and a segmentation: the module computes the PET-IndiC indices
(``oncoqi.pet.indices``: SUVmean/max/peak, MTV, TLG, SAM, quartiles, glycolysis...) of every
segment on the SUVbw image into a table node, recomputing shortly after each edit of the
segmentation. It also segments lesions by SUV thresholds (fixed, percentage of the local SUVmax,
background-adapted) from a seed point, offers PET display presets, and exports the indices as
DICOM SEG + TID 1500 SR through OncoQIQuantitativeReporting's writer. "Measure lung lesions on PET"
measures OncoQILungTumorSegmentation's lesions on the PET of the same study and lets FDG avidity
choose GTV-1 (``OncoQIPETIndiCLib.lunglesions``, as ``oncoqi batch``). Everything but the Widget lives in
``OncoQIPETIndiCLib`` (Qt-free), so it also runs under pytest on ``slicer-core``.
"""

import logging
import pathlib
from typing import Annotated

import qt
import slicer
import vtk
from slicer import (
    vtkMRMLMarkupsFiducialNode,
    vtkMRMLScalarVolumeNode,
    vtkMRMLSegmentationNode,
    vtkMRMLTableNode,
)
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

#: Delay between the last segmentation edit and the recomputation of the table (ms).
RECOMPUTE_DELAY_MS = 700


def _ensureCore() -> None:
    """Install ``oncoqi`` on first use (Slicer forbids installing at import), then it can be imported."""
    from OncoQISlicer.dependencies import ensure_core

    ensure_core("OncoQIPETIndiC")


class OncoQIPETIndiC(ScriptedLoadableModule):
    """Module metadata shown in Slicer's module list and help panel."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        from OncoQISlicer.moduleinfo import CONTRIBUTORS, connect_sample_data, help_footer

        self.parent.title = _("PET-IndiC (OncoQI)")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "OncoQI")]
        self.parent.dependencies = []
        self.parent.contributors = list(CONTRIBUTORS)
        self.parent.helpText = _(
            "Computes the PET-IndiC indices (SUVmean, SUVmax, SUVpeak, MTV, TLG, SAM, quartiles, "
            "glycolysis per intensity quarter) of every segment of a segmentation on a PET volume, "
            "in SUVbw: a PET loaded in SUVbw is used as it is; otherwise the SUV factor comes from "
            "the PET's DICOM headers, else from the volume attribute 'OncoQI.SUVbwFactor'; otherwise "
            "the values are taken as SUV and every row says so. Segments drawn on another grid (e.g. the CT) are "
            "transferred onto the PET grid keeping their volume. The table recomputes shortly after "
            "each edit. 'Measure lung lesions on PET' takes a lung tumour segmentation and the CT it was "
            "made on: each lesion's indices on the PET, and the PET as evidence for GTV-1 (a lesion with "
            "SUVmax under 2.5 is doubted as not FDG-avid, and GTV-1 becomes the largest undoubted lesion: "
            "the segments are renamed and the panel says why), plus GTV-1 thresholded on the PET. "
            "'Segment' thresholds the SUV around a seed point (fixed SUV, percentage of "
            "the local SUVmax, or background-adapted); 'Export' writes a DICOM SEG and SR."
        ) + help_footer("petindic.md")
        self.parent.acknowledgementText = _("Part of the OncoQI extension. The index set follows QIICR's PET-IndiC.")
        connect_sample_data(__file__)


@parameterNodeWrapper
class OncoQIPETIndiCParameterNode:
    """Module state, saved with the scene.

    inputVolume
        The PET volume (Bq/ml from DICOM, or SUV).
    segmentation
        The lesions.
    seedPoint
        Markups whose first control point seeds the threshold segmentation.
    method, thresholdValue
        Threshold method (fixed, percent, background) and its SUV or percentage.
    autoUpdate
        Recompute the table after each edit of the segmentation.
    exportFolder
        Where Export writes seg.dcm and sr.dcm.
    indicesTable
        The output table (created on first use).
    ctVolume
        The CT the lung tumour segmentation was made on (Measure lung lesions on PET).
    petLesions
        Output of Measure lung lesions on PET: GTV-1 thresholded on the PET (created on first use).
    """

    inputVolume: vtkMRMLScalarVolumeNode
    segmentation: vtkMRMLSegmentationNode
    seedPoint: vtkMRMLMarkupsFiducialNode
    method: Annotated[str, Choice(["fixed", "percent", "background"])] = "percent"
    thresholdValue: float = 41.0
    autoUpdate: bool = True
    exportFolder: pathlib.Path
    indicesTable: vtkMRMLTableNode
    ctVolume: vtkMRMLScalarVolumeNode
    petLesions: vtkMRMLSegmentationNode


class OncoQIPETIndiCWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Wires the ``.ui`` to the Logic; holds no computation of its own."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._observedSegmentation = None
        self._recomputeTimer = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/OncoQIPETIndiC.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = OncoQIPETIndiCLogic()
        self._recomputeTimer = qt.QTimer()
        self._recomputeTimer.setSingleShot(True)
        self._recomputeTimer.setInterval(RECOMPUTE_DELAY_MS)
        self._recomputeTimer.connect("timeout()", self._recomputeAfterEdit)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.lungLesionsButton.connect("clicked(bool)", self.onLungLesionsButton)
        self.ui.segmentButton.connect("clicked(bool)", self.onSegmentButton)
        self.ui.exportButton.connect("clicked(bool)", self.onExportButton)
        self.ui.fdgPresetButton.connect("clicked(bool)", lambda checked=False: self.onPresetButton("fdg"))
        self.ui.rainbowPresetButton.connect("clicked(bool)", lambda checked=False: self.onPresetButton("rainbow"))

        self.initializeParameterNode()

    def cleanup(self) -> None:
        self._recomputeTimer.stop()
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
        """Enable the buttons, show the table, and observe the selected segmentation for edits."""
        p = self._parameterNode
        ready = bool(p and p.inputVolume and p.segmentation)
        self.ui.applyButton.enabled = ready
        self.ui.lungLesionsButton.enabled = ready and bool(p.ctVolume)
        self.ui.segmentButton.enabled = ready and bool(p.seedPoint)
        self.ui.exportButton.enabled = ready
        self.ui.fdgPresetButton.enabled = self.ui.rainbowPresetButton.enabled = bool(p and p.inputVolume)
        self.ui.indicesTableView.setMRMLTableNode(p.indicesTable if p else None)
        segmentation = p.segmentation if p else None
        if segmentation is not self._observedSegmentation:
            edits = (vtk.vtkCommand.ModifiedEvent, slicer.vtkSegmentation.SegmentModified)
            if self._observedSegmentation is not None:
                for edit in edits:
                    self.removeObserver(self._observedSegmentation, edit, self._onSegmentationEdited)
            self._observedSegmentation = segmentation
            if segmentation is not None:
                for edit in edits:
                    self.addObserver(segmentation, edit, self._onSegmentationEdited)

    def _onSegmentationEdited(self, caller=None, event=None) -> None:
        """(Re)start the single-shot timer: a stroke of edits gives one recomputation."""
        if self._parameterNode and self._parameterNode.autoUpdate and self._parameterNode.indicesTable:
            self._recomputeTimer.start()

    def _recomputeAfterEdit(self) -> None:
        p = self._parameterNode
        if p and p.inputVolume and p.segmentation:
            with slicer.util.tryWithErrorDisplay(_("Failed to recompute the indices."), waitCursor=True):
                p.indicesTable = self.logic.computeIndices(p.inputVolume, p.segmentation, p.indicesTable)

    def onApplyButton(self) -> None:
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Failed to compute the indices."), waitCursor=True):
            p.indicesTable = self.logic.computeIndices(p.inputVolume, p.segmentation, p.indicesTable)

    def onLungLesionsButton(self) -> None:
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Failed to measure the lung lesions on the PET."), waitCursor=True):
            written = self.logic.measureLungLesionsOnPET(
                p.inputVolume, p.segmentation, p.ctVolume, p.indicesTable, p.petLesions, (p.method, p.thresholdValue)
            )
            p.indicesTable, p.petLesions = written.table, written.petSegmentation
            self.ui.statusLabel.text = written.status
        # renaming the segments is an edit: the table just made must not be replaced by the plain indices
        self._recomputeTimer.stop()

    def onSegmentButton(self) -> None:
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Failed to segment the lesion."), waitCursor=True):
            self.logic.thresholdSegmentAtSeedPoint(
                p.inputVolume, p.segmentation, p.method, p.thresholdValue, p.seedPoint
            )

    def onPresetButton(self, preset: str) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to apply the display preset."), waitCursor=True):
            self.logic.applyDisplayPreset(self._parameterNode.inputVolume, preset)

    def onExportButton(self) -> None:
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Failed to export the report."), waitCursor=True):
            written = self.logic.exportReport(p.inputVolume, p.segmentation, p.exportFolder)
            slicer.util.infoDisplay(_("Wrote {seg} and {sr}").format(seg=written.seg_path, sr=written.sr_path))


class OncoQIPETIndiCLogic(ScriptedLoadableModuleLogic):
    """Converts MRML nodes for the ``oncoqi`` core and runs it; usable without the GUI."""

    def getParameterNode(self):
        return OncoQIPETIndiCParameterNode(super().getParameterNode())

    def computeIndices(self, inputVolume, segmentation, tableNode=None, dicomHeaders=None):
        """PET-IndiC indices of every segment (or label of a label map) into a table node.

        Parameters
        ----------
        inputVolume
            The PET; SUV normalisation as ``OncoQIPETIndiCLib.suv.suv_image_from_node``.
        segmentation
            A ``vtkMRMLSegmentationNode`` (any grid) or a ``vtkMRMLLabelMapVolumeNode`` on the PET grid.
        tableNode
            The table to fill (one row per non-empty segment, columns
            ``OncoQIPETIndiCLib.indices.TABLE_COLUMNS``); a new one is added when None.
        dicomHeaders
            The PET's DICOM headers, when Slicer's DICOM database does not know the volume.

        Returns
        -------
        vtkMRMLTableNode
            The filled table (``OncoQIPETIndiCLib.indices`` gives the same rows as Python objects).
        """
        if not inputVolume or not segmentation:
            raise ValueError("PET volume or segmentation is invalid")
        _ensureCore()
        from OncoQIPETIndiCLib.indices import (
            label_map_indices_from_nodes,
            segmentation_indices_from_nodes,
            write_indices_table,
        )

        if segmentation.IsA("vtkMRMLLabelMapVolumeNode"):
            _, rows = label_map_indices_from_nodes(inputVolume, segmentation, dicomHeaders)
        else:
            _, rows = segmentation_indices_from_nodes(inputVolume, segmentation, dicomHeaders)
        if tableNode is None:
            tableNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLTableNode", f"{segmentation.GetName()} PET indices")
        write_indices_table(tableNode, rows)
        logging.info("OncoQIPETIndiC: indices of %d segments of '%s'", len(rows), segmentation.GetName())
        return tableNode

    def measureLungLesionsOnPET(
        self,
        inputVolume,
        segmentation,
        ctVolume,
        tableNode=None,
        petSegmentation=None,
        threshold=("background", 50.0),
        dicomHeaders=None,
    ):
        """Measure a lung tumour segmentation on the PET and let the PET's evidence choose GTV-1.

        See ``OncoQIPETIndiCLib.lunglesions``: the lesion segments are measured on ``ctVolume``,
        numbered by evidence with their SUVmax on ``inputVolume`` (the segments are renamed when
        that changes GTV-1 or the numbering), each lesion's indices and doubts fill ``tableNode``
        (a new table when None), and GTV-1 thresholded on the PET (``threshold``: method and value)
        becomes a segment of ``petSegmentation`` (a new segmentation when None).

        Returns
        -------
        OncoQIPETIndiCLib.lunglesions.WrittenLungLesions
            ``table``, ``petSegmentation`` and ``status`` (what changed and why, for the panel).
        """
        if not inputVolume or not segmentation or not ctVolume:
            raise ValueError("PET volume, segmentation or CT volume is invalid")
        _ensureCore()
        from OncoQIPETIndiCLib.lunglesions import (
            WrittenLungLesions,
            measure_lung_lesions_on_pet,
            write_lung_lesions_on_pet,
        )

        result = measure_lung_lesions_on_pet(segmentation, ctVolume, inputVolume, threshold, dicomHeaders)
        if tableNode is None:
            name = f"{segmentation.GetName()} lesions on PET"
            tableNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLTableNode", name)
        petSegmentation = write_lung_lesions_on_pet(result, segmentation, inputVolume, tableNode, petSegmentation)
        status = result.status(inputVolume.GetName())
        logging.info("OncoQIPETIndiC: %s", status.replace("\n", " "))
        return WrittenLungLesions(tableNode, petSegmentation, status)

    def thresholdSegment(
        self, inputVolume, segmentation, method, value, seedRas=None, regionSegmentId=None, background=None
    ):
        """Add a threshold segmentation of a lesion as a new segment; returns its segment ID.

        See ``OncoQIPETIndiCLib.segment.threshold_segment_from_nodes`` (methods fixed/percent/background,
        a seed point in RAS and/or a region segment).
        """
        _ensureCore()
        from OncoQIPETIndiCLib.segment import threshold_segment_from_nodes

        segmentId, result = threshold_segment_from_nodes(
            inputVolume,
            segmentation,
            method,
            value,
            seed_ras=seedRas,
            region_segment_id=regionSegmentId,
            background=background,
        )
        for warning in result.warnings:
            logging.warning("OncoQIPETIndiC: %s", warning)
        return segmentId

    def thresholdSegmentAtSeedPoint(self, inputVolume, segmentation, method, value, seedPoint):
        """:meth:`thresholdSegment` seeded at the first control point of the markups ``seedPoint`` (world RAS).

        Raises ``ValueError`` when the markups has no control point.
        """
        if seedPoint.GetNumberOfControlPoints() == 0:
            raise ValueError(_("Place a seed point on the lesion first."))
        seed = [0.0, 0.0, 0.0]
        seedPoint.GetNthControlPointPositionWorld(0, seed)
        return self.thresholdSegment(inputVolume, segmentation, method, value, seedRas=seed)

    def applyDisplayPreset(self, inputVolume, preset):
        """Show the PET with a preset of ``OncoQIPETIndiCLib.display.DISPLAY_PRESETS`` (in SUV)."""
        _ensureCore()
        from OncoQIPETIndiCLib.display import apply_display_preset
        from OncoQIPETIndiCLib.suv import suv_scale_of_node

        factor, _, _ = suv_scale_of_node(inputVolume)
        return apply_display_preset(inputVolume, preset, factor)

    def exportReport(self, inputVolume, segmentation, outputFolder, petDicom=None):
        """Write seg.dcm and sr.dcm with the indices (``OncoQIPETIndiCLib.export.export_indices_report``)."""
        _ensureCore()
        from OncoQIPETIndiCLib.export import export_indices_report

        return export_indices_report(inputVolume, segmentation, outputFolder, petDicom)


class OncoQIPETIndiCTest(ScriptedLoadableModuleTest):
    """Runs the Logic on a synthetic PET/CT made by the core's phantom: known answers, no download."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_OncoQIPETIndiCLogic()
        self.setUp()
        self.test_OncoQIPETIndiCLungLesionsOnPET()
        self.setUp()
        self.test_OncoQIPETIndiCParameterNode()

    def test_OncoQIPETIndiCLogic(self) -> None:
        self.delayDisplay("Indices, threshold segmentation and display of a phantom PET")
        _ensureCore()
        import numpy as np
        from OncoQISlicer.mrml import (
            segmentation_node_from_labels,
            volume_node_from_image,
        )

        from oncoqi.errors import GeometryError
        from oncoqi.image import Image
        from oncoqi.pet.segment import transfer_labels
        from oncoqi.phantom import PhantomOptions, TumourSpec, make_petct
        from OncoQIPETIndiCLib.suv import SUV_FACTOR_ATTRIBUTE

        suvTruth = 8.0
        study = make_petct(
            PhantomOptions(
                seed=3,
                size=128,
                slices=60,
                noise_hu=0.0,
                blur_mm=0.0,
                pet_blur_mm=0.0,
                pet_noise=0.0,
                tumours=(TumourSpec(volume_ml=25.0, shape="round", location="parenchyma", suv=suvTruth),),
            )
        )
        factor = study.truth["pet"]["suvbw_factor"]
        petNode = volume_node_from_image(slicer.mrmlScene, study.pet, "PET")  # Bq/ml, as loaded from DICOM
        petNode.SetAttribute(SUV_FACTOR_ATTRIBUTE, repr(factor))
        segmentation = segmentation_node_from_labels(slicer.mrmlScene, study.tumour_label, {1: "tumour"})
        logic = OncoQIPETIndiCLogic()

        table = logic.computeIndices(petNode, segmentation)
        self.assertEqual(table.GetNumberOfRows(), 1)
        column = table.GetTable().GetColumnByName
        self.assertAlmostEqual(column("suv_max").GetValue(0) / suvTruth, 1.0, delta=0.01)
        self.assertAlmostEqual(column("suv_peak").GetValue(0) / suvTruth, 1.0, delta=0.01)
        tumourMl = study.truth["tumours"][0]["volume_ml"]
        self.assertLess(abs(column("mtv_ml").GetValue(0) - tumourMl), 0.1 * tumourMl)

        centreRas = np.array(study.truth["tumours"][0]["centre_lps_mm"]) * [-1, -1, 1]
        segmentId = logic.thresholdSegment(petNode, segmentation, "percent", 50, seedRas=centreRas)
        self.assertEqual(segmentation.GetSegmentation().GetNumberOfSegments(), 2)
        logic.computeIndices(petNode, segmentation, table)
        self.assertEqual(table.GetNumberOfRows(), 2)
        self.assertEqual(table.GetCellText(1, 1), segmentId)

        display = logic.applyDisplayPreset(petNode, "fdg")
        self.assertEqual(display.GetColorNodeID(), "vtkMRMLColorTableNodeInvertedGrey")
        self.assertAlmostEqual(display.GetWindow() * factor, 6.0, places=9)
        self.assertAlmostEqual(display.GetLevel() * factor, 3.0, places=9)

        # A label map on the PET grid works too; one on another grid is refused, not misread.
        onPet = transfer_labels(study.tumour_label, study.pet, "fraction")
        labelNode = volume_node_from_image(slicer.mrmlScene, onPet, "lesions", labelmap=True)
        labelTable = logic.computeIndices(petNode, labelNode)
        self.assertEqual(labelTable.GetTable().GetColumnByName("suv_max").GetValue(0), column("suv_max").GetValue(0))
        shifted = Image(onPet.array, onPet.spacing, (0.0, 0.0, 0.0), onPet.direction)
        shiftedNode = volume_node_from_image(slicer.mrmlScene, shifted, "shifted", labelmap=True)
        with self.assertRaises(GeometryError):
            logic.computeIndices(petNode, shiftedNode)
        self.delayDisplay("Test passed")

    def test_OncoQIPETIndiCLungLesionsOnPET(self) -> None:
        self.delayDisplay("The PET's evidence makes the FDG-avid lesion GTV-1, not the larger one")
        _ensureCore()
        from OncoQISlicer.mrml import segmentation_node_from_labels, volume_node_from_image

        from oncoqi.phantom import PhantomOptions, TumourSpec, make_petct
        from OncoQIPETIndiCLib.suv import SUV_FACTOR_ATTRIBUTE

        lowSuv, avidSuv = 1.6, 8.0
        study = make_petct(
            PhantomOptions(
                seed=3,
                size=128,
                slices=60,
                noise_hu=0.0,
                blur_mm=0.0,
                pet_blur_mm=6.0,
                pet_noise=0.0,
                tumours=(
                    TumourSpec(volume_ml=30.0, shape="round", location="parenchyma", suv=lowSuv),
                    TumourSpec(volume_ml=12.0, shape="round", location="parenchyma", suv=avidSuv),
                ),
            )
        )
        ctNode = volume_node_from_image(slicer.mrmlScene, study.ct, "CT")
        petNode = volume_node_from_image(slicer.mrmlScene, study.pet, "PET")
        petNode.SetAttribute(SUV_FACTOR_ATTRIBUTE, repr(study.truth["pet"]["suvbw_factor"]))
        # by size, as the CT alone numbers them: the 30 ml mass of SUV 1.6 is GTV-1
        lesions = segmentation_node_from_labels(
            slicer.mrmlScene, study.tumour_label, {1: "GTV-1", 2: "Lesion 2"}, reference_volume_node=ctNode
        )
        largeId, avidId = lesions.GetSegmentation().GetSegmentIDs()

        written = OncoQIPETIndiCLogic().measureLungLesionsOnPET(petNode, lesions, ctNode, threshold=("percent", 41.0))
        segmentation = lesions.GetSegmentation()
        self.assertEqual(segmentation.GetNthSegmentID(0), avidId)
        self.assertEqual(segmentation.GetSegment(avidId).GetName(), "GTV-1")
        self.assertEqual(segmentation.GetSegment(largeId).GetName(), "Lesion 2")
        self.assertIn("the former GTV-1 (30.0 ml) is not FDG-avid (SUVmax 1.6)", written.status)
        table = written.table
        self.assertEqual(table.GetNumberOfRows(), 3)  # two lesions and GTV-1 thresholded on the PET
        column = table.GetTable().GetColumnByName
        self.assertEqual([column("doubts").GetValue(r) for r in range(2)], ["", "not FDG-avid (SUVmax 1.6)"])
        self.assertAlmostEqual(column("suv_max").GetValue(0) / avidSuv, 1.0, delta=0.01)
        self.assertAlmostEqual(column("suv_max").GetValue(1) / lowSuv, 1.0, delta=0.01)
        self.assertEqual(written.petSegmentation.GetSegmentation().GetNumberOfSegments(), 1)
        self.delayDisplay("Test passed")

    def test_OncoQIPETIndiCParameterNode(self) -> None:
        self.delayDisplay("Parameter node keeps the PET, the segmentation and the threshold settings")
        petNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "PET")
        segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "lesions")
        logic = OncoQIPETIndiCLogic()
        parameterNode = logic.getParameterNode()
        self.assertEqual((parameterNode.method, parameterNode.thresholdValue), ("percent", 41.0))
        parameterNode.inputVolume = petNode
        parameterNode.segmentation = segmentation
        parameterNode.method = "background"
        parameterNode.thresholdValue = 50.0
        fresh = logic.getParameterNode()
        self.assertEqual(fresh.inputVolume.GetID(), petNode.GetID())
        self.assertEqual(fresh.segmentation.GetID(), segmentation.GetID())
        self.assertEqual((fresh.method, fresh.thresholdValue), ("background", 50.0))
        self.delayDisplay("Test passed")
