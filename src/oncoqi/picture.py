"""Drawing of the QC pictures: CT or PET planes at true proportions with mask outlines.

Shared by the lung isolation QC (:func:`oncoqi.lung.write_lung_qc`) and the batch's study QC
(:func:`oncoqi.batch.qc.write_study_qc`). Pillow and NumPy draw, so the core needs no plotting
library.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from scipy import ndimage

from oncoqi.atomic import atomic_path
from oncoqi.image import Image

Colour = tuple[int, int, int]


def superior_first(image: Image) -> bool:
    """True when slice ``k = 0`` is the most superior (LPS z grows towards the head)."""
    return bool(image.index_to_lps(np.array([0.0, 0.0, 1.0]))[2] < image.origin[2])


def panel(
    gray: np.ndarray, outlines: list[tuple[np.ndarray, Colour]], spacing: tuple[float, float], height: int
) -> PILImage.Image:
    """One plane scaled to true proportions, ``height`` pixels high, with one-pixel mask outlines.

    Parameters
    ----------
    gray
        uint8 plane ``(rows, columns)``.
    outlines
        Boolean masks of the plane's shape and the colour of each one's outline.
    spacing
        Row and column spacing (mm).
    height
        Panel height in picture pixels.
    """
    rows, cols = gray.shape
    height_mm, width_mm = rows * spacing[0], cols * spacing[1]
    size = (max(1, int(round(height * width_mm / max(height_mm, 1e-6)))), height)
    picture = np.asarray(PILImage.fromarray(gray).resize(size, PILImage.Resampling.BILINEAR).convert("RGB")).copy()
    for mask, colour in outlines:
        if not mask.any():
            continue
        scaled = (
            np.asarray(PILImage.fromarray(mask.astype(np.uint8) * 255).resize(size, PILImage.Resampling.NEAREST)) > 0
        )
        picture[scaled & ~ndimage.binary_erosion(scaled)] = colour
    return PILImage.fromarray(picture)


def save_png(canvas: PILImage.Image, path: str | os.PathLike) -> Path:
    """Write ``canvas`` as a PNG, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
    return path
