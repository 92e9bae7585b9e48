"""Real public DICOM for the tests, unpacked once from ``../shared/data``.

The archives live beside the checkout, never in the repository (several are licensed for
non-commercial use only). A test that needs one calls :func:`dataset`; when the folder is absent
(a user's fresh clone) the test is skipped with the reason, never faked.
"""

from __future__ import annotations

import functools
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
CACHE = Path(os.environ.get("ONCOQI_TEST_DATA_CACHE", Path.home() / ".cache" / "oncoqi-test-data"))


def dataset(name: str) -> Path:
    """Folder holding the unpacked ``../shared/data/<name>.tar.gz``; skips the test when absent."""
    archive = SHARED_DATA / f"{name}.tar.gz"
    if not archive.is_file():
        pytest.skip(f"real data {archive} is absent (it lives beside the checkout in ../shared/data)")
    dest = CACHE / name
    done = dest / ".unpacked"
    stamp = f"{archive.stat().st_size} {archive.stat().st_mtime_ns}"  # a changed archive is unpacked again
    if not done.is_file() or done.read_text() != stamp:
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")
        done.write_text(stamp)
    return dest


@functools.cache
def lung1_ct_and_rtstruct() -> tuple[Any, Any]:
    """LUNG1-001's CT (an :class:`oncoqi.image.Image`) and its RTSTRUCT, read once per test session.

    The RTSTRUCT test and the lung isolation's validation bar both look at this CT and its expert
    contours; reading the 134 slices and the contours takes seconds. Callers must not change them.
    Skips the test when the data is absent, as :func:`dataset` does.
    """
    from oncoqi.dicom import load_series, scan_series
    from oncoqi.dicom.rtstruct import read_rtstruct

    scan = scan_series(dataset("nsclc-radiomics-lung1-001"))
    (ct_series,) = [s for s in scan.series if s.modality == "CT"]
    (rt_series,) = [s for s in scan.series if s.modality == "RTSTRUCT"]
    return load_series(ct_series), read_rtstruct(rt_series.files[0])


@functools.cache
def lung1_label(*rois: str) -> Any:
    """``rois_to_label(rtstruct, ct, list(rois))`` on :func:`lung1_ct_and_rtstruct`, made once per session."""
    from oncoqi.dicom.rtstruct import rois_to_label

    ct, rtstruct = lung1_ct_and_rtstruct()
    return rois_to_label(rtstruct, ct, list(rois))


def dataset_or_none(name: str) -> Path | None:
    """:func:`dataset` for scripts: None, with the reason on stderr, when the data is absent
    (a benchmark, unlike a test, goes on without it)."""
    import sys

    try:
        return dataset(name)
    except pytest.skip.Exception as skipped:
        print(f"{name} skipped: {skipped}", file=sys.stderr)
        return None


def lung1_001(labels: dict[str, list[str]]) -> tuple[Any, dict[str, Any]] | None:
    """LUNG1-001's CT and the RTSTRUCT ROIs as label images on it, for the benchmark scripts.

    ``labels`` maps a name to the ROI names that make it (label ``n`` for the ``n``-th ROI, as
    :func:`oncoqi.dicom.rtstruct.rois_to_label`). None when the data is absent (:func:`dataset_or_none`).
    """
    from oncoqi.dicom import load_series, scan_series
    from oncoqi.dicom.rtstruct import read_rtstruct, rois_to_label

    root = dataset_or_none("nsclc-radiomics-lung1-001")
    if root is None:
        return None
    scan = scan_series(root)
    ct = load_series(next(s for s in scan.series if s.modality == "CT"))
    rtstruct = read_rtstruct(next(s for s in scan.series if s.modality == "RTSTRUCT").files[0])
    return ct, {name: rois_to_label(rtstruct, ct, rois) for name, rois in labels.items()}
