"""oncoqi.dicom on real archive data: geometry identical to SimpleITK/GDCM, values after rescale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from helpers.datasets import dataset
from oncoqi.dicom import check_series, load_series, scan_series


@pytest.mark.parametrize(
    ("name", "modality", "n_slices", "units"),
    [
        ("nsclc-radiomics-lung1-001", "CT", 134, "HU"),
        ("lidc-idri-1011", "CT", 133, "HU"),
        ("qin-headneck-01-0139-pet", "PT", 545, "BQML"),
        ("sts-001-pet-gml", "PT", 59, "GML"),
    ],
)
def test_real_series_match_simpleitk(name, modality, n_slices, units):
    scan = scan_series(dataset(name))
    (series,) = [s for s in scan.image_series if s.modality == modality]
    assert series.number_of_instances == n_slices
    assert check_series(series).ok
    image = load_series(series)
    # GDCM finds and orders the series' files itself (not in our order), as a reference must.
    folders = {str(Path(f).parent) for f in image.metadata["files"]}
    assert len(folders) == 1, folders
    gdcm_files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folders.pop(), series.series_uid)
    assert sorted(gdcm_files) == sorted(str(f) for f in image.metadata["files"])
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(gdcm_files)
    ref = reader.Execute()
    np.testing.assert_allclose(image.origin, ref.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(image.spacing, ref.GetSpacing(), atol=1e-3)
    np.testing.assert_allclose(image.direction.flatten(), ref.GetDirection(), atol=1e-6)
    expected = sitk.GetArrayFromImage(ref).astype(np.float64)
    np.testing.assert_allclose(image.array, expected, rtol=1e-6, atol=1e-3)
    assert image.metadata["units"] == units


def test_scan_lists_non_image_objects_without_loading_them():
    scan = scan_series(dataset("nsclc-radiomics-lung1-001"))
    modalities = sorted(s.modality for s in scan.series)
    assert modalities == ["CT", "RTSTRUCT"]
    rt = next(s for s in scan.series if s.modality == "RTSTRUCT")
    assert not rt.is_image and not check_series(rt).checked_geometry
