"""``qt.QUiLoader`` stand-in: a module's ``.ui`` file as a tree of stand-in widgets.

Every ``<widget class="X" name="n">`` becomes an instance of the stand-in named ``X`` (from the ``qt``,
``ctk`` or ``slicer`` stand-ins), parented as in the file; ``<property>`` values are set as Qt
would (a class's own property, else a dynamic one such as ``SlicerParameterName``); a combo box's
``<item>`` entries are added; the ``<connections>`` are made, so ``setMRMLScene`` on the top widget
reaches the node selectors exactly when the file connects them. A class with no stand-in is an
error naming it: the loader never falls back to a base class silently (Qt's loader does, and a
typo in a class name would then pass).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any


class UiLoadError(RuntimeError):
    """The ``.ui`` file names a class, a signal or a slot the stand-ins do not have."""


def _value(prop: ET.Element) -> Any:
    """A ``<property>``'s value as Python."""
    child = next(iter(prop), None)
    if child is None:
        return None
    tag, text = child.tag, (child.text or "")
    if tag in ("string", "cstring", "enum", "set"):
        return text
    if tag == "bool":
        return text.strip().lower() == "true"
    if tag == "number":
        return int(text)
    if tag == "double":
        return float(text)
    if tag == "stringlist":
        return [s.text or "" for s in child.findall("string")]
    return {sub.tag: sub.text for sub in child}  # rect, size, sizepolicy, font...: not used by the code


def widget_class(name: str) -> type:
    """The stand-in class named ``name`` (Qt, CTK or Slicer)."""
    import ctk
    import qt
    import slicer

    for namespace in (qt, slicer):
        cls = getattr(namespace, name, None)
        if isinstance(cls, type):
            return cls
    try:
        return getattr(ctk, name)
    except AttributeError:
        raise UiLoadError(f"no stand-in for widget class {name!r} (add one named as in Qt/CTK/Slicer)") from None


class UiLoader:
    """``loader.load(qfile)`` -> the top widget, as ``qt.QUiLoader`` does."""

    def load(self, qfile: Any, parent: Any = None) -> Any:
        root = ET.parse(qfile.fileName()).getroot()
        named: dict[str, Any] = {}
        top = self._widget(root.find("widget"), parent, named)
        for connection in root.iter("connection"):
            sender = named.get(connection.findtext("sender", ""))
            receiver = named.get(connection.findtext("receiver", ""))
            signal, slot = connection.findtext("signal", ""), connection.findtext("slot", "")
            if sender is None or receiver is None:
                raise UiLoadError(f"connection {signal} -> {slot}: unknown sender or receiver")
            slot_method = getattr(receiver, slot.split("(", 1)[0], None)
            if slot_method is None:
                raise UiLoadError(f"{type(receiver).__name__} has no slot {slot}")
            sender.connect(signal, slot_method)
        return top

    def _widget(self, element: ET.Element, parent: Any, named: dict[str, Any]) -> Any:
        cls = widget_class(element.get("class", ""))
        widget = cls(parent)
        widget.objectName = element.get("name", "")
        named[widget.objectName] = widget
        for child in element:
            if child.tag == "property":
                widget.setProperty(child.get("name"), _value(child))
            elif child.tag == "item" and hasattr(widget, "addItem"):
                prop = child.find("property[@name='text']")
                widget.addItem(_value(prop) if prop is not None else "")
            elif child.tag == "widget":
                self._widget(child, widget, named)
            elif child.tag == "layout":
                self._layout(child, widget, named)
        return widget

    def _layout(self, element: ET.Element, owner: Any, named: dict[str, Any]) -> None:
        for item in element.findall("item"):
            for child in item:
                if child.tag == "widget":
                    self._widget(child, owner, named)
                elif child.tag == "layout":
                    self._layout(child, owner, named)
