"""Property test: a report written by ``oncoqi.report.write_report`` reads back to what went in.

Hypothesis draws small CT grids of random size, spacing and (oblique) orientation, one to four
box-shaped segments that may overlap, may skip a slice inside themselves and leave slices of the
grid empty, packed into one or several label images, plus a RECIST long axis per segment. For
each draw the SEG must read back on the source grid into exactly the masks that went in, and
the SR into the computed volume and HU statistics (checked against numpy on the same voxels)
and the given diameters. Examples are bounded (``max_examples``, grids of at most 8x24x24) so
the test runs in about four seconds.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from oncoqi.dicom.seg import SegmentationData, SegmentationMetadata, SegmentDescription
from oncoqi.dicom.seg.codes import NAMED_CODES
from oncoqi.dicom.sr import MeasurementReportData, load_measurements
from oncoqi.dicom.write import SeriesInfo, StudyInfo, uid_from, write_series
from oncoqi.image import Image
from oncoqi.report import read_report, write_report

VOLUME = "118565006 SCT"
LONG_AXIS = "103339001 SCT"
#: Derivation codes of the HU statistics and the numpy function that gives each.
STATISTICS = {"373098007 SCT": np.mean, "255605001 SCT": np.min, "56851009 SCT": np.max, "386136009 SCT": np.std}


@st.composite
def cases(draw: st.DrawFn) -> dict:
    """A CT grid, its segments as boolean masks, how they are packed into label images, diameters."""
    shape = (draw(st.integers(3, 8)), draw(st.integers(6, 24)), draw(st.integers(6, 24)))
    spacing = tuple(draw(st.sampled_from([0.7, 1.0, 1.3, 2.5])) for _ in range(3))
    oblique = draw(st.booleans())
    angles = [draw(st.floats(-40, 40)) for _ in range(3)] if oblique else [0.0, 0.0, 0.0]
    direction = Rotation.from_euler("xyz", angles, degrees=True).as_matrix()
    masks = []
    for _ in range(draw(st.integers(1, 4))):
        lo = [draw(st.integers(0, n - 1)) for n in shape]
        hi = [draw(st.integers(a + 1, n)) for a, n in zip(lo, shape, strict=True)]
        mask = np.zeros(shape, bool)
        mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = True
        if hi[0] - lo[0] >= 3 and draw(st.booleans()):
            mask[lo[0] + 1] = False  # a gap: an empty slice inside the segment
        masks.append(mask)
    # Segment n goes into an existing label image where it overlaps nothing, unless drawn to get its own.
    files: list[int] = []
    for n, mask in enumerate(masks):
        free = [f for f in sorted(set(files)) if not any(masks[m][mask].any() for m in range(n) if files[m] == f)]
        files.append(free[0] if free and draw(st.booleans()) else len(set(files)))
    diameters = [draw(st.floats(1.0, 300.0, allow_nan=False)) for _ in masks]
    return {
        "shape": shape,
        "spacing": spacing,
        "direction": direction,
        "masks": masks,
        "files": files,
        "diameters": diameters,
        "keep_empty_frames": draw(st.booleans()),
    }


def write_case(case: dict, work: Path) -> tuple[Image, list[Image], SegmentationMetadata, dict]:
    """Write the CT series of ``case``; return it, the label images, the metadata and measurements."""
    rng = np.random.default_rng(7)
    ct = Image(
        rng.integers(-1000, 1500, case["shape"]).astype(np.int16),
        case["spacing"],
        (-20.0, 35.0, -110.0),
        case["direction"],
    )
    study = StudyInfo(study_instance_uid=uid_from("roundtrip study"), frame_of_reference_uid=uid_from("roundtrip for"))
    write_series(ct, work / "ct", modality="CT", study=study, series=SeriesInfo(series_description="round trip"))
    arrays = [np.zeros(case["shape"], np.uint8) for _ in range(max(case["files"]) + 1)]
    segments = []
    for n, (mask, f) in enumerate(zip(case["masks"], case["files"], strict=True), start=1):
        arrays[f][mask] = n
        segments.append(
            SegmentDescription(
                label=f"lesion {n}",
                category=NAMED_CODES["morphologically_abnormal_structure"],
                type=NAMED_CODES["neoplasm"],
                labels_file=f,
                label_value=n,
            )
        )
    labels = [ct.with_array(a) for a in arrays]
    groups = [
        {"segment": n, "measurements": [{"name": "recist_long_axis", "value": d}]}
        for n, d in enumerate(case["diameters"], start=1)
    ]
    return ct, labels, SegmentationMetadata(segments=segments), {"groups": groups}


# No shrinking phase: each example writes and reads real files (~0.3 s), and shrinking a failure
# would take minutes; the unshrunk failing case is still printed in full. No example database:
# it would leave a .hypothesis folder in the checkout.
@settings(
    max_examples=15,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow],
)
@given(case=cases())
def test_write_then_read_gives_the_same_masks_and_values(case: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ct, labels, meta, measurements = write_case(case, work)
        written = write_report(
            work / "ct",
            labels,
            meta,
            work / "out",
            load_measurements(measurements),
            omit_empty_frames=not case["keep_empty_frames"],
        )
        seg = read_report(written.seg_path, work / "ct")
        sr = read_report(written.sr_path)
    assert isinstance(seg, SegmentationData) and isinstance(sr, MeasurementReportData)
    assert [s.label for s in seg.metadata.segments] == [f"lesion {n}" for n in range(1, len(case["masks"]) + 1)]
    for n, mask in enumerate(case["masks"], start=1):
        back = seg.mask(n)
        assert back.same_grid(ct)
        np.testing.assert_array_equal(back.array, mask, err_msg=f"segment {n}")

    rows = sr.rows()
    for n, (mask, diameter) in enumerate(zip(case["masks"], case["diameters"], strict=True), start=1):
        values = {(r["quantity_code"], r["derivation_code"]): r["value"] for r in rows if r["segment_number"] == n}
        # the grid on file: slice spacing from the rounded (DS) positions, not the one we asked for
        assert values[(VOLUME, None)] == pytest.approx(mask.sum() * seg.labels[0].voxel_volume_ml, rel=1e-12)
        assert values[(LONG_AXIS, None)] == pytest.approx(diameter, rel=1e-12)
        hu = ct.array[mask].astype(np.float64)
        for derivation, statistic in STATISTICS.items():
            key = next(k for k in values if k[1] == derivation)
            assert values[key] == pytest.approx(float(statistic(hu)), rel=1e-12, abs=1e-9), derivation
        assert len(values) == 2 + len(STATISTICS)
