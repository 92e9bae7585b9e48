"""A quality-control picture of a lung isolation: CT slices with the lung outlines drawn on them.

:func:`write_lung_qc` writes one PNG with three axial slices (at a quarter, half and three
quarters of the lungs' slice range) and one coronal slice through the lungs' centre, in the
radiological convention (patient's right on the picture's left, anterior or superior at the
top) and at true proportions in mm. Outlines: tight lungs in cyan, the tumour search region in
yellow, when given, a reference (e.g. an expert's lung contours) in red and the lesions found by
the tumour network in magenta (the middle axial slice then goes through the largest lesion, so
a QC of a segmentation shows it). The CT is shown in
the lung window, drawn by :mod:`oncoqi.picture`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw

from oncoqi.image import Image
from oncoqi.lung.isolation import LungMasks
from oncoqi.lung.orientation import CanonicalView
from oncoqi.lung.preprocess import lung_window
from oncoqi.picture import Colour, panel, save_png, superior_first

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
    _check_grids(ct, masks, reference, lesions)
    view = CanonicalView.of(ct.direction)
    gray = lung_window(view.to_canonical(ct.array))
    outlines = [
        (view.to_canonical(masks.lungs.array) > 0, LUNG_COLOUR),
        (view.to_canonical(masks.search_region.array) > 0, SEARCH_COLOUR),
    ]
    if reference is not None:
        outlines.append((view.to_canonical(reference.array) > 0, REFERENCE_COLOUR))
    axial = _axial_slices(masks.lung_slices)
    count = 0
    if lesions is not None:
        labels = view.to_canonical(lesions.array)
        outlines.append((labels > 0, LESION_COLOUR))
        count = int(labels.max()) if labels.size else 0  # labels are 1..n, 1 the largest (GTV-1)
        if count:
            axial[1] = int(round(np.nonzero(labels == 1)[0].mean()))
    panels = _panels(ct, view, gray, outlines, axial)
    heading = f"{title}: axial at 1/4, 1/2, 3/4 of the lungs; coronal"
    legend = _legend(masks.volume_ml, reference is not None, count if lesions is not None else None)
    return save_png(_sheet(panels, heading, legend), path)


def _check_grids(ct: Image, masks: LungMasks, reference: Image | None, lesions: Image | None) -> None:
    """Refuse masks off the CT's grid, whose outlines would be drawn in the wrong place."""
    for name, image in (
        ("lungs", masks.lungs),
        ("search region", masks.search_region),
        ("reference", reference),
        ("lesions", lesions),
    ):
        if image is not None and not image.same_grid(ct):
            raise ValueError(f"the {name} mask is not on the CT's grid")


def _axial_slices(lung_slices: tuple[int, int]) -> list[int]:
    """The canonical indices at a quarter, half and three quarters of the lungs' slice range, to show them all."""
    first, last = lung_slices
    return [int(round(first + fraction * (last - first))) for fraction in (0.25, 0.5, 0.75)]


def _panels(
    ct: Image,
    view: CanonicalView,
    gray: np.ndarray,
    outlines: list[tuple[np.ndarray, Colour]],
    axial: list[int],
) -> list[PILImage.Image]:
    """The axial panels and the coronal one through the lungs' centre, superior at the top, at true proportions."""
    sk, sy, sx = view.spacing(ct.spacing)
    panels = [panel(gray[k], [(m[k], c) for m, c in outlines], (sy, sx), PANEL_PX) for k in axial]
    lungs = outlines[0][0]
    row = int(round(np.nonzero(lungs)[1].mean()))
    order = slice(None) if superior_first(ct) else slice(None, None, -1)
    panels.append(panel(gray[order, row, :], [(m[order, row, :], c) for m, c in outlines], (sk, sx), PANEL_PX))
    return panels


def _legend(volumes: dict[str, float], reference: bool, lesions: int | None) -> str:
    """The second caption line: what each colour outlines, with the lung volumes and the number of lesions."""
    return (
        f"cyan: lungs (right {volumes['right']:.0f} ml, left {volumes['left']:.0f} ml)   yellow: search region"
        + ("   red: reference" if reference else "")
        + (f"   magenta: {lesions} lesion(s)" if lesions is not None else "")
    )


def _sheet(panels: list[PILImage.Image], heading: str, legend: str) -> PILImage.Image:
    """The panels side by side on black, with the two caption lines below them."""
    width = sum(p.width for p in panels) + GAP_PX * (len(panels) + 1)
    canvas = PILImage.new("RGB", (width, PANEL_PX + 2 * GAP_PX + 2 * CAPTION_PX), (0, 0, 0))
    x = GAP_PX
    for picture in panels:
        canvas.paste(picture, (x, GAP_PX))
        x += picture.width + GAP_PX
    draw = ImageDraw.Draw(canvas)
    text_y = PANEL_PX + 2 * GAP_PX
    draw.text((GAP_PX, text_y), heading, fill=(255, 255, 255))
    draw.text((GAP_PX, text_y + CAPTION_PX // 2), legend, fill=(255, 255, 255))
    return canvas
