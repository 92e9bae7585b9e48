"""The quality-control picture of one study of a batch: GTV-1 on three CT planes, and a PET MIP.

:func:`write_study_qc` writes one PNG: axial, coronal and sagittal CT slices (lung window) through
the centroid of GTV-1 with its contour in red and the other lesions in yellow, in the radiological
convention (patient's right on the picture's left, anterior and superior at the top) at true
proportions in mm; with a PET, a coronal maximum-intensity projection of the SUV (inverted grey,
SUV 0 to the 99.9th percentile or at least 5) with the projection of GTV-1 on the PET grid in red.
Without a lesion the slices go through the centre of the lungs. :mod:`oncoqi.picture` draws it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw
from scipy import ndimage

from oncoqi.image import Image
from oncoqi.lung.orientation import CanonicalView
from oncoqi.lung.preprocess import lung_window
from oncoqi.picture import panel, save_png, superior_first

#: Outline colours (RGB).
GTV_COLOUR = (255, 40, 40)
OTHER_COLOUR = (255, 220, 0)
#: Height of each panel in picture pixels, gap between panels and caption band height.
PANEL_PX = 300
GAP_PX = 8
CAPTION_PX = 40


def _centre(labels: np.ndarray, lungs: np.ndarray | None) -> tuple[int, int, int]:
    """Centroid voxel (canonical ``k, y, x``) of GTV-1, else of the lungs, else of the volume."""
    for mask in (labels == 1, lungs > 0 if lungs is not None else None):
        if mask is not None and mask.any():
            return tuple(int(round(c)) for c in ndimage.center_of_mass(mask))  # type: ignore[return-value]
    return tuple(n // 2 for n in labels.shape)  # type: ignore[return-value]


def _ct_panels(ct: Image, labels: Image, lungs: Image | None) -> tuple[list[PILImage.Image], np.ndarray]:
    """Axial, coronal and sagittal CT panels through GTV-1 (or the lungs), radiological; and GTV-1 canonical."""
    view = CanonicalView.of(ct.direction)
    sk, sy, sx = view.spacing(ct.spacing)
    order = slice(None) if superior_first(ct) else slice(None, None, -1)  # superior at the top
    gray = lung_window(view.to_canonical(ct.array))[order]
    lab = view.to_canonical(labels.array)[order]
    lung = view.to_canonical(lungs.array)[order] if lungs is not None else None
    k, y, x = _centre(lab, lung)
    gtv, other = lab == 1, lab > 1
    panels = [
        panel(gray[k], [(other[k], OTHER_COLOUR), (gtv[k], GTV_COLOUR)], (sy, sx), PANEL_PX),
        panel(gray[:, y, :], [(other[:, y, :], OTHER_COLOUR), (gtv[:, y, :], GTV_COLOUR)], (sk, sx), PANEL_PX),
        panel(gray[:, :, x], [(other[:, :, x], OTHER_COLOUR), (gtv[:, :, x], GTV_COLOUR)], (sk, sy), PANEL_PX),
    ]
    return panels, gtv


def _pet_mip_panel(suv: Image, pet_labels: Image | None) -> tuple[PILImage.Image, str]:
    """The coronal SUV MIP panel (inverted grey, GTV-1's projection outlined) and its caption with the SUV range."""
    pview = CanonicalView.of(suv.direction)
    pk, _, px = pview.spacing(suv.spacing)
    porder = slice(None) if superior_first(suv) else slice(None, None, -1)
    values = pview.to_canonical(suv.array)[porder].astype(np.float32)
    mip = values.max(axis=1)
    top = max(float(np.percentile(mip, 99.9)), 5.0)
    inverted = (255 - np.clip(mip / top, 0, 1) * 255).astype(np.uint8)
    outlines = []
    if pet_labels is not None:
        outlines.append(((pview.to_canonical(pet_labels.array)[porder] == 1).any(axis=1), GTV_COLOUR))
    return panel(inverted, outlines, (pk, px), PANEL_PX), f"PET MIP (SUVbw 0-{top:.1f})"


def _sheet(panels: list[PILImage.Image], captions: list[str]) -> PILImage.Image:
    """The panels side by side, each captioned, above a band left for the study's caption."""
    width = sum(p.width for p in panels) + GAP_PX * (len(panels) + 1)
    canvas = PILImage.new("RGB", (width, PANEL_PX + 2 * GAP_PX + CAPTION_PX), (0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    cursor = GAP_PX
    for picture, caption in zip(panels, captions):
        canvas.paste(picture, (cursor, GAP_PX))
        draw.text((cursor + 2, GAP_PX + 2), caption, fill=(0, 255, 0))
        cursor += picture.width + GAP_PX
    return canvas


def write_study_qc(
    ct: Image,
    labels: Image,
    path: str | os.PathLike,
    *,
    lungs: Image | None = None,
    suv: Image | None = None,
    pet_labels: Image | None = None,
    title: str = "",
) -> Path:
    """Write the QC picture of a study (layout in the module documentation).

    Parameters
    ----------
    ct
        The CT in HU.
    labels
        Lesion labels on the CT grid (1 = GTV-1).
    path
        PNG to write (atomically; the folder is created).
    lungs
        Lung mask on the CT grid: where the slices go when there is no lesion.
    suv
        SUV volume of the PET, for the MIP panel.
    pet_labels
        Lesion labels on the PET grid (GTV-1 outlined on the MIP).
    title
        First caption line (e.g. ``patient/study``).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        When ``labels`` or ``lungs`` is not on the CT grid, or ``pet_labels`` not on the SUV grid.
    """
    if not labels.same_grid(ct) or (lungs is not None and not lungs.same_grid(ct)):
        raise ValueError("the lesion labels and the lung mask must be on the CT grid")
    if suv is not None and pet_labels is not None and not pet_labels.same_grid(suv):
        raise ValueError("the PET lesion labels must be on the SUV grid")
    panels, gtv = _ct_panels(ct, labels, lungs)
    captions = ["axial", "coronal", "sagittal"]
    if suv is not None:
        mip, caption = _pet_mip_panel(suv, pet_labels)
        panels.append(mip)
        captions.append(caption)
    canvas = _sheet(panels, captions)
    draw = ImageDraw.Draw(canvas)
    n = int(labels.array.max()) if labels.array.size else 0
    what = "red: GTV-1, yellow: other lesions" if n else "no lesion found: slices through the lungs"
    draw.text((GAP_PX, PANEL_PX + 2 * GAP_PX), f"{title}  {what}", fill=(255, 255, 255))
    if gtv.any():
        volume = float(gtv.sum()) * ct.voxel_volume_ml
        draw.text(
            (GAP_PX, PANEL_PX + 2 * GAP_PX + CAPTION_PX // 2),
            f"GTV-1 {volume:.1f} ml; {n} lesion(s)",
            fill=(255, 255, 255),
        )
    return save_png(canvas, path)


__all__ = ["write_study_qc"]
