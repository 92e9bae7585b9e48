"""A quality-control picture of a lung isolation: CT slices with the lung outlines drawn on them.

:func:`write_lung_qc` writes one PNG with three axial slices (at a quarter, half and three
quarters of the lungs' slice range) and one coronal slice through the lungs' centre, in the
radiological convention (patient's right on the picture's left, anterior or superior at the
top) and at true proportions in mm. Outlines: tight lungs in cyan, the tumour search region in
yellow, when given, a reference (e.g. an expert's lung contours) in red and the lesions found by
the tumour network in magenta (the middle axial slice then goes through the largest lesion, so
a QC of a segmentation shows it). The CT is shown in
the lung window. Pillow (a dependency of highdicom) draws it, so no plotting library is needed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw
from scipy import ndimage

from oncoqi.atomic import atomic_path
from oncoqi.image import Image
from oncoqi.lung.isolation import LungMasks
from oncoqi.lung.orientation import CanonicalView
from oncoqi.lung.preprocess import lung_window

#: Outline colours (RGB).
LUNG_COLOUR = (0, 255, 255)
SEARCH_COLOUR = (255, 220, 0)
REFERENCE_COLOUR = (255, 40, 40)
LESION_COLOUR = (255, 0, 255)
#: Height of each panel in picture pixels, and the gaps and the caption band.
PANEL_PX = 320
GAP_PX = 8
CAPTION_PX = 36


def write_lung_qc(
    ct: Image,
    masks: LungMasks,
    path: str | os.PathLike,
    *,
    reference: Image | None = None,
    lesions: Image | None = None,
    title: str = "OncoQI lung isolation",
) -> Path:
    """Write the QC picture of ``masks`` over ``ct`` as a PNG.

    Parameters
    ----------
    ct
        The CT the masks were computed on.
    masks
        The result of :func:`oncoqi.lung.isolate_lungs` on ``ct``.
    path
        Where to write the PNG (its folder must exist).
    reference
        Optional reference lung mask on the CT's grid (non-zero = lung), outlined in red.
    lesions
        Optional lesion labels on the CT's grid (1 = GTV-1, the largest), outlined in magenta.
    title
        First caption line; the second gives the volumes.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        When a mask is not on the CT's grid.
    """
    for name, image in (("lungs", masks.lungs), ("search region", masks.search_region), ("reference", reference),
                        ("lesions", lesions)):
        if image is not None and not image.same_grid(ct):
            raise ValueError(f"the {name} mask is not on the CT's grid")
    view = CanonicalView.of(ct.direction)
    sk, sy, sx = view.spacing(ct.spacing)
    gray = lung_window(view.to_canonical(ct.array))
    outlines = [(view.to_canonical(masks.lungs.array) > 0, LUNG_COLOUR),
                (view.to_canonical(masks.search_region.array) > 0, SEARCH_COLOUR)]
    if reference is not None:
        outlines.append((view.to_canonical(reference.array) > 0, REFERENCE_COLOUR))
    lungs = outlines[0][0]
    first, last = masks.lung_slices
    axial = [int(round(first + fraction * (last - first))) for fraction in (0.25, 0.5, 0.75)]
    count = 0
    if lesions is not None:
        labels = view.to_canonical(lesions.array)
        outlines.append((labels > 0, LESION_COLOUR))
        count = len(np.unique(labels)) - int((labels == 0).any())
        if count:
            axial[1] = int(round(np.nonzero(labels == labels[labels > 0].min())[0].mean()))
    panels = []
    for k in axial:
        panels.append(_panel(gray[k], [(m[k], c) for m, c in outlines], (sy, sx)))
    row = int(round(np.nonzero(lungs)[1].mean()))
    superior_last = ct.index_to_lps(np.array([0.0, 0.0, 1.0]))[2] > ct.origin[2]
    order = slice(None, None, -1) if superior_last else slice(None)
    panels.append(_panel(gray[order, row, :], [(m[order, row, :], c) for m, c in outlines], (sk, sx)))

    width = sum(p.width for p in panels) + GAP_PX * (len(panels) + 1)
    canvas = PILImage.new("RGB", (width, PANEL_PX + 2 * GAP_PX + 2 * CAPTION_PX), (0, 0, 0))
    x = GAP_PX
    for panel in panels:
        canvas.paste(panel, (x, GAP_PX))
        x += panel.width + GAP_PX
    volumes = masks.volume_ml
    draw = ImageDraw.Draw(canvas)
    text_y = PANEL_PX + 2 * GAP_PX
    draw.text((GAP_PX, text_y), f"{title}: axial at 1/4, 1/2, 3/4 of the lungs; coronal", fill=(255, 255, 255))
    legend = (
        f"cyan: lungs (right {volumes['right']:.0f} ml, left {volumes['left']:.0f} ml)   yellow: search region"
        + ("   red: reference" if reference is not None else "")
        + (f"   magenta: {count} lesion(s)" if lesions is not None else "")
    )
    draw.text((GAP_PX, text_y + CAPTION_PX // 2), legend, fill=(255, 255, 255))
    path = Path(path)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
    return path


def _panel(gray: np.ndarray, outlines: list[tuple[np.ndarray, tuple[int, int, int]]],
           spacing: tuple[float, float]) -> PILImage.Image:
    """One slice scaled to true proportions, ``PANEL_PX`` high, with one-pixel outlines."""
    rows, cols = gray.shape
    height_mm, width_mm = rows * spacing[0], cols * spacing[1]
    size = (max(1, int(round(PANEL_PX * width_mm / height_mm))), PANEL_PX)
    picture = np.asarray(PILImage.fromarray(gray).resize(size, PILImage.Resampling.BILINEAR).convert("RGB")).copy()
    for mask, colour in outlines:
        scaled = PILImage.fromarray(mask.astype(np.uint8) * 255).resize(size, PILImage.Resampling.NEAREST)
        scaled = np.asarray(scaled) > 0
        edge = scaled & ~ndimage.binary_erosion(scaled)
        picture[edge] = colour
    return PILImage.fromarray(picture)
