"""Which series of a study the batch runs on: the chest CT and the PET registered with it.

Rule (logged for every study, see :attr:`SeriesChoice.log`):

1. CT candidates are the CT image series (single-frame slices with plane geometry) that are axial
   (slice normal within :data:`MAX_AXIAL_TILT_DEG` of the patient's head-feet axis) and have at least
   :data:`MIN_SLICES` slices (scouts and single-slice localisers are left out).
2. One candidate is taken as is. With several, the one with **most slices through the lungs** wins:
   each candidate is loaded and its lung slices counted (:func:`lung_slice_count`: axial slices with
   at least :data:`LUNG_FRACTION` of their voxels at lung density, -950 to -500 HU). Ties go to the
   series with more slices, then to the one with a PET sharing its FrameOfReferenceUID, then to
   the lowest SeriesNumber and SeriesInstanceUID (so the choice is reproducible); every tie is logged.
3. The PET is the PT image series with the CT's FrameOfReferenceUID; with several, the one with
   most slices, then the lowest SeriesNumber. No such PET: the study is CT only.

``--series UID`` overrides either choice for the study that holds the UID (a CT UID replaces the
CT, a PT UID the PET); a UID not found in a study is ignored for that study.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from oncoqi.dicom.scan import ScanResult, SeriesInfo, read_header
from oncoqi.errors import InputError
from oncoqi.image import Image

#: Largest angle (degrees) between the slice normal and the head-feet axis of an "axial" series.
MAX_AXIAL_TILT_DEG = 10.0
#: Fewest slices of a CT candidate (localisers and scouts have one to a few).
MIN_SLICES = 10
#: Lung-density HU range and the fraction of a slice it must cover for the slice to count as "lung".
LUNG_HU = (-950.0, -500.0)
LUNG_FRACTION = 0.05


class SelectionError(InputError):
    """A study has no usable chest CT, or a ``--series`` UID does not fit the study."""


@dataclass(frozen=True)
class StudyInput:
    """The image series of one study found in the input.

    Attributes
    ----------
    patient_id, study_uid
        PatientID and StudyInstanceUID shared by the series.
    series
        Every series of the study (image or not), as the scanner found them.
    """

    patient_id: str
    study_uid: str
    series: tuple[SeriesInfo, ...]

    @property
    def key(self) -> str:
        """``patient/study`` as shown in logs and progress lines."""
        return f"{self.patient_id or '?'}/{self.study_uid}"


@dataclass
class SeriesChoice:
    """The series a study is processed on, and why.

    Attributes
    ----------
    ct
        The chest CT.
    pet
        The PET sharing the CT's FrameOfReferenceUID, or None.
    log
        One line per decision (the rule, candidates and ties), written to the study's log.
    """

    ct: SeriesInfo
    pet: SeriesInfo | None
    log: list[str] = field(default_factory=list)


def group_studies(scan: ScanResult) -> list[StudyInput]:
    """Group the scanned series by (PatientID, StudyInstanceUID), sorted by patient then study.

    Series without a StudyInstanceUID are grouped under their own SeriesInstanceUID, so that
    they still form a (CT-only) study.
    """
    groups: dict[tuple[str, str], list[SeriesInfo]] = {}
    for s in scan.series:
        groups.setdefault((s.patient_id, s.study_uid or s.series_uid), []).append(s)
    return [StudyInput(p, st, tuple(members)) for (p, st), members in sorted(groups.items())]


def slice_normal(series: SeriesInfo) -> np.ndarray | None:
    """Unit normal of the first slice (from ImageOrientationPatient), or None when absent."""
    try:
        iop = [float(v) for v in read_header(series.files[0]).ImageOrientationPatient]
    except (AttributeError, InputError, TypeError, ValueError):
        return None
    normal = np.cross(iop[:3], iop[3:6])
    norm = float(np.linalg.norm(normal))
    return normal / norm if norm > 0 else None


def axial_tilt_deg(series: SeriesInfo) -> float | None:
    """Angle (degrees) between the slice normal and the head-feet axis, None without orientation."""
    normal = slice_normal(series)
    if normal is None:
        return None
    return math.degrees(math.acos(min(1.0, abs(float(normal[2])))))


def lung_slice_count(series: SeriesInfo | Image) -> int:
    """Slices of a CT series (or its loaded volume) with at least :data:`LUNG_FRACTION` of their voxels at lung density.

    Raises
    ------
    InputError, GeometryError
        When the series cannot be loaded (as :func:`oncoqi.dicom.load_series`).
    """
    from oncoqi.dicom import load_series

    array = (series if isinstance(series, Image) else load_series(series)).array
    lung = (array >= LUNG_HU[0]) & (array <= LUNG_HU[1])
    return int((lung.mean(axis=(1, 2)) >= LUNG_FRACTION).sum())


def _describe(s: SeriesInfo) -> str:
    number = f"#{s.series_number} " if s.series_number is not None else ""
    desc = f"'{s.description}' " if s.description else ""
    return f"{s.modality} {number}{desc}({s.series_uid}, {s.number_of_instances} slices)"


def choose_series(
    study: StudyInput,
    override: Iterable[str] = (),
    *,
    lung_slices: Callable[[SeriesInfo], int] = lung_slice_count,
) -> SeriesChoice:
    """Choose the chest CT and its PET in one study (the rule is in the module documentation).

    Parameters
    ----------
    study
        The study's series.
    override
        SeriesInstanceUIDs given with ``--series``; those found in this study replace the rule's
        choice (CT or PT by their modality).
    lung_slices
        Counts the lung slices of a CT candidate (only called when several candidates remain).

    Returns
    -------
    SeriesChoice

    Raises
    ------
    SelectionError
        When the study has no usable CT (the message lists its series and why each was left
        out), or an override UID of this study is neither a CT nor a PT image series.
    """
    by_uid = {s.series_uid: s for s in study.series}
    log: list[str] = [
        f"rule: CT image series, axial, >= {MIN_SLICES:d} slices; most slices through the lungs; PET = PT series "
        "with the CT's FrameOfReferenceUID"
    ]
    forced_ct = forced_pet = None
    for uid in override:
        s = by_uid.get(uid)
        if s is None:
            continue
        if not s.is_image or s.modality not in ("CT", "PT"):
            raise SelectionError(f"{study.key}: --series {uid} is {_describe(s)}, not a CT or PET image series")
        if s.modality == "CT":
            forced_ct = s
        else:
            forced_pet = s

    if forced_ct is not None:
        ct = forced_ct
        log.append(f"CT chosen by --series: {_describe(ct)}")
    else:
        ct = _choose_ct(study, log, lung_slices)

    pets = [s for s in study.series if s.modality == "PT" and s.is_image]
    if forced_pet is not None:
        pet: SeriesInfo | None = forced_pet
        log.append(f"PET chosen by --series: {_describe(forced_pet)}")
        if forced_pet.frame_of_reference_uid != ct.frame_of_reference_uid:
            log.append("warning: the --series PET does not share the CT's FrameOfReferenceUID")
    else:
        same_frame = [
            p for p in pets if ct.frame_of_reference_uid and p.frame_of_reference_uid == ct.frame_of_reference_uid
        ]
        same_frame.sort(key=lambda p: (-p.number_of_instances, p.series_number or 0, p.series_uid))
        pet = same_frame[0] if same_frame else None
        if pet is None:
            others = f" ({len(pets)} PET series on another frame of reference)" if pets else ""
            log.append(f"PET: none with the CT's FrameOfReferenceUID{others}; CT only")
        else:
            log.append(f"PET chosen: {_describe(pet)}")
            for other in same_frame[1:]:
                log.append(f"  PET not chosen: {_describe(other)}")
    return SeriesChoice(ct=ct, pet=pet, log=log)


def _choose_ct(study: StudyInput, log: list[str], lung_slices: Callable[[SeriesInfo], int]) -> SeriesInfo:
    reasons: list[str] = []
    candidates: list[SeriesInfo] = []
    for s in study.series:
        if s.modality != "CT":
            reasons.append(f"{_describe(s)}: not CT")
            continue
        if not s.is_image:
            reasons.append(f"{_describe(s)}: not single-frame slices with plane geometry")
            continue
        if s.number_of_instances < MIN_SLICES:
            reasons.append(f"{_describe(s)}: fewer than {MIN_SLICES} slices (localiser?)")
            continue
        tilt = axial_tilt_deg(s)
        if tilt is None or tilt > MAX_AXIAL_TILT_DEG:
            shown = "unknown" if tilt is None else f"{tilt:.0f} degrees"
            reasons.append(f"{_describe(s)}: not axial (slice normal {shown} from head-feet)")
            continue
        candidates.append(s)
    for reason in reasons:
        log.append(f"  left out: {reason}")
    if not candidates:
        found = "; ".join(reasons) or "no DICOM series"
        raise SelectionError(f"{study.key}: no axial chest CT series to segment ({found})")
    if len(candidates) == 1:
        log.append(f"CT chosen (only candidate): {_describe(candidates[0])}")
        return candidates[0]
    pet_frames = {s.frame_of_reference_uid for s in study.series if s.modality == "PT" and s.is_image}
    counts = {}
    for s in candidates:
        try:
            counts[s.series_uid] = lung_slices(s)
        except InputError as exc:  # a broken candidate is not chosen, the others still can be
            log.append(f"  left out: {_describe(s)}: cannot be loaded ({exc})")
            counts[s.series_uid] = -1

    def rank(s: SeriesInfo) -> tuple:
        return (
            -counts[s.series_uid],
            -s.number_of_instances,
            s.frame_of_reference_uid not in pet_frames,
            s.series_number if s.series_number is not None else math.inf,
            s.series_uid,
        )

    ordered = sorted(candidates, key=rank)
    if counts[ordered[0].series_uid] < 0:
        raise SelectionError(f"{study.key}: none of the {len(candidates)} CT candidates can be loaded")
    best = ordered[0]
    log.append(
        f"CT chosen ({counts[best.series_uid]} lung slices, most of {len(candidates)} candidates): {_describe(best)}"
    )
    for other in ordered[1:]:
        tie = (
            " (tie on lung slices and slice count, broken by PET/series number/UID)"
            if rank(other)[:2] == rank(best)[:2]
            else ""
        )
        log.append(f"  CT not chosen ({counts[other.series_uid]} lung slices){tie}: {_describe(other)}")
    return best


def find_override_problems(studies: Sequence[StudyInput], override: Sequence[str]) -> list[str]:
    """``--series`` UIDs found in no study (reported once for the cohort, not per study)."""
    known = {s.series_uid for st in studies for s in st.series}
    return [uid for uid in override if uid not in known]


def study_folder_name(text: str, fallback: str) -> str:
    """A file-system-safe folder name for a PatientID or StudyInstanceUID."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in text.strip())
    safe = safe.strip(".")
    return safe[:128] or fallback


__all__ = [
    "SelectionError",
    "SeriesChoice",
    "StudyInput",
    "choose_series",
    "group_studies",
    "lung_slice_count",
]
