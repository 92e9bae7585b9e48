"""Test-only stand-ins for Slicer's qMRML widgets (exposed as ``slicer.qMRML*`` as in Slicer).

They hold real MRML nodes of the real scene (``slicer-core``): a node selector offers only nodes of
its scene whose class is one of its ``nodeTypes``, as Slicer's does; a table view shows a real table
node. Names are Slicer's, so ``parameterNodeWrapper`` chooses its connectors on them as in Slicer.
"""

from __future__ import annotations

from typing import Any

from slicer_layer.ctk import ctkDoubleSpinBox, ctkRangeWidget, ctkSliderWidget
from slicer_layer.qt import QFrame, QWidget, Signal


class qMRMLWidget(QWidget):  # noqa: N801 - Slicer's class names
    """A widget with a scene; ``setMRMLScene`` emits ``mrmlSceneChanged`` (what ``.ui`` files connect)."""

    mrmlSceneChanged = Signal("mrmlSceneChanged(vtkMRMLScene*)")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._scene: Any = None

    def setMRMLScene(self, scene: Any) -> None:
        self._scene = scene
        self.mrmlSceneChanged.emit(scene)

    def mrmlScene(self) -> Any:
        return self._scene


class qSlicerWidget(qMRMLWidget):  # noqa: N801
    pass


class qSlicerScriptedLoadableModuleWidget(qSlicerWidget):  # noqa: N801
    """The panel Slicer gives a scripted module's Widget as ``parent`` (``isEntered`` and a layout)."""

    isEntered = False


class qMRMLNodeComboBox(qMRMLWidget):  # noqa: N801
    """Node selector: ``setCurrentNode`` selects a node only if the scene and ``nodeTypes`` allow it."""

    currentNodeChanged = Signal("currentNodeChanged(vtkMRMLNode*)")
    currentNodeIDChanged = Signal("currentNodeIDChanged(QString)")
    nodeAdded = Signal("nodeAdded(vtkMRMLNode*)")
    nodeTypes: tuple[str, ...] = ()
    noneEnabled = False
    addEnabled = True
    removeEnabled = True
    renameEnabled = False
    editEnabled = False
    showChildNodeTypes = True
    noneDisplay = "None"
    baseName = ""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._current: Any = None

    def _selectable(self, node: Any) -> bool:
        if node is None or self._scene is None or node.GetScene() is not self._scene:
            return False
        types = list(self.nodeTypes)
        if self.showChildNodeTypes:
            return any(node.IsA(t) for t in types)
        return node.GetClassName() in types

    def nodes(self) -> list[Any]:
        """What the drop-down offers."""
        if self._scene is None:
            return []
        collection = self._scene.GetNodes()
        found = [collection.GetItemAsObject(i) for i in range(collection.GetNumberOfItems())]
        return [n for n in found if self._selectable(n) and not n.GetHideFromEditors()]

    def setMRMLScene(self, scene: Any) -> None:
        super().setMRMLScene(scene)
        if not self._selectable(self._current):
            self.setCurrentNode(None)
        if self._current is None and not self.noneEnabled and self.nodes():
            self.setCurrentNode(self.nodes()[0])

    def currentNode(self) -> Any:
        return self._current

    def currentNodeID(self) -> str:
        return self._current.GetID() if self._current is not None else ""

    def setCurrentNode(self, node: Any) -> None:
        node = node if self._selectable(node) else None
        if node is not self._current:
            self._current = node
            self.currentNodeChanged.emit(node)
            self.currentNodeIDChanged.emit(self.currentNodeID())

    def setCurrentNodeID(self, node_id: str) -> None:
        self.setCurrentNode(self._scene.GetNodeByID(node_id) if self._scene is not None and node_id else None)

    def addNode(self) -> Any:
        """The 'Create new ...' entry: a new node of the first type, selected."""
        if self._scene is None or not self.nodeTypes:
            return None
        node = self._scene.AddNewNodeByClass(self.nodeTypes[0], self.baseName or "")
        self.setCurrentNode(node)
        self.nodeAdded.emit(node)
        return node


class qMRMLSubjectHierarchyComboBox(qMRMLWidget):  # noqa: N801
    currentItemChanged = Signal("currentItemChanged(vtkIdType)")


class qMRMLTableView(QFrame):  # noqa: N801
    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._table: Any = None
        self._scene: Any = None

    def setMRMLScene(self, scene: Any) -> None:
        self._scene = scene

    def setMRMLTableNode(self, node: Any) -> None:
        self._table = node

    def mrmlTableNode(self) -> Any:
        return self._table


class qMRMLSegmentsTableView(qMRMLWidget):  # noqa: N801
    def setSegmentationNode(self, node: Any) -> None:
        self._segmentation = node


class qMRMLSegmentSelectorWidget(qMRMLWidget):  # noqa: N801
    currentSegmentChanged = Signal("currentSegmentChanged(QString)")


class qMRMLSegmentEditorWidget(qMRMLWidget):  # noqa: N801
    pass


class qMRMLSliderWidget(ctkSliderWidget):  # noqa: N801
    pass


class qMRMLSpinBox(ctkDoubleSpinBox):  # noqa: N801
    pass


class qMRMLRangeWidget(ctkRangeWidget):  # noqa: N801
    pass


class qMRMLSubjectHierarchyTreeView(qMRMLWidget):  # noqa: N801
    pass


#: Every qMRML/qSlicer stand-in, as ``slicer.<name>``.
WIDGETS = {name: cls for name, cls in dict(globals()).items() if name.startswith(("qMRML", "qSlicer"))}
