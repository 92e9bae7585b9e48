"""Test-only stand-in for PythonQt's ``ctk`` module: the CTK widgets used by the modules' ``.ui``
files and by Slicer's Python layer, named like CTK's so that Slicer's connector choice works on them.
See ``slicer_layer.qt`` for the PythonQt behaviour they share.
"""

from __future__ import annotations

from typing import Any

from slicer_layer.qt import (
    Property,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTextBrowser,
    QWidget,
    RangedValue,
    Signal,
    _clamp_float,
)


class ctkCollapsibleButton(QPushButton):  # noqa: N801 - CTK's class names
    contentsCollapsed = Signal("contentsCollapsed(bool)")
    collapsed = Property(False, "contentsCollapsed")


class ctkCollapsibleGroupBox(QWidget):  # noqa: N801
    collapsed = False
    title = ""


class ctkCheckBox(QCheckBox):  # noqa: N801
    pass


class ctkComboBox(QComboBox):  # noqa: N801
    pass


class ctkCheckablePushButton(QPushButton):  # noqa: N801
    checkBoxToggled = Signal("checkBoxToggled(bool)")
    checkable = True


class ctkMenuButton(QPushButton):  # noqa: N801
    pass


class ctkSearchBox(QLineEdit):  # noqa: N801
    pass


class ctkFittedTextBrowser(QTextBrowser):  # noqa: N801
    pass


class ctkDoubleSpinBox(QDoubleSpinBox):  # noqa: N801
    pass


class ctkSliderWidget(RangedValue):  # noqa: N801
    valueChanged = Signal("valueChanged(double)")
    minimum = 0.0
    maximum = 99.0
    decimals = 2
    singleStep = 1.0
    value = Property(0.0, "valueChanged", convert=_clamp_float)


class ctkDoubleSlider(ctkSliderWidget):  # noqa: N801
    pass


class ctkRangeWidget(QWidget):  # noqa: N801
    valuesChanged = Signal("valuesChanged(double,double)")
    minimum = 0.0
    maximum = 99.0
    minimumValue = 0.0
    maximumValue = 99.0
    decimals = 2
    singleStep = 1.0

    def setValues(self, low: float, high: float) -> None:
        self.minimumValue, self.maximumValue = float(low), float(high)
        self.valuesChanged.emit(self.minimumValue, self.maximumValue)


class ctkDoubleRangeSlider(ctkRangeWidget):  # noqa: N801
    pass


class ctkPathLineEdit(QWidget):  # noqa: N801
    currentPathChanged = Signal("currentPathChanged(QString)")
    validInputChanged = Signal("validInputChanged(bool)")
    currentPath = Property("", "currentPathChanged", convert=lambda widget, value: str(value))
    filters = 0
    Dirs, Files, Drives, NoDot, NoDotDot, Readable, Writable, Executable = 1, 2, 4, 0x2000, 0x4000, 0x10, 0x20, 0x40

    def setCurrentPath(self, path: str) -> None:
        self.currentPath = path


class ctkDirectoryButton(QWidget):  # noqa: N801
    directoryChanged = Signal("directoryChanged(QString)")
    directorySelected = Signal("directorySelected(QString)")
    directory = Property("", "directoryChanged", convert=lambda widget, value: str(value))
    caption = ""
    text = ""

    def setDirectory(self, path: str) -> None:
        self.directory = path


class ctkColorPickerButton(QPushButton):  # noqa: N801
    colorChanged = Signal("colorChanged(QColor)")
    color = Property(None, "colorChanged")


class ctkMessageBox(QMessageBox):  # noqa: N801
    """A modal message box: ``exec_`` records what the user would see (see ``SlicerApplication``)."""

    text = ""
    detailedText = ""
    windowTitle = ""
    icon = 0
    standardButtons = QMessageBox.Ok
    dontShowAgainSettingsKey = ""

    def exec_(self) -> int:
        import slicer

        return slicer.app.showModal(self)


class ctkDICOMIndexer:  # noqa: N801
    """Indexes a folder into the (fake) database, copying the files when asked, as CTK's does."""

    def addDirectory(self, database: Any, folder: str, copyFiles: bool = False) -> None:
        import shutil
        from pathlib import Path

        files = [p for p in Path(folder).rglob("*") if p.is_file()]
        if copyFiles:
            store = (
                Path(database.store_folder)
                if getattr(database, "store_folder", None)
                else Path(folder).parent / "dicom-database"
            )
            store.mkdir(parents=True, exist_ok=True)
            files = [Path(shutil.copy2(p, store / p.name)) for p in files]
        database.add_files(files)

    def waitForImportFinished(self) -> None:
        pass


def __getattr__(name: str) -> Any:
    raise AttributeError(f"stand-in 'ctk' has no {name!r}: add it to Testing/slicer_layer/ctk.py, named as in CTK")
