"""LIDC-IDRI reader XML: outlines to masks, readers grouped into nodules, consensus labels."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from helpers.datasets import dataset
from oncoqi.dicom import read_image
from oncoqi.dicom.lidc import LidcError, consensus_label, nodule_mask, read_lidc_xml
from oncoqi.image import Image

HEADER = """<?xml version="1.0" encoding="UTF-8"?>
<LidcReadMessage xmlns="http://www.nih.gov"><ResponseHeader><SeriesInstanceUid>1.2.3</SeriesInstanceUid>
</ResponseHeader>{sessions}</LidcReadMessage>"""


def _roi(z: float, points: list[tuple[int, int]], inclusion: bool = True) -> str:
    edges = "".join(f"<edgeMap><xCoord>{x}</xCoord><yCoord>{y}</yCoord></edgeMap>" for x, y in points)
    return (
        f"<roi><imageZposition>{z}</imageZposition><imageSOP_UID>1.2.3.{z}</imageSOP_UID>"
        f"<inclusion>{'TRUE' if inclusion else 'FALSE'}</inclusion>{edges}</roi>"
    )


def _session(nodules: list[tuple[str, list[str]]]) -> str:
    body = "".join(
        f"<unblindedReadNodule><noduleID>{nid}</noduleID><characteristics><malignancy>3</malignancy>"
        f"</characteristics>{''.join(rois)}</unblindedReadNodule>"
        for nid, rois in nodules
    )
    return f"<readingSession><servicingRadiologistID>anon</servicingRadiologistID>{body}</readingSession>"


def _square(x0: int, y0: int, x1: int, y1: int) -> list[tuple[int, int]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


@pytest.fixture
def ct() -> Image:
    return Image(np.zeros((4, 32, 32), dtype=np.int16), (0.7, 0.7, 2.5), (-10.0, -10.0, -5.0))


def test_outline_boundary_included_and_exclusion_cut(tmp_path, ct):
    sessions = _session(
        [("a", [_roi(-5.0, _square(4, 6, 13, 15)), _roi(-5.0, _square(7, 9, 10, 12), inclusion=False)])]
    )
    (tmp_path / "r.xml").write_text(HEADER.format(sessions=sessions))
    readings = read_lidc_xml(tmp_path / "r.xml")
    mask = nodule_mask(readings.outlined[0], ct)
    assert mask[0, 6, 4] and mask[0, 15, 13]  # boundary pixels (row = y, column = x) belong to the nodule
    assert not mask[0, 10, 8]  # inside the exclusion outline
    assert mask[1:].sum() == 0
    assert mask.sum() == 10 * 10 - 2 * 2  # 10x10 square with its boundary, minus the 2x2 hole interior


def test_readers_grouped_duplicates_read_once_and_consensus(tmp_path, ct):
    s1 = _session([("n1", [_roi(-2.5, _square(2, 2, 9, 9))]), ("far", [_roi(0.0, _square(20, 20, 25, 25))])])
    s2 = _session([("x", [_roi(-2.5, _square(4, 4, 11, 11))])])
    (tmp_path / "a.xml").write_text(HEADER.format(sessions=s1 + s2))
    (tmp_path / "b.xml").write_text(HEADER.format(sessions=s1))  # the same session repeated in another file
    readings = read_lidc_xml(tmp_path)
    assert readings.readers == 2 and len(readings.outlined) == 3
    label = consensus_label(readings, ct, level=1.0)
    assert [n["readers"] for n in label.metadata["nodules"]] == [2, 1]
    assert (label.array == 1).sum() == 6 * 6  # intersection of the two squares (x, y in 4..9)
    assert (label.array[2] == 2).sum() == 6 * 6
    only_agreed = consensus_label(readings, ct, min_readers=2)
    assert only_agreed.array.max() == 1


def test_bad_xml_and_mismatched_slices(tmp_path, ct):
    (tmp_path / "bad.xml").write_text("<html>")
    with pytest.raises(LidcError, match="bad.xml"):
        read_lidc_xml(tmp_path / "bad.xml")
    (tmp_path / "off.xml").write_text(HEADER.format(sessions=_session([("n", [_roi(-3.7, _square(2, 2, 5, 5))])])))
    readings = read_lidc_xml(tmp_path / "off.xml")
    with pytest.raises(LidcError, match="z = -3.7 mm matches no slice"):
        nodule_mask(readings.outlined[0], ct)


def test_lidc_1011_three_nodules_by_four_readers():
    folder = dataset("lidc-idri-1011")
    ct = read_image(folder)
    readings = read_lidc_xml(sorted(folder.rglob("*.xml")))
    assert readings.readers == 4 and readings.series_uid == ct.metadata["series_uid"]
    label = consensus_label(readings, ct, min_readers=3)
    assert [n["readers"] for n in label.metadata["nodules"]] == [4, 4, 4]
    for n in (1, 2, 3):
        inside = label.array == n
        volume = inside.sum() * ct.voxel_volume_ml
        assert 2.0 <= volume <= 7.5  # the README: three nodules of about 2-7 ml
        # A nodule is denser than the lung around it: with x and y swapped the contrast of these
        # masks drops from 235-520 HU to below 70 HU (measured), so this checks the axes.
        ring = ndimage.binary_dilation(inside, structure=np.ones((1, 3, 3)), iterations=3) & ~inside
        assert ct.array[inside].mean() - ct.array[ring].mean() > 150
