"""What the segmentation will see: the input CT's grid and intensity range.

Before segmenting, the user (and the later segmentation code) needs to know that the volume is the
one they think: its size, voxel spacing, patient-space placement (LPS, as DICOM and the core use) and
whether its values look like Hounsfield units. This summary is computed on the :class:`oncoqi.Image`
the core receives, so it shows exactly what the core gets from the node.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import slicer
from OncoQISlicer.mrml import image_from_volume_node

from oncoqi.image import Image


@dataclass(frozen=True)
class VolumeSummary:
    """Grid and intensity facts of one CT volume.

    Attributes
    ----------
    name
        Node name.
    size
        Voxels along i, j, k.
    spacing
        Voxel size along i, j, k in mm.
    origin
        LPS position (mm) of the centre of the first voxel.
    direction
        3x3, columns are the i, j, k axis directions in LPS.
    extent_mm
        Distance covered along i, j, k (``size * spacing``) in mm.
    minimum, maximum, mean
        Voxel value statistics (HU for a CT).
    """

    name: str
    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray
    extent_mm: tuple[float, float, float]
    minimum: float
    maximum: float
    mean: float

    def report(self) -> str:
        """Multi-line text for the module panel."""

        def triple(values: tuple[float, ...], fmt: str) -> str:
            return " x ".join(format(v, fmt) for v in values)

        return "\n".join(
            [
                f"Volume: {self.name}",
                f"Size (i x j x k): {triple(self.size, 'd')} voxels",
                f"Spacing: {triple(self.spacing, '.4g')} mm",
                f"Extent: {triple(self.extent_mm, '.1f')} mm",
                f"Origin (LPS): {triple(self.origin, '.2f')} mm",
                f"Values: min {self.minimum:.1f}, max {self.maximum:.1f}, mean {self.mean:.1f}",
            ]
        )


def summarize_image(image: Image) -> VolumeSummary:
    """Summarise an image's grid and values (mean in float64, so integer CTs do not overflow)."""
    values = image.array
    return VolumeSummary(
        name=str(image.metadata.get("name", "")),
        size=image.size,
        spacing=image.spacing,
        origin=image.origin,
        direction=image.direction.copy(),
        extent_mm=tuple(float(n * s) for n, s in zip(image.size, image.spacing)),  # type: ignore[arg-type]
        minimum=float(values.min()),
        maximum=float(values.max()),
        mean=float(values.mean(dtype=np.float64)),
    )


def summarize_volume_node(node: slicer.vtkMRMLScalarVolumeNode) -> VolumeSummary:
    """Convert the node to an :class:`oncoqi.Image` (LPS, exact) and summarise it."""
    return summarize_image(image_from_volume_node(node))
