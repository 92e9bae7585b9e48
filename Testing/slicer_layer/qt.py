"""Test-only stand-in for PythonQt's ``qt`` module: the Qt classes OncoQI's modules and Slicer's
Python layer touch, with PythonQt's behaviour, not Qt's rendering.

What PythonQt does and these classes copy, because Slicer's own code relies on it:

* Qt properties are Python attributes (``button.enabled = False``, ``box.checked``); setting one
  emits the same change signal Qt would (``checked`` -> ``toggled(bool)`` and ``stateChanged(int)``),
  only when the value changes and signals are not blocked;
* signals connect both ways: ``button.clicked.connect(f)`` and ``button.connect("clicked(bool)", f)``;
  a slot is called with as many of the signal's arguments as it accepts;
* Designer's dynamic properties (``SlicerParameterName``) are read with ``property(name)``;
* an exception raised in a slot does not reach the code that emitted the signal: PythonQt prints
  it and goes on. The stand-ins print it too and keep it in :data:`SLOT_ERRORS` for the test.

A class is named exactly like Qt's, because Slicer's ``parameterNodeWrapper`` chooses a GUI connector
by ``type(widget)``; there is no subclassing trick that would let a wrong pair pass. Nothing is
painted: tests drive the widgets as a user would (set a value, click, fire a timer).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any

# --- signals ----------------------------------------------------------------------------------

#: Exceptions raised by slots since the layer was installed (PythonQt only prints them).
SLOT_ERRORS: list[BaseException] = []


def _accepted_arguments(slot: Callable[..., Any]) -> int | None:
    """How many positional arguments ``slot`` takes (None: any number)."""
    try:
        parameters = inspect.signature(slot).parameters.values()
    except (TypeError, ValueError):
        return None
    count = 0
    for parameter in parameters:
        if parameter.kind is parameter.VAR_POSITIONAL:
            return None
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


class BoundSignal:
    """A signal of one object: ``connect``, ``disconnect``, ``emit``."""

    def __init__(self, owner: QObject, signature: str) -> None:
        self.owner = owner
        self.signature = signature
        self.slots: list[Callable[..., Any]] = []

    def connect(self, slot: Callable[..., Any]) -> None:
        self.slots.append(slot)

    def disconnect(self, slot: Callable[..., Any] | None = None) -> None:
        if slot is None:
            self.slots.clear()
        elif slot in self.slots:
            self.slots.remove(slot)

    def emit(self, *args: Any) -> None:
        if self.owner.signalsBlocked():
            return
        for slot in list(self.slots):
            accepted = _accepted_arguments(slot)
            try:
                slot(*(args if accepted is None else args[:accepted]))
            except Exception as exc:  # noqa: BLE001 - what PythonQt does with an error in a slot
                import traceback

                traceback.print_exc()
                SLOT_ERRORS.append(exc)


class Signal:
    """Class-level declaration of a signal, e.g. ``clicked = Signal("clicked(bool)")``."""

    def __init__(self, signature: str) -> None:
        self.signature = signature
        self.name = signature.split("(", 1)[0]

    def __get__(self, owner: QObject | None, cls: type) -> Any:
        if owner is None:
            return self
        signals = owner.__dict__.setdefault("_signals", {})
        if self.name not in signals:
            signals[self.name] = BoundSignal(owner, self.signature)
        return signals[self.name]


class Property:
    """A Qt property as an attribute that emits ``signals`` with the new value when it changes."""

    def __init__(self, default: Any, *signals: str, convert: Callable[[Any, Any], Any] | None = None) -> None:
        self.default = default
        self.signals = signals
        self.convert = convert

    def __set_name__(self, cls: type, name: str) -> None:
        self.name = name

    def __get__(self, owner: Any, cls: type) -> Any:
        if owner is None:
            return self
        return owner.__dict__.get(f"_p_{self.name}", self.default)

    def __set__(self, owner: Any, value: Any) -> None:
        if self.convert is not None:
            value = self.convert(owner, value)
        old = self.__get__(owner, type(owner))
        owner.__dict__[f"_p_{self.name}"] = value
        if old != value:
            for name in self.signals:
                signal_name, _, emitted = name.partition(":")
                getattr(owner, signal_name).emit(*_emitted_values(value, emitted))


def _emitted_values(value: Any, how: str) -> tuple[Any, ...]:
    if how == "state":  # QCheckBox::stateChanged(int): Qt::Checked is 2
        return (2 if value else 0,)
    return (value,)


# --- objects and widgets ----------------------------------------------------------------------


class QObject:
    """PythonQt's QObject: name, parent/children, dynamic properties, string-signature ``connect``."""

    destroyed = Signal("destroyed()")

    def __init__(self, parent: QObject | None = None, *args: Any) -> None:
        self._parent: QObject | None = None
        self._children: list[QObject] = []
        self._dynamic: dict[str, Any] = {}
        self._blocked = False
        self.objectName = ""
        self.setParent(parent)

    # PythonQt exposes objectName also as ``name`` (slicer.util.childWidgetVariables uses it).
    @property
    def name(self) -> str:
        return self.objectName

    @name.setter
    def name(self, value: str) -> None:
        self.objectName = value

    def setObjectName(self, name: str) -> None:
        self.objectName = name

    def className(self) -> str:
        return type(self).__name__

    def parent(self) -> QObject | None:
        return self._parent

    def setParent(self, parent: QObject | None) -> None:
        if self._parent is not None and self in self._parent._children:
            self._parent._children.remove(self)
        self._parent = parent
        if parent is not None:
            parent._children.append(self)

    def children(self) -> list[QObject]:
        return list(self._children)

    def findChildren(self, cls: type = None, name: str | None = None) -> list[QObject]:  # type: ignore[assignment]
        found = []
        for child in self._children:
            if (cls is None or isinstance(child, cls)) and (not name or child.objectName == name):
                found.append(child)
            found.extend(child.findChildren(cls, name))
        return found

    def property(self, name: str) -> Any:
        if name in self._dynamic:
            return self._dynamic[name]
        return getattr(self, name, None) if isinstance(getattr(type(self), name, None), (Property, property)) else None

    def setProperty(self, name: str, value: Any) -> None:
        if isinstance(getattr(type(self), name, None), (Property, property)) or name in _PLAIN_PROPERTIES:
            setattr(self, name, value)
        else:
            self._dynamic[name] = value

    def dynamicPropertyNames(self) -> list[str]:
        return list(self._dynamic)

    def _signal(self, signature: str) -> BoundSignal:
        name = signature.split("(", 1)[0]
        signal = getattr(self, name, None)
        if not isinstance(signal, BoundSignal):
            raise AttributeError(f"{type(self).__name__} has no signal {signature!r}")
        return signal

    def connect(self, signature: str, slot: Callable[..., Any]) -> bool:
        self._signal(signature).connect(slot)
        return True

    def disconnect(self, signature: str, slot: Callable[..., Any] | None = None) -> bool:
        self._signal(signature).disconnect(slot)
        return True

    def blockSignals(self, block: bool) -> bool:
        old, self._blocked = self._blocked, bool(block)
        return old

    def signalsBlocked(self) -> bool:
        return self._blocked

    def deleteLater(self) -> None:
        self.setParent(None)

    def isWidgetType(self) -> bool:
        return False


#: Qt properties that the stand-ins keep as plain attributes (no change signal).
_PLAIN_PROPERTIES = {
    "objectName",
    "toolTip",
    "statusTip",
    "whatsThis",
    "enabled",
    "visible",
    "wordWrap",
    "placeholderText",
    "geometry",
    "sizePolicy",
    "minimumSize",
    "maximumSize",
    "sizeHint",
    "orientation",
    "textInteractionFlags",
    "editTriggers",
    "selectionBehavior",
    "selectionMode",
    "collapsed",
    "checkable",
    "flat",
    "decimals",
    "singleStep",
    "suffix",
    "prefix",
    "specialValueText",
    "readOnly",
    "title",
    "format",
    "alignment",
}


class QLayout(QObject):
    """A layout: what is added to it becomes a child of the widget it is set on."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(None)
        self._widget: QWidget | None = None
        self._pending: list[QObject] = []
        if isinstance(parent, QWidget):
            parent.setLayout(self)

    def _adopt(self, item: Any) -> None:
        if isinstance(item, QWidget):
            if self._widget is not None:
                item.setParent(self._widget)
            else:
                self._pending.append(item)
        elif isinstance(item, QLayout) and self._widget is not None:
            item._attach(self._widget)
        elif isinstance(item, QLayout):
            self._pending.append(item)

    def _attach(self, widget: QWidget) -> None:
        self._widget = widget
        for item in self._pending:
            self._adopt(item)
        self._pending.clear()

    def addWidget(self, widget: QWidget, *args: Any) -> None:
        self._adopt(widget)

    def addLayout(self, layout: QLayout, *args: Any) -> None:
        self._adopt(layout)

    def addRow(self, *items: Any) -> None:
        for item in items:
            if not isinstance(item, str):
                self._adopt(item)

    def addStretch(self, *args: Any) -> None:
        pass

    def addItem(self, *args: Any) -> None:
        pass

    def setContentsMargins(self, *args: Any) -> None:
        pass

    def setSpacing(self, *args: Any) -> None:
        pass


class QVBoxLayout(QLayout):
    pass


class QHBoxLayout(QLayout):
    pass


class QFormLayout(QLayout):
    pass


class QGridLayout(QLayout):
    pass


class QWidget(QObject):
    """Enabled/visible/tool tip as attributes; a layout whose widgets become children."""

    toolTip = ""
    enabled = True
    visible = True

    def __init__(self, parent: Any = None, *args: Any) -> None:
        super().__init__(parent)
        self._layout: QLayout | None = None

    def isWidgetType(self) -> bool:
        return True

    def layout(self) -> QLayout | None:
        return self._layout

    def setLayout(self, layout: QLayout) -> None:
        self._layout = layout
        layout._attach(self)

    def setEnabled(self, enabled: bool) -> None:
        self.enabled = bool(enabled)

    def isEnabled(self) -> bool:
        return bool(self.enabled)

    def setVisible(self, visible: bool) -> None:
        self.visible = bool(visible)

    def isVisible(self) -> bool:
        return bool(self.visible)

    def show(self) -> None:
        self.visible = True

    def hide(self) -> None:
        self.visible = False

    def setToolTip(self, text: str) -> None:
        self.toolTip = text

    def setSizePolicy(self, *args: Any) -> None:
        pass

    def setMinimumHeight(self, *args: Any) -> None:
        pass

    def setMaximumHeight(self, *args: Any) -> None:
        pass


class QMainWindow(QWidget):
    pass


class QFrame(QWidget):
    pass


class QGroupBox(QWidget):
    title = ""


class QTabWidget(QWidget):
    pass


class QLabel(QFrame):
    text = Property("")

    def __init__(self, text: Any = "", parent: Any = None) -> None:
        if isinstance(text, QObject):
            text, parent = "", text
        super().__init__(parent)
        self.text = str(text)

    def setText(self, text: str) -> None:
        self.text = text


class QAbstractButton(QWidget):
    clicked = Signal("clicked(bool)")
    toggled = Signal("toggled(bool)")
    pressed = Signal("pressed()")
    released = Signal("released()")
    text = Property("")
    checkable = False
    checked = Property(False, "toggled")

    def __init__(self, text: Any = "", parent: Any = None) -> None:
        if isinstance(text, QObject):
            text, parent = "", text
        super().__init__(parent)
        self.text = str(text)

    def click(self) -> None:
        """A user's click: nothing happens on a disabled button (as in Qt)."""
        if not self.enabled:
            return
        if self.checkable:
            self.checked = not self.checked
        self.clicked.emit(bool(self.checked))

    def setChecked(self, checked: bool) -> None:
        self.checked = bool(checked)

    def isChecked(self) -> bool:
        return bool(self.checked)

    def setText(self, text: str) -> None:
        self.text = text


class QPushButton(QAbstractButton):
    pass


class QToolButton(QAbstractButton):
    def setMenu(self, menu: Any) -> None:
        self._menu = menu

    def setDefaultAction(self, action: Any) -> None:
        self._defaultAction = action

    def defaultAction(self) -> Any:
        return getattr(self, "_defaultAction", None)


class QCheckBox(QAbstractButton):
    stateChanged = Signal("stateChanged(int)")
    checkable = True
    checked = Property(False, "toggled", "stateChanged:state")


class QRadioButton(QAbstractButton):
    checkable = True


def _clamp_int(widget: Any, value: Any) -> int:
    return int(min(max(int(value), widget.minimum), widget.maximum))


def _clamp_float(widget: Any, value: Any) -> float:
    value = min(max(float(value), widget.minimum), widget.maximum)
    decimals = getattr(widget, "decimals", None)
    return round(value, int(decimals)) if decimals is not None else value


class RangedValue(QWidget):
    """A value kept within ``minimum``/``maximum`` (Qt clamps it when the range changes): the spin
    boxes here and CTK's sliders. ``number`` is ``int`` or ``float``."""

    number: type = float

    def setRange(self, minimum: float, maximum: float) -> None:
        self.minimum, self.maximum = self.number(minimum), self.number(maximum)
        self.value = self.value

    def setMinimum(self, minimum: float) -> None:
        self.setRange(minimum, max(minimum, self.maximum))

    def setMaximum(self, maximum: float) -> None:
        self.setRange(min(self.minimum, maximum), maximum)

    def setSingleStep(self, step: float) -> None:
        self.singleStep = step

    def setDecimals(self, decimals: int) -> None:
        self.decimals = int(decimals)

    def setValue(self, value: float) -> None:
        self.value = value


class QSpinBox(RangedValue):
    valueChanged = Signal("valueChanged(int)")
    number = int
    minimum = 0
    maximum = 99
    singleStep = 1
    value = Property(0, "valueChanged", convert=_clamp_int)


class QSlider(QSpinBox):
    pass


class QDoubleSpinBox(RangedValue):
    valueChanged = Signal("valueChanged(double)")
    minimum = 0.0
    maximum = 99.99
    decimals = 2
    singleStep = 1.0
    value = Property(0.0, "valueChanged", convert=_clamp_float)


class QProgressBar(QWidget):
    valueChanged = Signal("valueChanged(int)")
    minimum = 0
    maximum = 100
    value = Property(-1, "valueChanged")
    format = "%p%"

    def setRange(self, minimum: int, maximum: int) -> None:
        self.minimum, self.maximum = int(minimum), int(maximum)

    def setValue(self, value: int) -> None:
        self.value = int(value)

    def reset(self) -> None:
        self.value = -1


class QComboBox(QWidget):
    currentIndexChanged = Signal("currentIndexChanged(int)")
    currentTextChanged = Signal("currentTextChanged(QString)")
    activated = Signal("activated(int)")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._items: list[tuple[str, Any]] = []
        self._index = -1

    @property
    def currentIndex(self) -> int:
        return self._index

    @currentIndex.setter
    def currentIndex(self, index: int) -> None:
        index = int(index)
        if not -1 <= index < len(self._items):
            index = -1
        if index != self._index:
            self._index = index
            self.currentIndexChanged.emit(index)
            self.currentTextChanged.emit(self.currentText)

    @property
    def currentText(self) -> str:
        return self._items[self._index][0] if self._index >= 0 else ""

    def count(self) -> int:
        return len(self._items)

    def addItem(self, text: str, data: Any = None) -> None:
        self._items.append((str(text), data))
        if self._index < 0:
            self.currentIndex = 0

    def addItems(self, texts: list[str]) -> None:
        for text in texts:
            self.addItem(text)

    def itemText(self, index: int) -> str:
        return self._items[index][0]

    def itemData(self, index: int) -> Any:
        return self._items[index][1]

    def findText(self, text: str) -> int:
        return next((n for n, (t, _) in enumerate(self._items) if t == text), -1)

    def setCurrentIndex(self, index: int) -> None:
        self.currentIndex = index

    def setCurrentText(self, text: str) -> None:
        self.currentIndex = self.findText(text)

    def clear(self) -> None:
        self._items.clear()
        self.currentIndex = -1


class QLineEdit(QWidget):
    textChanged = Signal("textChanged(QString)")
    editingFinished = Signal("editingFinished()")
    returnPressed = Signal("returnPressed()")
    text = Property("", "textChanged", convert=lambda widget, value: str(value))
    placeholderText = ""

    def setText(self, text: str) -> None:
        self.text = text


class QTextEdit(QFrame):
    textChanged = Signal("textChanged()")
    plainText = Property("", "textChanged", convert=lambda widget, value: str(value))

    def setPlainText(self, text: str) -> None:
        self.plainText = text

    def toPlainText(self) -> str:
        return self.plainText

    def setHtml(self, html: str) -> None:
        self.plainText = html

    def setText(self, text: str) -> None:
        self.plainText = text

    def clear(self) -> None:
        self.plainText = ""


class QPlainTextEdit(QTextEdit):
    pass


class QTextBrowser(QTextEdit):
    openExternalLinks = False


class QTableWidgetItem:
    """A cell (not a QObject in Qt either)."""

    def __init__(self, text: str = "") -> None:
        self._text = str(text)
        self._flags = Qt.ItemIsSelectable | Qt.ItemIsEnabled | Qt.ItemIsEditable

    def text(self) -> str:
        return self._text

    def setText(self, text: str) -> None:
        self._text = str(text)

    def flags(self) -> int:
        return self._flags

    def setFlags(self, flags: int) -> None:
        self._flags = flags


class _ModelIndex:
    def __init__(self, row: int) -> None:
        self._row = row

    def row(self) -> int:
        return self._row


class _SelectionModel:
    def __init__(self, table: QTableWidget) -> None:
        self._table = table

    def selectedRows(self) -> list[_ModelIndex]:
        return [_ModelIndex(r) for r in sorted(self._table._selected)]


class QTableWidget(QFrame):
    itemSelectionChanged = Signal("itemSelectionChanged()")
    cellClicked = Signal("cellClicked(int,int)")
    cellDoubleClicked = Signal("cellDoubleClicked(int,int)")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows = 0
        self._columns = 0
        self._items: dict[tuple[int, int], QTableWidgetItem] = {}
        self._headers: list[str] = []
        self._selected: set[int] = set()

    def rowCount(self) -> int:
        return self._rows

    def columnCount(self) -> int:
        return self._columns

    def setRowCount(self, rows: int) -> None:
        self._rows = int(rows)
        self._items = {k: v for k, v in self._items.items() if k[0] < self._rows}
        self._select({r for r in self._selected if r < self._rows})

    def setColumnCount(self, columns: int) -> None:
        self._columns = int(columns)

    def setHorizontalHeaderLabels(self, labels: list[str]) -> None:
        self._headers = list(labels)

    def horizontalHeaderLabels(self) -> list[str]:
        return list(self._headers)

    def setItem(self, row: int, column: int, item: QTableWidgetItem) -> None:
        if not (0 <= row < self._rows and 0 <= column < self._columns):
            raise IndexError(f"cell ({row}, {column}) outside a {self._rows} x {self._columns} table")
        self._items[(row, column)] = item

    def item(self, row: int, column: int) -> QTableWidgetItem | None:
        return self._items.get((row, column))

    def clear(self) -> None:
        self._items.clear()
        self._headers = []
        self._select(set())

    def clearContents(self) -> None:
        self._items.clear()

    def resizeColumnsToContents(self) -> None:
        pass

    def selectionModel(self) -> _SelectionModel:
        return _SelectionModel(self)

    def _select(self, rows: set[int]) -> None:
        if rows != self._selected:
            self._selected = rows
            self.itemSelectionChanged.emit()

    def selectRow(self, row: int) -> None:
        """A user's click on a row (single selection)."""
        self._select({int(row)})

    def clearSelection(self) -> None:
        self._select(set())

    def selectAll(self) -> None:
        self._select(set(range(self._rows)))


class QMenu(QWidget):
    def addAction(self, action: Any) -> None:
        pass


class QAction(QObject):
    triggered = Signal("triggered(bool)")

    def __init__(self, text: str = "", parent: Any = None) -> None:
        super().__init__(parent if isinstance(parent, QObject) else None)
        self.text = text

    def setStatusTip(self, tip: str) -> None:
        self.statusTip = tip


class QTimer(QObject):
    """A timer that never fires by itself: tests call :meth:`fire` (what the event loop would do)."""

    timeout = Signal("timeout()")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.interval = 0
        self.singleShot_ = False
        self._active = False

    def setInterval(self, msec: int) -> None:
        self.interval = int(msec)

    def setSingleShot(self, single: bool) -> None:
        self.singleShot_ = bool(single)

    def isSingleShot(self) -> bool:
        return self.singleShot_

    def start(self, msec: int | None = None) -> None:
        if msec is not None:
            self.interval = int(msec)
        self._active = True

    def stop(self) -> None:
        self._active = False

    def isActive(self) -> bool:
        return self._active

    def fire(self) -> None:
        """One timeout, as the event loop would deliver it to an active timer."""
        if self._active:
            if self.singleShot_:
                self._active = False
            self.timeout.emit()

    @staticmethod
    def singleShot(msec: int, callback: Callable[[], Any]) -> None:
        callback()


class QSizePolicy:
    Fixed, Minimum, Maximum, Preferred, Expanding, MinimumExpanding, Ignored = 0, 1, 4, 5, 7, 3, 13

    def __init__(self, *args: Any) -> None:
        pass


class QIcon:
    def __init__(self, path: str = "") -> None:
        self.path = path


class QColor:
    def __init__(self, *args: Any) -> None:
        self.args = args


class QUrl:
    TolerantMode = 0

    def __init__(self, url: str = "", mode: int = 0) -> None:
        self.url = url

    @staticmethod
    def fromLocalFile(path: str) -> QUrl:
        return QUrl("file://" + str(path))

    def toString(self) -> str:
        return self.url


class QDesktopServices:
    opened: list[str] = []

    @staticmethod
    def openUrl(url: QUrl) -> bool:
        QDesktopServices.opened.append(url.toString())
        return True


class QSettings:
    """Settings shared by every instance of one test session (``QSettings.store``), empty at start."""

    store: dict[str, Any] = {}

    def __init__(self, *args: Any) -> None:
        pass

    def value(self, key: str, default: Any = None) -> Any:
        return QSettings.store.get(key, default)

    def setValue(self, key: str, value: Any) -> None:
        QSettings.store[key] = value

    def contains(self, key: str) -> bool:
        return key in QSettings.store

    def remove(self, key: str) -> None:
        QSettings.store.pop(key, None)


class QFile:
    ReadOnly = 1

    def __init__(self, path: str) -> None:
        self.path = str(path)

    def exists(self) -> bool:
        return os.path.isfile(self.path)

    def open(self, mode: int) -> bool:
        return self.exists()

    def close(self) -> None:
        pass

    def fileName(self) -> str:
        return self.path


class QDir:
    def __init__(self, path: Any = "") -> None:
        self.path = str(path.path if isinstance(path, QDir) else path)

    def mkpath(self, path: str) -> bool:
        os.makedirs(path, exist_ok=True)
        return True

    def absolutePath(self) -> str:
        return os.path.abspath(self.path)


class QFileInfo:
    def __init__(self, directory: Any, name: str = "") -> None:
        self.path = os.path.join(QDir(directory).path, name) if name else str(directory)

    def absoluteFilePath(self) -> str:
        return os.path.abspath(self.path)


class QDateTime:
    @staticmethod
    def currentDateTime() -> Any:
        import datetime

        return datetime.datetime.now()


class QLocale:
    English, UnitedStates = 31, 225

    def __init__(self, *args: Any) -> None:
        pass

    def toString(self, when: Any, pattern: str) -> str:
        return when.strftime("%Y-%m-%d_%H+%M+%S.%f")[:-3]


class QMessageBox(QWidget):
    Ok, Cancel, Yes, No, Abort, Retry, Ignore = 0x400, 0x400000, 0x4000, 0x10000, 0x40000, 0x80000, 0x100000
    NoIcon, Information, Warning, Critical, Question = 0, 1, 2, 3, 4


class QCursor:
    def __init__(self, *args: Any) -> None:
        pass


class Qt:
    """The ``qt.Qt`` namespace (enum values as in Qt 5)."""

    WaitCursor = 3
    ArrowCursor = 0
    ShiftModifier = 0x02000000
    NoModifier = 0
    ItemIsSelectable, ItemIsEditable, ItemIsEnabled = 1, 2, 32
    AlignLeft, AlignRight, AlignHCenter, AlignCenter = 1, 2, 4, 0x84
    Horizontal, Vertical = 1, 2
    UserRole, DisplayRole = 256, 0
    Checked, Unchecked = 2, 0


def QUiLoader() -> Any:  # noqa: N802 - Qt's class name
    """``qt.QUiLoader()``: builds stand-in widgets from a ``.ui`` file (see ``slicer_layer.ui``)."""
    from slicer_layer.ui import UiLoader

    return UiLoader()


__all__ = [name for name in dir() if name.startswith("Q") or name == "Qt"]
