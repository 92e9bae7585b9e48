"""Drawing of the QC pictures: CT or PET planes at true proportions with mask outlines.

Shared by the lung isolation QC (:func:`oncoqi.lung.write_lung_qc`) and the batch's study QC
(:func:`oncoqi.batch.qc.write_study_qc`). Pillow and NumPy draw, so the core needs no plotting
library. :func:`annotate` adds what a reader needs to trust a plane: the patient direction at each
edge (taken from the image geometry by :func:`edge_letters`, so a picture shown mirrored says so)
and a scale bar with its length in mm.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo
from scipy import ndimage

from oncoqi.atomic import atomic_path
from oncoqi.image import Image

Colour = tuple[int, int, int]
Font = ImageFont.ImageFont | ImageFont.FreeTypeFont

#: Letters of the negative and positive direction of each LPS axis (x: right to left, y: anterior to
#: posterior, z: inferior to superior).
AXIS_LETTERS = (("R", "L"), ("A", "P"), ("I", "S"))
#: Text height (pixels) of the orientation letters and the scale bar's label.
LABEL_PX = 15
#: Colour of the letters and the scale bar, drawn on a black box so they read on any grey level.
LABEL_COLOUR = (255, 255, 255)
#: Scale bar lengths (mm) to choose from: the longest that fits in a third of the panel's width.
SCALE_BAR_MM = (1, 2, 5, 10, 20, 50, 100, 200, 500)
#: The edges of a plane, in the order of :func:`edge_letters`' answer.
EDGES = ("left", "right", "top", "bottom")
#: Margin (pixels) between the panel's edge and a letter's or the scale bar's box.
MARGIN_PX = 3


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


def label_font(size: int = LABEL_PX) -> Font:
    """Pillow's default font at ``size`` pixels (scalable since Pillow 10.1; the fixed bitmap font before)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow 10.0: load_default takes no size
        return ImageFont.load_default()


def printable(text: str, font: Font) -> str:
    """``text`` as ``font`` can draw it: Pillow's bitmap font (Pillow without FreeType) draws Latin-1 only
    and raises for anything else, which must not fail a QC picture over a study description."""
    if isinstance(font, ImageFont.FreeTypeFont):
        return text
    return text.encode("latin-1", "replace").decode("latin-1")


def direction_letter(vector: np.ndarray) -> str:
    """The patient direction (R, L, A, P, I or S) closest to an LPS ``vector``: its largest component's."""
    axis = int(np.argmax(np.abs(vector)))
    return AXIS_LETTERS[axis][int(vector[axis] > 0)]


def edge_letters(column_lps: np.ndarray, row_lps: np.ndarray) -> tuple[str, str, str, str]:
    """The patient directions at the left, right, top and bottom edges of a drawn plane.

    Parameters
    ----------
    column_lps
        LPS direction in which the picture's columns advance (from its left edge to its right).
    row_lps
        LPS direction in which its rows advance (from its top edge to its bottom).
    """
    column, row = np.asarray(column_lps, float), np.asarray(row_lps, float)
    return direction_letter(-column), direction_letter(column), direction_letter(-row), direction_letter(row)


def scale_bar_mm(width_mm: float) -> float:
    """The longest of :data:`SCALE_BAR_MM` within a third of ``width_mm`` (the shortest if none is)."""
    fitting = [length for length in SCALE_BAR_MM if length <= width_mm / 3]
    return float(fitting[-1] if fitting else SCALE_BAR_MM[0])


def _boxed_text(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, font: Font) -> None:
    """``text`` with its top-left corner at ``xy`` on a black box one margin wider on each side."""
    left, top, right, bottom = draw.textbbox(xy, text, font=font)
    draw.rectangle([left - MARGIN_PX, top - MARGIN_PX, right + MARGIN_PX, bottom + MARGIN_PX], fill=(0, 0, 0))
    draw.text(xy, text, fill=LABEL_COLOUR, font=font)


def letter_positions(size: tuple[int, int], font: Font) -> dict[str, tuple[int, int]]:
    """Where :func:`annotate` puts the text of each edge's letter (``left``, ``right``, ``top``, ``bottom``).

    The letters sit in the middle of their edge, inside the plane, each placed as a capital M would
    be (the widest capital), so that none reaches over the edge.
    """
    width, height = size
    left, top, right, bottom = font.getbbox("M")
    w, h = right - left, bottom - top
    pad = 2 * MARGIN_PX
    return {
        "left": (pad - left, (height - h) // 2 - top),
        "right": (width - pad - w - left, (height - h) // 2 - top),
        "top": ((width - w) // 2 - left, pad - top),
        "bottom": ((width - w) // 2 - left, height - pad - h - top),
    }


def scale_bar_box(size: tuple[int, int], height_mm: float) -> tuple[float, tuple[int, int, int, int]]:
    """The scale bar :func:`annotate` draws on a plane of ``size`` pixels and ``height_mm``: its length
    in mm and its bar's pixel box ``(x0, y0, x1, y1)`` (inclusive), in the bottom right corner."""
    width, height = size
    length_mm = scale_bar_mm(width * height_mm / height)
    length_px = max(1, int(round(length_mm * height / height_mm)))
    x1, y1 = width - 2 * MARGIN_PX - 1, height - 2 * MARGIN_PX - 1
    return length_mm, (x1 - length_px + 1, y1 - 2, x1, y1)


def _scale_bar(draw: ImageDraw.ImageDraw, size: tuple[int, int], height_mm: float, font: Font) -> None:
    """The bar of :func:`scale_bar_box` with end ticks and its length written above it, on a black box."""
    length_mm, (x0, y0, x1, y1) = scale_bar_box(size, height_mm)
    text = f"{length_mm:g} mm"
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    text_xy = (x1 - (right - left) - left, y0 - 4 - MARGIN_PX - bottom)
    box_left = min(x0, text_xy[0] + left) - MARGIN_PX
    draw.rectangle([box_left, text_xy[1] + top - MARGIN_PX, x1 + MARGIN_PX, y1 + MARGIN_PX], fill=(0, 0, 0))
    draw.rectangle([x0, y0, x1, y1], fill=LABEL_COLOUR)
    for x in (x0, x1):
        draw.line([(x, y0 - 4), (x, y1)], fill=LABEL_COLOUR)
    draw.text(text_xy, text, fill=LABEL_COLOUR, font=font)


def annotate(picture: PILImage.Image, letters: tuple[str, str, str, str], height_mm: float) -> PILImage.Image:
    """Draw the edge ``letters`` (left, right, top, bottom) and a scale bar on a plane ``height_mm`` high.

    The letters sit in the middle of their edges (:func:`letter_positions`), the scale bar in the
    bottom right corner (:func:`scale_bar_box`). The plane's pixels are square (:func:`panel` keeps
    proportions), so one length per pixel holds in both directions. Returns ``picture``, drawn on
    in place.
    """
    draw = ImageDraw.Draw(picture)
    font = label_font()
    positions = letter_positions(picture.size, font)
    for edge, letter in zip(EDGES, letters):
        _boxed_text(draw, positions[edge], letter, font)
    _scale_bar(draw, picture.size, height_mm, font)
    return picture


def save_png(canvas: PILImage.Image, path: str | os.PathLike, text: dict[str, str] | None = None) -> Path:
    """Write ``canvas`` as a PNG, atomically, with ``text`` as its text chunks (what the picture shows, readable back)."""
    path = Path(path)
    info = None
    if text:
        info = PngInfo()
        for key, value in text.items():
            info.add_text(key, value)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG", pnginfo=info)
    return path
