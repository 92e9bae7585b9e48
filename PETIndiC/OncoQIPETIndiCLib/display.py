"""PET display presets, as data, and their application to a volume's display node.

A preset is a colour table and a window/level in SUV. For a volume whose voxels are not SUV
(Bq/ml with a known SUV factor), the window and level are divided by the factor, so that the
preset shows the same SUV range either way.

========  ====================================  =============================================
preset    colour table (Slicer's node ID)       window / level (SUV)
========  ====================================  =============================================
fdg       ``vtkMRMLColorTableNodeInvertedGrey``  6 / 3: SUV 0 white to 6 black, the usual FDG
                                                 reading display
rainbow   ``vtkMRMLColorTableNodeRainbow``       10 / 5: SUV 0-10
========  ====================================  =============================================

Both colour tables are among the default colour nodes that Slicer's Colors logic adds to every
scene (``vtkSlicerColorLogic::AddDefaultColorNodes``).
"""

from __future__ import annotations

from dataclasses import dataclass

import slicer

from oncoqi.errors import InputError


@dataclass(frozen=True)
class DisplayPreset:
    """A PET display: colour table node ID and window/level in SUV."""

    title: str
    color_node_id: str
    window_suv: float
    level_suv: float


DISPLAY_PRESETS: dict[str, DisplayPreset] = {
    "fdg": DisplayPreset("FDG, inverted grey, SUV 6/3", "vtkMRMLColorTableNodeInvertedGrey", 6.0, 3.0),
    "rainbow": DisplayPreset("Rainbow, SUV 0-10", "vtkMRMLColorTableNodeRainbow", 10.0, 5.0),
}


def apply_display_preset(
    volume_node: slicer.vtkMRMLScalarVolumeNode, preset: str, suv_factor: float | None = None
) -> slicer.vtkMRMLScalarVolumeDisplayNode:
    """Show ``volume_node`` with a preset of :data:`DISPLAY_PRESETS`.

    Parameters
    ----------
    volume_node
        The PET volume (display nodes are created when missing).
    preset
        A key of :data:`DISPLAY_PRESETS`.
    suv_factor
        SUV per stored unit when the voxels are not SUV (see the module docs); None for SUV voxels.

    Returns
    -------
    vtkMRMLScalarVolumeDisplayNode
        The display node, set to the preset (automatic window/level off).

    Raises
    ------
    InputError
        For an unknown preset, or a colour table missing from the scene.
    """
    if preset not in DISPLAY_PRESETS:
        raise InputError(f"unknown PET display preset {preset!r}; choose one of {sorted(DISPLAY_PRESETS)}")
    spec = DISPLAY_PRESETS[preset]
    scene = volume_node.GetScene()
    if scene.GetNodeByID(spec.color_node_id) is None:
        raise InputError(f"the colour table {spec.color_node_id} is not in the scene (Slicer's Colors module adds it)")
    if volume_node.GetDisplayNode() is None:
        volume_node.CreateDefaultDisplayNodes()
    display = volume_node.GetDisplayNode()
    scale = 1.0 / suv_factor if suv_factor else 1.0
    was = display.StartModify()
    display.SetAndObserveColorNodeID(spec.color_node_id)
    display.SetAutoWindowLevel(False)
    display.SetWindowLevel(spec.window_suv * scale, spec.level_suv * scale)
    display.EndModify(was)
    return display
