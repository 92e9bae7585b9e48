"""The batch's QC picture: orientation letters, scale bar and study caption (``oncoqi.batch.qc``).

The picture is drawn for a synthetic CT (and a PET on the same grid) whose geometry is known, so
where each letter must stand and how long the scale bar must be follow from the geometry alone:
100 mm across the axial panel, 75 mm from head to feet. The letters are found in the PNG by
comparing each edge's box with the six possible letters drawn alone, so a letter at the wrong edge
(or a picture shown mirrored under correct letters) fails.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageDraw
from pydicom.dataset import Dataset

import oncoqi.batch.qc as qc
from oncoqi.batch.qc import GAP_PX, PANEL_PX, PANEL_TOP, read_qc_names, study_caption, write_study_qc
from oncoqi.image import Image
from oncoqi.lung.orientation import CanonicalView
from oncoqi.picture import LABEL_COLOUR, MARGIN_PX, edge_letters, label_font, letter_positions

#: Voxels (k, j, i) and spacing (i, j, k) of the synthetic CT: 100 x 100 mm in plane, 75 mm head to feet.
SHAPE = (25, 50, 50)
SPACING = (2.0, 2.0, 3.0)
#: Panel widths in pixels (300 px high): axial 100 x 100 mm, coronal and sagittal 100 mm wide x 75 mm.
WIDTHS = (300, 400, 400, 400)
#: Expected letters (left, right, top, bottom) of the axial, coronal, sagittal and PET MIP panels.
RADIOLOGICAL = (("R", "L", "A", "P"), ("R", "L", "S", "I"), ("A", "P", "S", "I"), ("R", "L", "S", "I"))
UID = "1.2.826.0.1.3680043.8.498.53996221607518038653721427246088323685"


def _study(direction: np.ndarray | None = None) -> tuple[Image, Image, Image, Image]:
    """CT (identity direction: i to the patient's left, j to the back, k to the head), lesion labels,
    lungs and SUV; with ``direction`` = diag(-1, 1, -1) the same anatomy stored mirrored in i and k."""
    k, j, i = np.mgrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    body = ((i - 24.5) / 23) ** 2 + ((j - 24.5) / 20) ** 2 < 1
    right = ((i - 14) / 8) ** 2 + ((j - 24) / 12) ** 2 < 1  # low i: patient's right
    left = ((i - 35) / 8) ** 2 + ((j - 24) / 12) ** 2 < 1
    tumour = ((i - 12) ** 2 + (j - 20) ** 2 + ((k - 15) * 1.5) ** 2) < 16  # right lung, anterior, above the middle
    hu = np.where(body, 0, -1000)
    hu = np.where(right | left, -850, hu)
    hu = np.where(tumour, 40, hu).astype(np.int16)
    lungs = np.where(right, 1, np.where(left, 2, 0)).astype(np.uint8)
    suv = np.where(tumour, 8.0, np.where(body, 1.0, 0.0)).astype(np.float32)
    arrays = [hu, tumour.astype(np.uint8), lungs, suv]
    origin = np.zeros(3)
    if direction is not None:
        flipped = [axis for axis, sign in ((2, direction[0, 0]), (0, direction[2, 2])) if sign < 0]
        arrays = [np.flip(a, axis=flipped) for a in arrays]
        origin = np.where(np.diag(direction) < 0, (np.array(SHAPE[::-1]) - 1) * np.array(SPACING), 0.0)
    geometry = {"spacing": SPACING, "origin": tuple(origin), "direction": np.eye(3) if direction is None else direction}
    return tuple(Image(a, **geometry) for a in arrays)  # type: ignore[return-value]


def _draw(tmp_path, name: str = "qc.png", direction: np.ndarray | None = None, **kwargs) -> np.ndarray:
    ct, labels, lungs, suv = _study(direction)
    path = write_study_qc(ct, labels, tmp_path / name, lungs=lungs, suv=suv, pet_labels=labels, **kwargs)
    return np.asarray(PILImage.open(path).convert("RGB"))


def _panels(picture: np.ndarray) -> list[np.ndarray]:
    """The four panels cut out of the sheet (side by side, GAP_PX apart, PANEL_PX high from PANEL_TOP)."""
    out, x = [], GAP_PX
    for width in WIDTHS:
        out.append(picture[PANEL_TOP : PANEL_TOP + PANEL_PX, x : x + width])
        x += width + GAP_PX
    return out


def _letters_at(plane: np.ndarray, edge: str) -> list[str]:
    """The letters whose boxed drawing equals the plane's pixels in that box, at ``edge``'s position."""
    size = (plane.shape[1], plane.shape[0])
    font = label_font()
    xy = letter_positions(size, font)[edge]
    found = []
    for letter in "RLAPSI":
        template = PILImage.new("RGB", size)
        draw = ImageDraw.Draw(template)
        left, top, right, bottom = draw.textbbox(xy, letter, font=font)
        draw.text(xy, letter, fill=LABEL_COLOUR, font=font)
        box = (slice(top - MARGIN_PX, bottom + MARGIN_PX), slice(left - MARGIN_PX, right + MARGIN_PX))
        if np.array_equal(plane[box], np.asarray(template)[box]) and (plane[box].min(-1) > 200).any():
            found.append(letter)
    return found


def _shown_letters(picture: np.ndarray) -> list[tuple[str, ...]]:
    return [
        tuple("".join(_letters_at(plane, edge)) for edge in ("left", "right", "top", "bottom"))
        for plane in _panels(picture)
    ]


def _longest_white_run(plane: np.ndarray) -> int:
    """Longest horizontal run of label-coloured pixels in the bottom 20 rows of the plane's right half."""
    white = (plane[-20:, plane.shape[1] // 2 :] == LABEL_COLOUR).all(-1)
    best = 0
    for row in white:
        run = 0
        for value in row:
            run = run + 1 if value else 0
            best = max(best, run)
    return best


def test_edge_letters_follow_the_directions():
    assert edge_letters(np.array([1.0, 0, 0]), np.array([0, 1.0, 0])) == ("R", "L", "A", "P")
    assert edge_letters(np.array([-1.0, 0.2, 0]), np.array([0, 0.1, -1.0])) == ("L", "R", "S", "I")
    assert edge_letters(np.array([0, 1.0, 0]), np.array([0, 0, -1.0])) == ("A", "P", "S", "I")


def test_each_panel_has_its_radiological_letters(tmp_path):
    assert _shown_letters(_draw(tmp_path)) == list(RADIOLOGICAL)


def test_a_mirrored_picture_moves_its_letters(tmp_path, monkeypatch):
    """If the view drew the patient's right on the right, the letters must say so (they come from the geometry)."""
    plain = _draw(tmp_path, "plain.png")

    class Mirrored(CanonicalView):
        @classmethod
        def of(cls, direction: np.ndarray) -> CanonicalView:
            view = CanonicalView.of(direction)
            return CanonicalView(view.swap, not view.flip_x, view.flip_y)

    monkeypatch.setattr(qc, "CanonicalView", Mirrored)
    mirrored = _draw(tmp_path, "mirrored.png")
    # axial, coronal and the PET MIP now show the patient's right on the right; the sagittal is not mirrored
    assert _shown_letters(mirrored) == [
        ("L", "R", "A", "P"),
        ("L", "R", "S", "I"),
        ("A", "P", "S", "I"),
        ("L", "R", "S", "I"),
    ]
    red = (np.array(qc.GTV_COLOUR) == _panels(plain)[0]).all(-1).nonzero()[1].mean()
    red_mirrored = (np.array(qc.GTV_COLOUR) == _panels(mirrored)[0]).all(-1).nonzero()[1].mean()
    assert red < 150 < red_mirrored  # the tumour (patient's right) moved with the letters


def test_storage_order_does_not_change_the_picture(tmp_path):
    """The same anatomy stored with i (right-left) and k (feet-head) reversed gives the same pixels."""
    plain = _draw(tmp_path, "plain.png")
    flipped = _draw(tmp_path, "flipped.png", direction=np.diag([-1.0, 1.0, -1.0]))
    assert np.array_equal(plain, flipped)


def test_scale_bar_length_matches_the_geometry(tmp_path):
    panels = _panels(_draw(tmp_path))
    # axial: 300 px for 100 mm, bar 20 mm (the longest of 1, 2, 5, 10, 20, 50... within a third) = 60 px;
    # coronal: 300 px for 75 mm head to feet, 100 mm wide, bar 20 mm = 80 px
    assert [_longest_white_run(p) for p in panels] == [60, 80, 80, 80]


def test_caption_names_the_study_and_the_png_keeps_the_names(tmp_path):
    ct, labels, lungs, _ = _study()
    header = Dataset()
    header.PatientID, header.StudyInstanceUID = "OQI-PHANTOM-11", UID
    header.StudyDescription, header.StudyDate = "Synthetic thorax PET/CT", "20210312"
    ct.metadata["headers"] = (header,)
    path = write_study_qc(ct, labels, tmp_path / "qc.png", lungs=lungs, title=f"OQI-PHANTOM-11/{UID}")
    names = read_qc_names(path)
    assert names == {
        "PatientID": "OQI-PHANTOM-11",
        "StudyInstanceUID": UID,
        "StudyDescription": "Synthetic thorax PET/CT",
        "StudyDate": "20210312",
    }
    assert study_caption(names, "") == "OQI-PHANTOM-11  |  Synthetic thorax PET/CT  |  2021-03-12"
    band = np.asarray(PILImage.open(path).convert("L"))[PANEL_TOP + PANEL_PX + GAP_PX :, :PANEL_PX]
    assert (band > 128).sum() > 200  # the caption is drawn


def test_caption_falls_back_to_a_shortened_uid(tmp_path):
    ct, labels, lungs, _ = _study()
    path = write_study_qc(ct, labels, tmp_path / "qc.png", lungs=lungs, title=f"OQI-PHANTOM-11/{UID}")
    assert read_qc_names(path) == {}
    assert study_caption({}, f"OQI-PHANTOM-11/{UID}") == "OQI-PHANTOM-11/...88323685"
    assert study_caption({"PatientID": "P", "StudyInstanceUID": "1.2.3"}, "") == "P/1.2.3"  # short UIDs stay


def test_non_latin_description_is_drawn_and_kept(tmp_path):
    ct, labels, lungs, _ = _study()
    header = Dataset()
    header.PatientID, header.StudyDescription = "P1", "胸部 CT"
    ct.metadata["headers"] = (header,)
    assert read_qc_names(write_study_qc(ct, labels, tmp_path / "qc.png", lungs=lungs))["StudyDescription"] == "胸部 CT"


@pytest.mark.parametrize("content", [None, b"not a picture", b"\x89PNG\r\n\x1a\n broken"])
def test_names_of_a_missing_or_broken_picture_are_empty(tmp_path, content):
    path = tmp_path / "qc.png"
    if content is not None:
        path.write_bytes(content)
    assert read_qc_names(path) == {}
