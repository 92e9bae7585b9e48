"""PET helpers of the tests: synthetic PET headers and series, the SUVbw factor by its
definition, the real PET series of ``../shared/data``, ``oncoqi pet`` run in-process, and the
PET/CT phantom study of known activity."""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence

from helpers.datasets import dataset
from oncoqi.pet import cli as pet_cli
from oncoqi.pet import load_pet_series
from oncoqi.pet.series import PETSeries
from oncoqi.phantom import PhantomOptions, TumourSpec

F18_HALF_LIFE = 6586.2  # s, as written by scanners (109.77 min)
PET_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.128"

# --------------------------------------------------------------------------- real data


@functools.cache
def _load_cached(name: str) -> PETSeries:
    root = dataset(name)
    return load_pet_series(root)


def load_qin() -> PETSeries:
    """QIN-HEADNECK-01-0139 PET (545 slices), loaded once per test session."""
    return _load_cached("qin-headneck-01-0139-pet")


def load_sts() -> PETSeries:
    """STS_001 PET (59 slices, Units GML)."""
    return _load_cached("sts-001-pet-gml")


# --------------------------------------------------------------------------- synthetic series


def make_pet(
    n: int = 3,
    *,
    units: str = "BQML",
    decay: str | None = "START",
    series_date: str = "20240101",
    series_time: str = "100000",
    acquisition_times: list[str] | None = None,
    start_time: str | None = "090000",
    start_datetime: str | None = None,
    dose: float | None = 370e6,
    half_life: float = F18_HALF_LIFE,
    weight: str | None = "80",
    size: str | None = "1.80",
    sex: str | None = "M",
    corrected: list[str] | None = None,
) -> list[Dataset]:
    """Headers of an ``n``-slice PET series with the given attributes (None = absent)."""
    series_uid = pydicom.uid.generate_uid()
    out = []
    for k in range(n):
        ds = Dataset()
        ds.Modality = "PT"
        ds.SOPClassUID = PET_SOP_CLASS
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.SeriesInstanceUID = series_uid
        ds.StudyInstanceUID = "1.2.3.4"
        ds.SeriesDate = series_date
        ds.SeriesTime = series_time
        ds.AcquisitionDate = series_date
        ds.AcquisitionTime = acquisition_times[k] if acquisition_times else series_time
        ds.Units = units
        if decay is not None:
            ds.DecayCorrection = decay
        ds.CorrectedImage = corrected if corrected is not None else ["ATTN", "DECY"]
        for kw, v in (("PatientWeight", weight), ("PatientSize", size), ("PatientSex", sex)):
            if v is not None:
                setattr(ds, kw, v)
        item = Dataset()
        if start_time is not None:
            item.RadiopharmaceuticalStartTime = start_time
        if start_datetime is not None:
            item.RadiopharmaceuticalStartDateTime = start_datetime
        if dose is not None:
            item.RadionuclideTotalDose = f"{dose:.6g}"
        item.RadionuclideHalfLife = str(half_life)
        ds.RadiopharmaceuticalInformationSequence = Sequence([item])
        ds.RescaleSlope = "1"
        ds.RescaleIntercept = "0"
        out.append(ds)
    return out


def bw_factor(weight_kg: float, dose: float, dt_s: float, half_life: float = F18_HALF_LIFE) -> float:
    """SUVbw factor by its definition: grams over the dose decayed by ``dt_s`` seconds."""
    return weight_kg * 1000.0 / (dose * 2.0 ** (-dt_s / half_life))


def write_pet_series(folder: Path, values_bqml: np.ndarray, spacing, origin) -> list[pydicom.Dataset]:
    """Write a BQML PET series (one int16 file per slice, each with its own Rescale Slope)."""
    nk, nj, ni = values_bqml.shape
    headers = make_pet(nk)
    folder.mkdir(parents=True, exist_ok=True)
    for k, ds in enumerate(headers):
        ds.RescaleSlope = f"{float(np.abs(values_bqml[k]).max()) / 32000.0:.10g}"
        slope = float(ds.RescaleSlope)
        stored = np.round(values_bqml[k] / slope).astype(np.int16)
        values_bqml[k] = stored * slope  # the exact values the files hold
        ds.ImagePositionPatient = [origin[0], origin[1], origin[2] + k * spacing[2]]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [spacing[1], spacing[0]]
        ds.SliceThickness = spacing[2]
        ds.Rows, ds.Columns = nj, ni
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = stored.tobytes()
        ds.PatientID = "SYNTH"
        ds.InstanceNumber = k + 1
        ds.FrameOfReferenceUID = "1.2.3.4.5"
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
        ds.file_meta = meta
        ds.save_as(folder / f"slice{k:03d}.dcm", enforce_file_format=True)
    return headers


# --------------------------------------------------------------------------- command line


def run_cli(*argv: str) -> tuple[int, str]:
    """Run ``oncoqi pet ...`` through the family's own parser; returns (exit code, stdout)."""
    parser = argparse.ArgumentParser(prog="oncoqi")
    sub = parser.add_subparsers(dest="command")
    pet_cli.add_parser(sub)
    args = parser.parse_args(list(argv))
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = args.func(args)
    return code, buf.getvalue()


# --------------------------------------------------------------------------- PET/CT phantom study

TUMOUR_SUV = 8.0
TUMOUR_ML = 25.0


def options(blur: float) -> PhantomOptions:
    """The PET/CT phantom study: one round tumour of ``TUMOUR_ML`` ml and SUV ``TUMOUR_SUV`` in
    the lung parenchyma, no CT noise or blur, a PET resolution blur of ``blur`` mm FWHM and no
    PET noise."""
    return PhantomOptions(
        seed=3,
        size=128,
        slices=60,
        noise_hu=0.0,
        blur_mm=0.0,
        pet_blur_mm=blur,
        pet_noise=0.0,
        tumours=(TumourSpec(volume_ml=TUMOUR_ML, shape="round", location="parenchyma", suv=TUMOUR_SUV),),
    )
