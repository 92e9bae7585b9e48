"""The SUV normalisation as a DICOM Real World Value Mapping (RWVM) object, and its application.

QIICR's PET DICOM extension stores the SUV factors of a PET series in a Real World Value Mapping
instance (SOP Class 1.2.840.10008.5.1.4.1.1.67, Modality ``RWV``) that lives beside the PET in
the DICOM database, so that every later measurement (a TID 1500 SR) can cite exactly which
normalisation it used. We do the same, with one difference that follows the standard: a Real
World Value Mapping maps **stored** pixel values (PS3.3 C.7.6.16.2.11.1:
``RWV = stored * RealWorldValueSlope + RealWorldValueIntercept``), so each mapping folds in the
frame's Rescale Slope/Intercept:

``RealWorldValueSlope_k = RescaleSlope_k * f_k`` and
``RealWorldValueIntercept_k = RescaleIntercept_k * f_k``

where ``f_k`` is the SUV factor of frame ``k`` (see :mod:`oncoqi.pet.suv`). Frames that share
slope, intercept and factors share one item of the Referenced Image Real World Value Mapping
Sequence; each item holds one mapping per SUV flavour that could be computed (SUVbw, SUL,
SUVbsa), each with its UCUM unit, its quantity (DCM 126401/126405/126403) and its calculation
method (DCM 126410/126411/126412). (QIICR's Slicer plugin instead multiplies the rescaled volume
by the slope, which agrees with this only when every Rescale Slope is 1.)

The object is built with pydicom, the mapping items with :class:`highdicom.pm.RealWorldValueMapping`;
it has the modules of the RWVM IOD (PS3.3 A.46): Patient, General Study, Patient Study, RWVM
Series, General Equipment, RWVM, SOP Common, and the Common Instance Reference module naming the
PET series and its instances.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom
from highdicom.pm import RealWorldValueMapping
from highdicom.sr import CodeContentItem, CodedConcept
from pydicom import config
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import validate_value

from oncoqi import __version__
from oncoqi.atomic import save_dataset
from oncoqi.errors import InputError
from oncoqi.image import Image
from oncoqi.pet.enums import SUVType
from oncoqi.pet.suv import SUVFactors

#: SOP Class UID of Real World Value Mapping Storage.
RWVM_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.67"

_MEASUREMENT_METHOD = CodedConcept("370129005", "SCT", "Measurement Method")

#: Attributes copied from the PET: Patient, General Study and Patient Study modules.
_COPIED = (
    "SpecificCharacterSet",
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientIdentityRemoved",
    "DeidentificationMethod",
    "DeidentificationMethodCodeSequence",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "StudyDescription",
    "PatientAge",
    "PatientSize",
    "PatientWeight",
    "Laterality",
    "BodyPartExamined",
)
#: Body Part Examined values (CID 4031) of paired structures, for which General Series Laterality
#: (Type 2C) is required; for any other known body part it must be absent.
PAIRED_BODY_PARTS = frozenset(
    {
        "BREAST",
        "EYE",
        "EAR",
        "KIDNEY",
        "ADRENAL",
        "OVARY",
        "TESTIS",
        "LUNG",
        "CLAVICLE",
        "SCAPULA",
        "SHOULDER",
        "ARM",
        "ELBOW",
        "FOREARM",
        "WRIST",
        "HAND",
        "HIP",
        "THIGH",
        "KNEE",
        "LEG",
        "ANKLE",
        "FOOT",
        "EXTREMITY",
    }
)
_TYPE2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)


def _stored_range(ds: Dataset) -> tuple[int, int, str]:
    bits = int(ds.get("BitsStored", 16) or 16)
    if int(ds.get("PixelRepresentation", 0) or 0) == 1:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1, "SS"
    return 0, 2**bits - 1, "US"


def _valid_copy(elem: pydicom.DataElement) -> pydicom.DataElement | None:
    """A copy of a PET attribute, cut to its VR's maximum length when the PET's value is too long.

    Some PET series carry over-long values (e.g. an 18-character Study ID, SH allows 16); the
    RWVM must still be valid, so such values are truncated. None when the value stays invalid.
    """
    elem = copy.deepcopy(elem)
    if elem.VR == "SQ":
        return elem
    try:
        validate_value(elem.VR, elem.value, config.RAISE)
        return elem
    except ValueError:
        pass
    limits = {"SH": 16, "LO": 64, "CS": 16, "ST": 1024, "LT": 10240, "AS": 4}
    if elem.VR in limits and isinstance(elem.value, str):
        elem.value = elem.value[: limits[elem.VR]].rstrip()
        try:
            validate_value(elem.VR, elem.value, config.RAISE)
            return elem
        except ValueError:
            return None
    return None


def _mapping(suv_type: SUVType, slope: float, intercept: float, value_range: tuple[int, int], vr: str) -> Dataset:
    item = RealWorldValueMapping(
        lut_label=suv_type.label,
        lut_explanation=suv_type.meaning,
        unit=suv_type.unit_code,
        value_range=value_range,
        slope=slope,
        intercept=intercept,
        quantity_definition=suv_type.quantity_code,
    )
    item.QuantityDefinitionSequence.append(
        CodeContentItem(name=_MEASUREMENT_METHOD, value=CodedConcept(*suv_type.method_code))
    )
    item["RealWorldValueFirstValueMapped"].VR = vr
    item["RealWorldValueLastValueMapped"].VR = vr
    return item


def _ref(ds: Dataset) -> Dataset:
    r = Dataset()
    r.ReferencedSOPClassUID = ds.SOPClassUID
    r.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    return r


@dataclass(frozen=True)
class RWVMOptions:
    """The identity and descriptive attributes of a new RWVM instance (:func:`build_rwvm`).

    Attributes
    ----------
    series_instance_uid, sop_instance_uid
        UIDs of the new object (generated when not given).
    series_number, series_description, content_creator
        Descriptive attributes of the new series and instance.
    now
        Creation date-time (for reproducible output); default the current time.
    """

    series_instance_uid: str | None = None
    sop_instance_uid: str | None = None
    series_number: int = 901
    series_description: str = "PET SUV factors"
    content_creator: str = ""
    now: datetime | None = None


def _writable_types(factors: SUVFactors, suv_types: Iterable[SUVType] | None) -> list[SUVType]:
    """The flavours asked for that ``factors`` could compute; an InputError when none, as an RWVM
    without a mapping says nothing."""
    types = [t for t in (suv_types or list(SUVType)) if factors.frames(t) is not None]
    if not types:
        raise InputError(
            "no SUV factor could be computed for this series: nothing to write; " + "; ".join(factors.warnings)
        )
    return types


def _frame_groups(
    datasets: Sequence[Dataset], per_type: dict[SUVType, np.ndarray], types: list[SUVType]
) -> dict[tuple[float, ...], list[int]]:
    """The frames grouped by rescale slope, intercept and SUV factors (``per_type``: each flavour's
    factor per instance), so that frames mapped alike share one item of the mapping sequence."""
    groups: dict[tuple[float, ...], list[int]] = {}
    for k, ds in enumerate(datasets):
        m = float(ds.get("RescaleSlope", 1) or 1)
        b = float(ds.get("RescaleIntercept", 0) or 0)
        key = (m, b) + tuple(float(per_type[t][k]) for t in types)
        groups.setdefault(key, []).append(k)
    return groups


def _patient_and_study(ds0: Dataset) -> Dataset:
    """The Patient, General Study and Patient Study attributes copied from the PET (over-long values
    cut), so that the RWVM files under the PET's patient and study."""
    out = Dataset()
    for kw in _COPIED:
        if kw in ds0:
            elem = _valid_copy(ds0[kw])
            if elem is not None:
                out[kw] = elem
    for kw in _TYPE2:
        if kw not in out:
            setattr(out, kw, "")
    body_part = str(out.get("BodyPartExamined", "") or "").upper()
    if "Laterality" not in out and (not body_part or body_part in PAIRED_BODY_PARTS):
        # General Series Laterality is Type 2C: required for a paired body part, absent otherwise.
        # The PET's Body Part Examined is copied so that readers can tell; when it is unknown, or
        # paired without a laterality in the PET, the laterality is unknown: present and empty.
        out.Laterality = ""
    if "SpecificCharacterSet" not in out:
        out.SpecificCharacterSet = "ISO_IR 192"
    return out


def _identify(out: Dataset, types: list[SUVType], options: RWVMOptions, now: datetime) -> str:
    """Set the SOP, series, equipment and content attributes the RWVM IOD requires; returns the
    SOP Instance UID (also needed by the file meta information)."""
    sop_uid = options.sop_instance_uid or generate_uid()
    out.SOPClassUID = RWVM_SOP_CLASS_UID
    out.SOPInstanceUID = sop_uid
    out.InstanceCreationDate = now.strftime("%Y%m%d")
    out.InstanceCreationTime = now.strftime("%H%M%S")
    out.Modality = "RWV"
    out.SeriesInstanceUID = options.series_instance_uid or generate_uid()
    out.SeriesNumber = options.series_number
    out.SeriesDate = now.strftime("%Y%m%d")
    out.SeriesTime = now.strftime("%H%M%S")
    out.SeriesDescription = options.series_description
    out.Manufacturer = "OncoQI"
    out.SoftwareVersions = __version__
    out.InstanceNumber = 1
    out.ContentLabel = "SUV"
    out.ContentDescription = "SUV normalisation of a PET series: " + ", ".join(t.label for t in types)
    out.ContentCreatorName = options.content_creator
    out.ContentDate = now.strftime("%Y%m%d")
    out.ContentTime = now.strftime("%H%M%S")
    return sop_uid


def _mapping_items(
    datasets: Sequence[Dataset],
    groups: dict[tuple[float, ...], list[int]],
    types: list[SUVType],
    stored_range: tuple[int, int, str],
) -> list[Dataset]:
    """One Referenced Image Real World Value Mapping item per frame group: its frames and one
    mapping of stored values (``stored_range``: first, last, VR) per flavour, the rescale folded in
    (module docs)."""
    lo, hi, vr = stored_range
    items = []
    for key, frames in groups.items():
        m, b = key[0], key[1]
        item = Dataset()
        item.ReferencedImageSequence = [_ref(datasets[k]) for k in frames]
        item.RealWorldValueMappingSequence = [_mapping(t, m * f, b * f, (lo, hi), vr) for t, f in zip(types, key[2:])]
        items.append(item)
    return items


def _referenced_series(datasets: Sequence[Dataset]) -> Dataset:
    """The Common Instance Reference item naming the PET series and its instances."""
    series_ref = Dataset()
    series_ref.SeriesInstanceUID = datasets[0].SeriesInstanceUID
    series_ref.ReferencedInstanceSequence = [_ref(ds) for ds in datasets]
    return series_ref


def _file_meta(sop_uid: str) -> FileMetaDataset:
    """The file meta information that makes the dataset ready for ``dcmwrite``."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RWVM_SOP_CLASS_UID
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = f"OncoQI {__version__}"[:16]
    return meta


def build_rwvm(
    datasets: Sequence[Dataset],
    factors: SUVFactors,
    suv_types: Iterable[SUVType] | None = None,
    *,
    options: RWVMOptions = RWVMOptions(),
) -> Dataset:
    """Build the RWVM instance holding the SUV mappings of one PET series.

    Parameters
    ----------
    datasets
        The PET instances (headers), the same ones ``factors`` was computed from.
    factors
        The SUV factors (:func:`oncoqi.pet.suv.compute_suv_factors`).
    suv_types
        Flavours to include; default every flavour that ``factors`` could compute.
    options
        UIDs of the new object (generated when not given), descriptive attributes of the new
        series and instance, and the creation date-time (for reproducible output; default the
        current time): :class:`RWVMOptions`.

    Returns
    -------
    pydicom.Dataset
        A complete instance with file meta information, ready for ``dcmwrite``.

    Raises
    ------
    InputError
        When no flavour can be written, or ``datasets`` are not the instances of ``factors``.
    """
    types = _writable_types(factors, suv_types)
    uids = [str(ds.SOPInstanceUID) for ds in datasets]
    per_type = {t: factors.for_instances(uids, t) for t in types}
    now = options.now or datetime.now()
    stored_range = _stored_range(datasets[0])
    groups = _frame_groups(datasets, per_type, types)
    out = _patient_and_study(datasets[0])
    sop_uid = _identify(out, types, options, now)
    out.ReferencedImageRealWorldValueMappingSequence = _mapping_items(datasets, groups, types, stored_range)
    out.ReferencedSeriesSequence = [_referenced_series(datasets)]
    out.file_meta = _file_meta(sop_uid)
    return out


def write_rwvm(path: str | os.PathLike, datasets: Sequence[Dataset], factors: SUVFactors, **kwargs: object) -> Path:
    """Build (see :func:`build_rwvm`, same keyword arguments) and write the RWVM file; returns its path."""
    ds = build_rwvm(datasets, factors, **kwargs)  # type: ignore[arg-type]
    return save_dataset(ds, path)


def read_rwvm_mappings(rwvm: Dataset | str | os.PathLike, suv_type: SUVType) -> dict[str, tuple[float, float]]:
    """The linear mapping of ``suv_type`` for each referenced instance.

    Parameters
    ----------
    rwvm
        An RWVM dataset or its file.
    suv_type
        The flavour, recognised by its UCUM unit code (either annotation placement:
        ``{SUVbw}g/ml`` or ``g/ml{SUVbw}``).

    Returns
    -------
    dict
        ``SOPInstanceUID -> (slope, intercept)`` mapping stored pixel values to the SUV.

    Raises
    ------
    InputError
        When the object is not an RWVM or holds no mapping of that flavour.
    """
    ds = rwvm if isinstance(rwvm, Dataset) else pydicom.dcmread(rwvm)
    if str(ds.get("SOPClassUID", "")) != RWVM_SOP_CLASS_UID:
        raise InputError(f"not a Real World Value Mapping object (SOP Class {ds.get('SOPClassUID', 'absent')})")
    unit, annot = suv_type.ucum.split("}")[1], suv_type.ucum.split("}")[0] + "}"
    accepted = {suv_type.ucum, unit + annot}
    out: dict[str, tuple[float, float]] = {}
    for item in ds.get("ReferencedImageRealWorldValueMappingSequence", []):
        for mapping in item.get("RealWorldValueMappingSequence", []):
            codes = mapping.get("MeasurementUnitsCodeSequence", [])
            value = (codes[0].get("CodeValue") or codes[0].get("LongCodeValue")) if codes else None
            if value is not None and str(value) in accepted:
                pair = (float(mapping.RealWorldValueSlope), float(mapping.RealWorldValueIntercept))
                for ref in item.get("ReferencedImageSequence", []):
                    out[str(ref.ReferencedSOPInstanceUID)] = pair
    if not out:
        raise InputError(f"the RWVM object holds no {suv_type.ucum} mapping")
    return out


def apply_rwvm(
    pet: Image,
    rwvm: Dataset | str | os.PathLike,
    suv_type: SUVType = SUVType.BW,
    dtype: object = np.float32,
) -> Image:
    """Produce an SUV volume from a rescaled PET volume and an RWVM object.

    Slice ``k`` holds rescaled values ``v = m_k * s + b_k`` of stored values ``s`` (``m_k``,
    ``b_k`` from ``metadata["rescale_slopes"]``/``["rescale_intercepts"]``, as
    :func:`oncoqi.pet.series.load_pet_series` records them), so
    ``SUV = M_k * (v - b_k) / m_k + B_k`` with the RWVM slope ``M_k`` and intercept ``B_k`` of
    the slice's instance (``metadata["sop_instance_uids"]``).

    Raises
    ------
    InputError
        When the volume lacks the per-slice metadata, or a slice has no mapping in the RWVM.
    """
    meta = pet.metadata
    if not all(k in meta for k in ("sop_instance_uids", "rescale_slopes", "rescale_intercepts")):
        raise InputError(
            "the PET volume lacks per-slice sop_instance_uids / rescale_slopes / rescale_intercepts metadata"
        )
    maps = read_rwvm_mappings(rwvm, suv_type)
    missing = [u for u in meta["sop_instance_uids"] if u not in maps]
    if missing:
        raise InputError(f"{len(missing)} PET slice(s) have no {suv_type.label} mapping in the RWVM, e.g. {missing[0]}")
    slopes = np.array([maps[u][0] for u in meta["sop_instance_uids"]])
    inters = np.array([maps[u][1] for u in meta["sop_instance_uids"]])
    m = np.asarray(meta["rescale_slopes"], dtype=float)
    b = np.asarray(meta["rescale_intercepts"], dtype=float)
    gain = slopes / m
    offset = inters - b * gain
    array = (pet.array.astype(np.float64) * gain[:, None, None] + offset[:, None, None]).astype(dtype)
    new_meta = {**meta, "units": suv_type.ucum, "quantity": suv_type.label, "suv_type": suv_type.key}
    return Image(array, pet.spacing, pet.origin, pet.direction.copy(), new_meta)
