"""The quality-control picture of one study of a batch: GTV-1 on three CT planes, and a PET MIP.

:func:`write_study_qc` writes one PNG: axial, coronal and sagittal CT slices (lung window) through
the centroid of GTV-1 with its contour in red and the other lesions in yellow, in the radiological
convention (patient's right on the picture's left, anterior and superior at the top) at true
proportions in mm; with a PET, a coronal maximum-intensity projection of the SUV (inverted grey,
SUV 0 to the 99.9th percentile or at least 5) with the projection of GTV-1 on the PET grid in red.
Without a lesion the slices go through the centre of the lungs. :mod:`oncoqi.picture` draws it.

Each panel carries the patient direction at its edges (R/L and A/P on the axial, R/L and S/I on the
coronal and the MIP, A/P and S/I on the sagittal), computed from the image geometry rather than
assumed, and a scale bar with its length in mm. The caption names the study as a reader knows it,
PatientID, StudyDescription and StudyDate from the CT's DICOM headers, and falls back to ``title``
with its UIDs shortened only when the headers hold neither description nor date. The same names
are stored as the PNG's text chunks (:data:`QC_TEXT_KEYS`; :func:`read_qc_names` reads them back),
so the cohort's HTML report can show them without reading DICOM again.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw
from scipy import ndimage

from oncoqi.image import Image
from oncoqi.lung.orientation import CanonicalView
from oncoqi.lung.preprocess import lung_window
from oncoqi.picture import annotate, edge_letters, label_font, panel, printable, save_png, superior_first

#: Outline colours (RGB).
GTV_COLOUR = (255, 40, 40)
OTHER_COLOUR = (255, 220, 0)
#: Height of each panel in picture pixels, gap between panels, band of the panel names above them
#: (outside the image, where they hide no letter) and the study's caption band below (two lines).
PANEL_PX = 300
GAP_PX = 8
TITLE_PX = 20
CAPTION_PX = 48
#: Top of the panels in the picture.
PANEL_TOP = GAP_PX + TITLE_PX
#: PNG text chunks of the QC picture, named after the DICOM attributes they copy.
QC_TEXT_KEYS = ("PatientID", "StudyInstanceUID", "StudyDescription", "StudyDate")
#: A UID (dotted digits) long enough to be worth shortening, and how many trailing characters are kept.
LONG_UID = re.compile(r"\d+(?:\.\d+){3,}")
UID_TAIL = 8


def _centre(labels: np.ndarray, lungs: np.ndarray | None) -> tuple[int, int, int]:
    """Centroid voxel (canonical ``k, y, x``) of GTV-1, else of the lungs, else of the volume."""
    for mask in (labels == 1, lungs > 0 if lungs is not None else None):
        if mask is not None and mask.any():
            return tuple(int(round(c)) for c in ndimage.center_of_mass(mask))  # type: ignore[return-value]
    return tuple(n // 2 for n in labels.shape)  # type: ignore[return-value]


def _display_axes(image: Image, view: CanonicalView, superior: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LPS steps of one displayed voxel along the drawn ``(k, y, x)`` axes: down the slices as drawn
    (``superior``: slice 0 at the top), along the canonical rows and columns. From the geometry, so
    the letters say what the picture shows even if the view were wrong."""
    shape = view.to_canonical(image.array).shape
    k = np.array([0.0, 1.0, 0.0, 0.0])
    if not superior:
        k = shape[0] - 1 - k
    ijk = view.to_index(k, np.array([0.0, 0.0, 1.0, 0.0]), np.array([0.0, 0.0, 0.0, 1.0]), shape)
    lps = image.index_to_lps(ijk)
    return lps[1] - lps[0], lps[2] - lps[0], lps[3] - lps[0]


def _ct_panels(ct: Image, labels: Image, lungs: Image | None) -> tuple[list[PILImage.Image], np.ndarray]:
    """Axial, coronal and sagittal CT panels through GTV-1 (or the lungs), radiological, with their edge
    letters and scale bars; and GTV-1 canonical."""
    view = CanonicalView.of(ct.direction)
    sk, sy, sx = view.spacing(ct.spacing)
    superior = superior_first(ct)
    order = slice(None) if superior else slice(None, None, -1)  # superior at the top
    gray = lung_window(view.to_canonical(ct.array))[order]
    lab = view.to_canonical(labels.array)[order]
    lung = view.to_canonical(lungs.array)[order] if lungs is not None else None
    k, y, x = _centre(lab, lung)
    gtv, other = lab == 1, lab > 1
    down, back, across = _display_axes(ct, view, superior)
    nk, ny = gray.shape[:2]
    panels = [
        annotate(
            panel(gray[k], [(other[k], OTHER_COLOUR), (gtv[k], GTV_COLOUR)], (sy, sx), PANEL_PX),
            edge_letters(across, back),
            ny * sy,
        ),
        annotate(
            panel(gray[:, y, :], [(other[:, y, :], OTHER_COLOUR), (gtv[:, y, :], GTV_COLOUR)], (sk, sx), PANEL_PX),
            edge_letters(across, down),
            nk * sk,
        ),
        annotate(
            panel(gray[:, :, x], [(other[:, :, x], OTHER_COLOUR), (gtv[:, :, x], GTV_COLOUR)], (sk, sy), PANEL_PX),
            edge_letters(back, down),
            nk * sk,
        ),
    ]
    return panels, gtv


def _pet_mip_panel(suv: Image, pet_labels: Image | None) -> tuple[PILImage.Image, str]:
    """The coronal SUV MIP panel (inverted grey, GTV-1's projection outlined) and its caption with the SUV range."""
    pview = CanonicalView.of(suv.direction)
    pk, _, px = pview.spacing(suv.spacing)
    superior = superior_first(suv)
    porder = slice(None) if superior else slice(None, None, -1)
    values = pview.to_canonical(suv.array)[porder].astype(np.float32)
    mip = values.max(axis=1)
    top = max(float(np.percentile(mip, 99.9)), 5.0)
    inverted = (255 - np.clip(mip / top, 0, 1) * 255).astype(np.uint8)
    outlines = []
    if pet_labels is not None:
        outlines.append(((pview.to_canonical(pet_labels.array)[porder] == 1).any(axis=1), GTV_COLOUR))
    down, _, across = _display_axes(suv, pview, superior)
    picture = annotate(panel(inverted, outlines, (pk, px), PANEL_PX), edge_letters(across, down), mip.shape[0] * pk)
    return picture, f"PET MIP (SUVbw 0-{top:.1f} g/ml)"


def _sheet(panels: list[PILImage.Image], captions: list[str]) -> PILImage.Image:
    """The panels side by side, each named above it, over a band left for the study's caption."""
    width = sum(p.width for p in panels) + GAP_PX * (len(panels) + 1)
    canvas = PILImage.new("RGB", (width, PANEL_TOP + PANEL_PX + GAP_PX + CAPTION_PX), (0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    font = label_font()
    cursor = GAP_PX
    for picture, caption in zip(panels, captions):
        canvas.paste(picture, (cursor, PANEL_TOP))
        draw.text((cursor, GAP_PX), caption, fill=(0, 255, 0), font=font)
        cursor += picture.width + GAP_PX
    return canvas


def study_names(ct: Image) -> dict[str, str]:
    """:data:`QC_TEXT_KEYS` of the CT's study, from its first DICOM header ('' where absent or not DICOM)."""
    headers = ct.metadata.get("headers") or ()
    first = headers[0] if headers else {}
    fallback = {"PatientID": ct.metadata.get("patient_id"), "StudyInstanceUID": ct.metadata.get("study_uid")}
    return {key: " ".join(str(first.get(key) or fallback.get(key) or "").split()) for key in QC_TEXT_KEYS}


def shorten_uids(text: str) -> str:
    """``text`` with every long UID cut to ``...`` and its last :data:`UID_TAIL` characters."""
    return LONG_UID.sub(lambda m: m.group() if len(m.group()) <= 2 * UID_TAIL else "..." + m.group()[-UID_TAIL:], text)


def display_date(date: str) -> str:
    """A DICOM date ``YYYYMMDD`` as ``YYYY-MM-DD`` (anything else unchanged)."""
    return f"{date[:4]}-{date[4:6]}-{date[6:]}" if len(date) == 8 and date.isdigit() else date


def study_caption(names: dict[str, str], fallback: str) -> str:
    """``PatientID | StudyDescription | date`` when the study has a description or a date, else
    ``fallback`` (e.g. ``patient/study UID``) with its UIDs shortened: a reader knows a study by the
    former, and a 64-character UID fills a caption without telling them anything."""
    if not (names.get("StudyDescription") or names.get("StudyDate")):
        known = (names.get("PatientID", ""), names.get("StudyInstanceUID", ""))
        return shorten_uids(fallback or "/".join(part for part in known if part))
    parts = (names.get("PatientID", ""), names.get("StudyDescription", ""), display_date(names.get("StudyDate", "")))
    return "  |  ".join(part for part in parts if part)


def read_qc_names(path: str | os.PathLike) -> dict[str, str]:
    """The :data:`QC_TEXT_KEYS` a QC picture was written with; empty when the file is missing or unreadable."""
    try:
        with PILImage.open(path) as picture:
            text = dict(getattr(picture, "text", {}))
    except (OSError, SyntaxError, ValueError):  # missing, not a picture, or a corrupt PNG: no names to show
        return {}
    return {key: str(text[key]) for key in QC_TEXT_KEYS if key in text}


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
        The CT in HU (its DICOM headers, when it has them, name the study in the caption).
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
        Caption when the CT has neither StudyDescription nor StudyDate (e.g. ``patient/study``;
        long UIDs are shortened).

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
    font = label_font()
    names = study_names(ct)
    n = int(labels.array.max()) if labels.array.size else 0
    what = "red: GTV-1, yellow: other lesions" if n else "no lesion found: slices through the lungs"
    caption = printable(f"{study_caption(names, title)}    {what}", font)
    draw.text((GAP_PX, PANEL_TOP + PANEL_PX + GAP_PX), caption, fill=(255, 255, 255), font=font)
    if gtv.any():
        volume = float(gtv.sum()) * ct.voxel_volume_ml
        draw.text(
            (GAP_PX, PANEL_TOP + PANEL_PX + GAP_PX + CAPTION_PX // 2),
            f"GTV-1 {volume:.1f} ml; {n} {'lesion' if n == 1 else 'lesions'}",
            fill=(255, 255, 255),
            font=font,
        )
    return save_png(canvas, path, {key: value for key, value in names.items() if value})


__all__ = ["QC_TEXT_KEYS", "read_qc_names", "study_caption", "write_study_qc"]
