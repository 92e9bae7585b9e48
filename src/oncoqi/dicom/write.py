"""Write an :class:`~oncoqi.image.Image` as a single-frame CT or PET DICOM series.

One file per slice, explicit VR little endian with a file meta header, every Type 1 and Type 2
attribute of the modules that the CT Image and PET Image IODs require, and the geometry taken
from the image (any orthonormal direction). The writer is deterministic: unless given, the
series and SOP instance UIDs are derived from the study UID and the content with
``pydicom.uid.generate_uid(entropy_srcs=...)``, so the same input writes the same bytes.

Tests of the readers use the same writer to make deliberately broken series: ``extra_tags``
sets attributes on every slice, ``slice_overrides`` changes (or, with ``None``, deletes)
attributes of chosen slices, and ``edit`` is called with each finished dataset last.

Pixel encoding
--------------
CT
    Hounsfield units rounded to signed 16-bit integers; RescaleSlope 1, RescaleIntercept 0.
PT
    Per-slice RescaleSlope chosen so that the slice maximum uses the full 16-bit range
    (unsigned when the series has no negative value, signed otherwise); RescaleIntercept 0,
    as the PET Image module requires. The slope written is the one used to quantise, so
    ``stored * RescaleSlope`` reproduces the value to half a quantisation step.
"""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from math import log
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import format_number_as_ds

from oncoqi.atomic import save_dataset
from oncoqi.errors import GeometryError, InputError
from oncoqi.image import Image

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128"

SOP_CLASS = {"CT": CT_IMAGE_STORAGE, "PT": PET_IMAGE_STORAGE}

#: Half-life of fluorine-18 in seconds (DICOM PS3.16 / NUDAT).
F18_HALF_LIFE_S = 6586.2


@dataclass(frozen=True)
class Code:
    """A coded concept: (value, scheme designator, meaning)."""

    value: str
    scheme: str
    meaning: str

    def to_dataset(self) -> Dataset:
        """The code as a sequence item."""
        item = Dataset()
        item.CodeValue = self.value
        item.CodingSchemeDesignator = self.scheme
        item.CodeMeaning = self.meaning
        return item


FLUORINE_18 = Code("77004003", "SCT", "^18^Fluorine")
FDG = Code("35321007", "SCT", "Fluorodeoxyglucose F^18^")
RECUMBENT = Code("102538003", "SCT", "recumbent")
SUPINE = Code("40199007", "SCT", "supine")
HEADFIRST = Code("102540008", "SCT", "headfirst")


@dataclass(frozen=True)
class StudyInfo:
    """Patient and study attributes shared by every series of one study.

    Parameters
    ----------
    study_instance_uid, frame_of_reference_uid
        UIDs shared by all series of the study (PET and CT of one PET/CT share both).
    study_datetime
        Study date and time; also the default for series and acquisition times.
    patient_weight_kg, patient_size_m
        Written to Patient Study; SUV needs the weight (and SUVlbm/bsa the size and sex).
    patient_sex
        ``"M"``, ``"F"``, ``"O"`` or ``""`` (unknown).
    patient_birth_date, patient_age
        ``YYYYMMDD`` and ``nnnY``; empty when unknown.
    body_part_examined
        BodyPartExamined of every series; Laterality is not written, so it must name an
        unpaired part (CHEST, ABDOMEN, ...), as validators require.
    """

    study_instance_uid: str
    frame_of_reference_uid: str
    study_datetime: datetime = datetime(2020, 1, 1, 9, 0, 0)
    patient_name: str = "Anonymous^Patient"
    patient_id: str = "ANON"
    patient_birth_date: str = ""
    patient_sex: str = ""
    patient_age: str = ""
    patient_weight_kg: float | None = None
    patient_size_m: float | None = None
    study_id: str = "1"
    accession_number: str = ""
    study_description: str = ""
    referring_physician_name: str = ""
    manufacturer: str = "OncoQI"
    manufacturer_model_name: str = "OncoQI"
    institution_name: str = ""
    device_serial_number: str = "0"
    software_versions: str = "oncoqi"
    body_part_examined: str = "CHEST"

    @classmethod
    def from_value(cls, value: StudyInfo | Mapping[str, Any]) -> StudyInfo:
        """Accept a StudyInfo or a mapping of its field names.

        Raises
        ------
        InputError
            When the mapping names a field that does not exist or lacks a required UID.
        """
        if isinstance(value, StudyInfo):
            return value
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise InputError(f"study information has unknown field(s) {unknown}; known: {sorted(known)}")
        try:
            return cls(**value)
        except TypeError as exc:
            raise InputError(f"study information is incomplete: {exc}") from exc


@dataclass(frozen=True)
class PetInfo:
    """Radiopharmaceutical and acquisition facts of a PET series (what SUV needs).

    Parameters
    ----------
    injected_dose_bq
        RadionuclideTotalDose at ``injection_datetime``.
    injection_datetime
        RadiopharmaceuticalStartDateTime (and StartTime).
    half_life_s
        RadionuclideHalfLife.
    frame_duration_s
        ActualFrameDuration of the (static) frame; sets DecayFactor and FrameReferenceTime.
    """

    injected_dose_bq: float
    injection_datetime: datetime
    half_life_s: float = F18_HALF_LIFE_S
    radionuclide: Code = FLUORINE_18
    radiopharmaceutical_code: Code = FDG
    radiopharmaceutical: str = "Fluorodeoxyglucose"
    positron_fraction: float = 0.9673
    frame_duration_s: float = 180.0
    units: str = "BQML"
    decay_correction: str = "START"
    corrected_image: tuple[str, ...] = ("DECY", "ATTN")
    counts_source: str = "EMISSION"
    series_type: tuple[str, str] = ("STATIC", "IMAGE")
    reconstruction_method: str = "OSEM"

    @property
    def decay_factor(self) -> float:
        """Factor that turns the frame-average activity into activity at frame start.

        For a frame of duration T and decay constant l it is ``l T / (1 - exp(-l T))``.
        """
        lam = log(2.0) / self.half_life_s
        lt = lam * self.frame_duration_s
        return lt / -np.expm1(-lt) if lt > 0 else 1.0

    @property
    def frame_reference_time_ms(self) -> float:
        """Time after frame start at which the activity equals the frame average (ms)."""
        return log(self.decay_factor) / (log(2.0) / self.half_life_s) * 1000.0


SliceEdit = Callable[[Dataset, int], None]


@dataclass(frozen=True)
class SeriesInfo:
    """General Series attributes of one written series (and its slice thickness).

    Parameters
    ----------
    series_number, series_description
        General Series attributes.
    series_uid
        SeriesInstanceUID; by default derived from the study UID, modality, series number,
        description, geometry and voxel values, so rewriting the same image gives the same UIDs.
    series_datetime
        SeriesDate/Time and (for PET, the decay-correction reference) AcquisitionDate/Time;
        defaults to the study date and time.
    slice_thickness
        SliceThickness in mm; defaults to the slice spacing.
    """

    series_number: int = 1
    series_description: str = ""
    series_uid: str | None = None
    series_datetime: datetime | None = None
    slice_thickness: float | None = None


@dataclass(frozen=True)
class DatasetEdits:
    """Changes made to every finished slice dataset (how tests write deliberately broken series).

    Parameters
    ----------
    extra_tags
        ``keyword: value`` set on every slice after the standard attributes.
    slice_overrides
        ``{slice index: {keyword: value}}`` applied after ``extra_tags``; a value of ``None``
        deletes the attribute (to write deliberately broken series).
    edit
        Called as ``edit(dataset, slice_index)`` last, before saving.
    """

    extra_tags: Mapping[str, Any] | None = None
    slice_overrides: Mapping[int, Mapping[str, Any]] | None = None
    edit: SliceEdit | None = None


def uid_from(*parts: object) -> str:
    """A deterministic DICOM UID derived from ``parts`` (same parts, same UID)."""
    return generate_uid(entropy_srcs=[str(p) for p in parts])


def ds_str(value: float) -> str:
    """``value`` as a valid DS string (at most 16 characters, tiny noise removed)."""
    value = float(value)
    rounded = round(value, 9)
    if rounded == 0:
        rounded = 0.0  # also turns -0.0 into 0.0
    return format_number_as_ds(rounded)


def da(when: datetime) -> str:
    """DICOM DA string."""
    return when.strftime("%Y%m%d")


def tm(when: datetime) -> str:
    """DICOM TM string, with fractional seconds only when present."""
    text = when.strftime("%H%M%S")
    return f"{text}.{when.microsecond:06d}" if when.microsecond else text


def dt(when: datetime) -> str:
    """DICOM DT string (no time zone)."""
    return da(when) + tm(when)


def write_series(
    image: Image,
    out_dir: str | os.PathLike[str],
    *,
    modality: Literal["CT", "PT"],
    study: StudyInfo | Mapping[str, Any],
    series: SeriesInfo | None = None,
    pet: PetInfo | None = None,
    edits: DatasetEdits | None = None,
) -> list[Path]:
    """Write ``image`` as one single-frame DICOM file per slice.

    Parameters
    ----------
    image
        The volume: HU for CT, activity concentration (e.g. Bq/ml) for PT. Slices are along
        the third axis; any orthonormal direction is written as it is.
    out_dir
        Folder for the files (created). Files are named ``<SOPInstanceUID>.dcm``.
    modality
        ``"CT"`` (CT Image Storage) or ``"PT"`` (PET Image Storage).
    study
        Patient/study attributes and UIDs, as :class:`StudyInfo` or a mapping of its fields.
    series
        Series number, description, UID, date/time and slice thickness (:class:`SeriesInfo`;
        by default its defaults).
    pet
        Required for ``"PT"``: radiopharmaceutical, dose and frame facts.
    edits
        Extra tags, per-slice overrides and a last edit of each dataset (:class:`DatasetEdits`;
        by default none).

    Returns
    -------
    list of Path
        The files written, in slice order.

    Raises
    ------
    InputError
        Unknown modality, missing PET information, or an unknown keyword in the overrides.
    GeometryError
        When the direction matrix is not orthonormal (DICOM cannot describe it).
    """
    series = series or SeriesInfo()
    info = _checked_request(image, modality, study, series, pet)
    when = series.series_datetime or info.study_datetime
    series_uid = series.series_uid
    if series_uid is None:
        series_uid = uid_from(
            info.study_instance_uid,
            modality,
            series.series_number,
            series.series_description,
            _content_digest(image),
        )
    pixels, slopes = _encode_pixels(image.array, modality)
    shared = _series_dataset(image, info, modality, series.series_number, series.series_description, series_uid, when)
    shared.SliceThickness = ds_str(series.slice_thickness if series.slice_thickness is not None else image.spacing[2])
    if modality == "PT":
        assert pet is not None
        _add_pet_series(shared, pet, n_slices=image.array.shape[0])
    else:
        _add_ct_image(shared)
    return _write_slices(shared, image, series_uid, pixels, slopes, Path(out_dir), edits or DatasetEdits())


def _checked_request(
    image: Image, modality: str, study: StudyInfo | Mapping[str, Any], series: SeriesInfo, pet: PetInfo | None
) -> StudyInfo:
    """Refuse what DICOM or the writer cannot describe before anything is written; the study as a StudyInfo."""
    if modality not in SOP_CLASS:
        raise InputError(f"cannot write modality {modality!r}: only 'CT' and 'PT' are supported")
    if modality == "PT" and pet is None:
        raise InputError("writing a PET series needs the PET information (dose, injection time)")
    info = StudyInfo.from_value(study)
    direction = np.asarray(image.direction, dtype=float)
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-6):
        raise GeometryError(f"cannot write series {series.series_description!r}: direction matrix is not orthonormal")
    return info


def _write_slices(
    shared: Dataset,
    image: Image,
    series_uid: str,
    pixels: np.ndarray,
    slopes: list[float],
    out: Path,
    edits: DatasetEdits,
) -> list[Path]:
    """Save one file per slice, each edit applied in its documented order, so tests can break chosen slices."""
    out.mkdir(parents=True, exist_ok=True)
    overrides = edits.slice_overrides or {}
    paths = []
    for k in range(image.array.shape[0]):
        ds = _slice_dataset(shared, image, k, series_uid, pixels[k], slopes[k])
        _apply(ds, edits.extra_tags or {}, where=f"extra_tags of slice {k}")
        _apply(ds, overrides.get(k, {}), where=f"slice_overrides[{k}]")
        if edits.edit is not None:
            edits.edit(ds, k)
        paths.append(_save_with_file_meta(ds, out))
    return paths


def _content_digest(image: Image) -> str:
    """Short digest of voxel values and geometry, for deterministic default UIDs."""
    h = hashlib.sha256(np.ascontiguousarray(image.array).tobytes())
    h.update(np.asarray([*image.spacing, *image.origin, *image.direction.ravel()], dtype=float).tobytes())
    return h.hexdigest()[:32]


def _encode_pixels(array: np.ndarray, modality: str) -> tuple[np.ndarray, list[float]]:
    """Quantise the volume to 16-bit stored values and per-slice rescale slopes."""
    values = np.asarray(array, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise InputError("cannot write an image with NaN or infinite voxel values")
    if modality == "CT":
        stored = np.clip(np.rint(values), -32768, 32767).astype(np.int16)
        return stored, [1.0] * values.shape[0]
    signed = bool(values.min() < 0)
    top = 32767 if signed else 65535
    dtype = np.int16 if signed else np.uint16
    stored = np.empty(values.shape, dtype=dtype)
    slopes = []
    for k, plane in enumerate(values):
        peak = float(np.abs(plane).max())
        # the slope is rounded to its DS text first, so that it is exactly the one written
        slope = float(ds_str(peak / top)) if peak > 0 else 1.0
        stored[k] = np.clip(np.rint(plane / slope), -top - 1 if signed else 0, top).astype(dtype)
        slopes.append(slope)
    return stored, slopes


def _series_dataset(
    image: Image,
    info: StudyInfo,
    modality: str,
    series_number: int,
    series_description: str,
    series_uid: str,
    when: datetime,
) -> Dataset:
    """Attributes that every slice of the series shares."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = SOP_CLASS[modality]
    # Patient
    ds.PatientName = info.patient_name
    ds.PatientID = info.patient_id
    ds.PatientBirthDate = info.patient_birth_date
    ds.PatientSex = info.patient_sex
    # General Study / Patient Study
    ds.StudyInstanceUID = info.study_instance_uid
    ds.StudyDate = da(info.study_datetime)
    ds.StudyTime = tm(info.study_datetime)
    ds.ReferringPhysicianName = info.referring_physician_name
    ds.StudyID = info.study_id
    ds.AccessionNumber = info.accession_number
    if info.study_description:
        ds.StudyDescription = info.study_description
    if info.patient_age:
        ds.PatientAge = info.patient_age
    if info.patient_size_m is not None:
        ds.PatientSize = ds_str(info.patient_size_m)
    if info.patient_weight_kg is not None:
        ds.PatientWeight = ds_str(info.patient_weight_kg)
    # General Series
    ds.Modality = modality
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = int(series_number)
    ds.SeriesDate = da(when)
    ds.SeriesTime = tm(when)
    if series_description:
        ds.SeriesDescription = series_description
    if modality == "CT":  # PET states it in PatientOrientationCodeSequence instead
        ds.PatientPosition = "HFS"
    ds.BodyPartExamined = info.body_part_examined
    # Frame of Reference
    ds.FrameOfReferenceUID = info.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    # General Equipment
    ds.Manufacturer = info.manufacturer
    ds.ManufacturerModelName = info.manufacturer_model_name
    if info.institution_name:
        ds.InstitutionName = info.institution_name
    ds.DeviceSerialNumber = info.device_serial_number
    ds.SoftwareVersions = info.software_versions
    # General Image / General Acquisition
    ds.ContentDate = da(when)
    ds.ContentTime = tm(when)
    ds.AcquisitionDate = da(when)
    ds.AcquisitionTime = tm(when)
    ds.AcquisitionNumber = 1
    ds.InstanceCreationDate = da(when)
    ds.InstanceCreationTime = tm(when)
    # Image Plane (shared part)
    d = image.direction
    ds.ImageOrientationPatient = [ds_str(v) for v in (*d[:, 0], *d[:, 1])]
    ds.PixelSpacing = [ds_str(image.spacing[1]), ds_str(image.spacing[0])]  # row, column spacing
    ds.SpacingBetweenSlices = ds_str(image.spacing[2])
    # Image Pixel
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = image.array.shape[1]
    ds.Columns = image.array.shape[2]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.RescaleIntercept = "0"
    return ds


def _add_ct_image(ds: Dataset) -> None:
    """CT Image module attributes (beyond the pixel description)."""
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.KVP = "120"
    ds.ConvolutionKernel = "STANDARD"
    ds.PixelRepresentation = 1


def _add_pet_series(ds: Dataset, pet: PetInfo, n_slices: int) -> None:
    """PET Series, PET Isotope, NM/PET Patient Orientation and PET Image attributes."""
    ds.Units = pet.units
    ds.CountsSource = pet.counts_source
    ds.SeriesType = list(pet.series_type)
    ds.NumberOfSlices = n_slices
    ds.CorrectedImage = list(pet.corrected_image)
    ds.DecayCorrection = pet.decay_correction
    ds.RandomsCorrectionMethod = "DLYD"
    ds.AttenuationCorrectionMethod = "CT"
    ds.ReconstructionMethod = pet.reconstruction_method
    ds.CollimatorType = "NONE"
    ds.AxialAcceptance = "0"
    # PET Isotope
    radio = Dataset()
    radio.Radiopharmaceutical = pet.radiopharmaceutical
    radio.RadiopharmaceuticalStartTime = tm(pet.injection_datetime)
    radio.RadiopharmaceuticalStartDateTime = dt(pet.injection_datetime)
    radio.RadionuclideTotalDose = ds_str(pet.injected_dose_bq)
    radio.RadionuclideHalfLife = ds_str(pet.half_life_s)
    radio.RadionuclidePositronFraction = ds_str(pet.positron_fraction)
    radio.RadionuclideCodeSequence = DicomSequence([pet.radionuclide.to_dataset()])
    radio.RadiopharmaceuticalCodeSequence = DicomSequence([pet.radiopharmaceutical_code.to_dataset()])
    ds.RadiopharmaceuticalInformationSequence = DicomSequence([radio])
    # NM/PET Patient Orientation (head first supine)
    orientation = RECUMBENT.to_dataset()
    orientation.PatientOrientationModifierCodeSequence = DicomSequence([SUPINE.to_dataset()])
    ds.PatientOrientationCodeSequence = DicomSequence([orientation])
    ds.PatientGantryRelationshipCodeSequence = DicomSequence([HEADFIRST.to_dataset()])
    # PET Image
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.FrameReferenceTime = ds_str(pet.frame_reference_time_ms)
    ds.ActualFrameDuration = int(round(pet.frame_duration_s * 1000))
    ds.DecayFactor = ds_str(pet.decay_factor)


def _slice_dataset(shared: Dataset, image: Image, k: int, series_uid: str, pixels: np.ndarray, slope: float) -> Dataset:
    """The dataset of slice ``k``: shared attributes plus position, UIDs and pixels."""
    ds = copy.deepcopy(shared)  # an edit of one slice's sequences must not reach the others
    ds.SOPInstanceUID = uid_from(series_uid, k)
    ds.InstanceNumber = k + 1
    position = image.index_to_lps(np.array([0.0, 0.0, float(k)]))
    normal = image.direction[:, 2]
    ds.ImagePositionPatient = [ds_str(v) for v in position]
    ds.SliceLocation = ds_str(float(position @ normal))
    if ds.Modality == "PT":
        ds.ImageIndex = k + 1
        ds.RescaleSlope = ds_str(slope)
    ds.PixelRepresentation = 1 if pixels.dtype == np.int16 else 0
    ds.SmallestImagePixelValue = int(pixels.min())
    ds.LargestImagePixelValue = int(pixels.max())
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    return ds


def _apply(ds: Dataset, tags: Mapping[str, Any], where: str) -> None:
    """Set (or delete, for ``None``) attributes given by keyword."""
    for keyword, value in tags.items():
        if pydicom.datadict.tag_for_keyword(keyword) is None:
            raise InputError(f"{where}: {keyword!r} is not a DICOM keyword")
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)


def _save_with_file_meta(ds: Dataset, out: Path) -> Path:
    """Add the file meta header and save under a temporary name, then rename."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "ONCOQI"
    ds.file_meta = meta
    return save_dataset(ds, out / f"{ds.SOPInstanceUID}.dcm")


__all__ = [
    "CT_IMAGE_STORAGE",
    "F18_HALF_LIFE_S",
    "FDG",
    "FLUORINE_18",
    "PET_IMAGE_STORAGE",
    "Code",
    "DatasetEdits",
    "PetInfo",
    "SeriesInfo",
    "StudyInfo",
    "da",
    "ds_str",
    "dt",
    "tm",
    "uid_from",
    "write_series",
]
