"""OncoQI's DICOM plugin: PET series in SUVbw and TID 1500 reports as tables, in Slicer's DICOM browser.

Slicer finds plugins through hidden scripted modules: the module class below registers
``DICOMOncoQIPluginClass`` in ``slicer.modules.dicomPlugins`` when Slicer loads the module folder.
The plugin is a thin ``DICOMLib.DICOMPlugin``:

* ``examineForImport`` runs on every DICOM browse, also on a fresh install before any OncoQI
  module has been used: it reads tags through ``slicer.dicomDatabase`` and imports only what Slicer
  bundles (``OncoQISlicer.dicom_examine``), and it never raises;
* ``load`` runs when the user loads a loadable: it makes the core importable first
  (``OncoQISlicer.dependencies.ensure_core``) and builds the node (``OncoQISlicer.dicom``).
"""

import logging

import slicer
from DICOMLib import DICOMLoadable, DICOMPlugin
from slicer.ScriptedLoadableModule import ScriptedLoadableModule


class DICOMOncoQIPluginClass(DICOMPlugin):
    """Offers OncoQI loadables for the series the DICOM browser examines."""

    def __init__(self) -> None:
        super().__init__()
        self.loadType = "OncoQI"
        try:
            from OncoQISlicer.dicom_examine import PRECACHE_TAGS

            self.tags.update(PRECACHE_TAGS)  # the DICOM module asks the database to cache these
        except ImportError as exc:  # a broken install: the plugin offers nothing, Slicer keeps working
            logging.warning("OncoQI DICOM plugin: %s", exc)

    def examineForImport(self, fileLists):
        """One ``DICOMLoadable`` per ``OncoQISlicer.dicom_examine.examine`` result; never raises."""
        try:
            from OncoQISlicer.dicom_examine import examine

            found = examine(fileLists, slicer.dicomDatabase)
        except Exception as exc:  # noqa: BLE001 - the DICOM browser must keep working whatever happens here
            logging.warning("OncoQI DICOM plugin: examine failed: %s", exc)
            return []
        loadables = []
        for item in found:
            loadable = DICOMLoadable()
            loadable.files = item.files
            loadable.name = item.name
            loadable.tooltip = item.tooltip
            loadable.warning = item.warning
            loadable.selected = item.selected
            loadable.confidence = item.confidence
            loadable.oncoqi = item
            loadables.append(loadable)
        return loadables

    def examine(self, fileLists):
        """Slicer < 5.12 falls back to ``examine`` when ``examineForImport`` offers nothing."""
        return self.examineForImport(fileLists)

    def load(self, loadable):
        """Build the node and place it under its patient/study in the subject hierarchy."""
        from OncoQISlicer.dependencies import ensure_core

        ensure_core("DICOMOncoQIPlugin")
        from OncoQISlicer.dicom import load

        node = load(slicer.mrmlScene, loadable.oncoqi)
        self.addSeriesInSubjectHierarchy(loadable, node)
        logging.info("OncoQI: loaded %s", loadable.name)
        return node


class DICOMOncoQIPlugin(ScriptedLoadableModule):
    """Hidden module whose only job is to register the plugin with the DICOM module."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        from OncoQISlicer.moduleinfo import CONTRIBUTORS, help_footer

        self.parent.title = "DICOM OncoQI Plugin"
        self.parent.categories = ["Developer Tools.DICOM Plugins"]
        self.parent.dependencies = ["DICOM"]
        self.parent.contributors = list(CONTRIBUTORS)
        self.parent.helpText = (
            "Loads PET series in SUVbw (factors from the series' own headers) and TID 1500 "
            "measurement reports as tables. Part of the OncoQI extension."
        ) + help_footer("dicom.md")
        self.parent.acknowledgementText = "Follows QIICR's Slicer-PETDICOMExtension plugins."
        self.parent.hidden = True
        try:
            slicer.modules.dicomPlugins  # noqa: B018 - Slicer's DICOM plugin template: create the registry if absent
        except AttributeError:
            slicer.modules.dicomPlugins = {}
        slicer.modules.dicomPlugins["DICOMOncoQIPlugin"] = DICOMOncoQIPluginClass
