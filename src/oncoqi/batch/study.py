"""Run the whole pipeline on one study: :func:`run_study` -> :class:`StudyResult`.

Steps (each logged to the study's ``log.txt``):

1. choose the chest CT and its PET (:func:`oncoqi.batch.selection.choose_series`);
2. load the CT and segment the lung tumours (:func:`oncoqi.lung.segment.segment_ct`; lesions below
   ``min_volume_ml`` dropped), write the
   label images and ``lesions.json``, and the CT's DICOM SEG + TID 1500 SR
   (:func:`oncoqi.report.lung.write_lesion_report`) into ``ct/``;
3. with a PET: SUVbw from the headers (:func:`oncoqi.pet.compute_suv_factors`), each CT lesion on the
   PET grid with its PET-IndiC indices and the PET-thresholded lesion of GTV-1 (within GTV-1 grown by
   ``pet_margin_mm``; method and value configurable) with its indices
   (:func:`oncoqi.pet.ct_lesions_on_pet`); all as a PET DICOM SEG + SR
   (:func:`oncoqi.report.pet.write_indices_report`) into ``pet/``;
4. the QC picture ``qc.png`` (:func:`oncoqi.batch.qc.write_study_qc`);
5. last, ``done.json``: the rows of the cohort table, the choices, and the SHA-256 of every output,
   written atomically. A study is complete exactly when its ``done.json`` exists and every file it
   lists still has its checksum (:func:`load_done`).

A study whose PET part failed keeps its CT results, and ``done.json`` says so (``failed_part``) and
holds the CT part's rows and record (``ct_part``). A rerun takes it up again but redoes only the PET
part: when that ``done.json`` still verifies, was written by this version with the same CT options
(model, series, minimum volume) and the same CT is chosen, step 2 reads its label maps and
``lesions.json`` back instead of segmenting, and keeps its CT SEG and SR as they are (the CT is still
loaded, for the QC picture). Anything else redoes the whole study.

Output folder of a study: ``OUT/<PatientID>/<StudyInstanceUID>/`` (characters other than letters,
digits, ``.``, ``_`` and ``-`` replaced by ``_``).
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import logging
import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from oncoqi import __version__
from oncoqi.atomic import write_text, write_volume
from oncoqi.batch.selection import (
    SeriesChoice,
    StudyInput,
    choose_series,
    lung_slice_count,
    study_folder_name,
)
from oncoqi.dicom.scan import SeriesInfo
from oncoqi.errors import OncoQIError
from oncoqi.image import Image
from oncoqi.jsonio import strict
from oncoqi.progress import Reporter, stages_of

log = logging.getLogger(__name__)

#: Files and folders of a study's output folder.
DONE_NAME = "done.json"
LOG_NAME = "log.txt"
QC_NAME = "qc.png"
LABELS_NAME = "tumor_label.nrrd"
LUNGS_NAME = "lung_mask.nrrd"
PET_LABELS_NAME = "pet_lesions.nrrd"
LESIONS_NAME = "lesions.json"
CT_REPORT_DIR = "ct"
PET_REPORT_DIR = "pet"
#: Every output a study run may write (paths relative to its folder), all listed in ``done.json``.
OUTPUT_FILES = (QC_NAME, LABELS_NAME, LUNGS_NAME, PET_LABELS_NAME, LESIONS_NAME) + tuple(
    f"{d}/{n}" for d in (CT_REPORT_DIR, PET_REPORT_DIR) for n in ("seg.dcm", "sr.dcm")
)
#: What the CT part writes, kept by a rerun that redoes only a failed PET part.
CT_OUTPUTS = (LABELS_NAME, LUNGS_NAME, LESIONS_NAME, f"{CT_REPORT_DIR}/seg.dcm", f"{CT_REPORT_DIR}/sr.dcm")
#: The options (:class:`StudyOptions` fields) the CT part's results depend on.
CT_OPTIONS = ("model", "series", "min_volume_ml")
#: Format name and version of ``done.json``.
DONE_FORMAT = "oncoqi-batch-study"
DONE_VERSION = 1

#: Study states reported by :func:`run_study` and the cohort runner.
DONE, SKIPPED, FAILED = "done", "skipped", "failed"


@dataclass(frozen=True)
class StudyOptions:
    """How every study of a cohort is processed (the same for all, so results do not depend on workers).

    Attributes
    ----------
    model
        ONNX tumour model (None: the shipped ``oncoqi/data/lung_unet.onnx``).
    threads
        onnxruntime threads per study (1: one study per core, the batch runs studies in parallel;
        None: onnxruntime's default, one per physical core).
    series
        SeriesInstanceUIDs that override the series choice in the studies that hold them.
    pet_method, pet_value
        Threshold of the PET-defined lesion (:class:`oncoqi.pet.ThresholdMethod`: ``fixed`` SUV,
        ``percent`` of SUVmax, ``background``-adapted percentage).
    pet_margin_mm
        The PET lesion is sought within GTV-1 grown by this margin on the PET grid.
    min_volume_ml
        Lesions smaller than this (ml on the CT) are dropped (0: every lesion is kept).
    qc
        Write the QC picture.
    """

    model: str | None = None
    threads: int | None = 1
    series: tuple[str, ...] = ()
    pet_method: str = "background"
    pet_value: float = 50.0
    pet_margin_mm: float = 10.0
    min_volume_ml: float = 0.0
    qc: bool = True


@dataclass
class StudyResult:
    """What happened to one study.

    Attributes
    ----------
    key
        ``patient/study`` as shown to the user.
    patient_id, study_uid
        Identification of the study.
    folder
        Its output folder.
    status
        ``done`` (processed now), ``skipped`` (complete from an earlier run) or ``failed``.
    rows
        Its rows of the cohort table (one per lesion).
    error
        One line naming the file or series and the reason, for a failed study.
    seconds
        Processing time (0 for a skipped study).
    ct_series_uid, pet_series_uid
        The series used (empty when not chosen).
    failed_part
        ``pet`` for a study whose PET part failed (``error`` says why) while its CT results (rows,
        label maps, CT SEG and SR) were kept; empty otherwise.
    """

    key: str
    patient_id: str
    study_uid: str
    folder: Path
    status: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0
    ct_series_uid: str = ""
    pet_series_uid: str = ""
    failed_part: str = ""


def study_folder(out_root: str | os.PathLike, study: StudyInput) -> Path:
    """``out_root/<PatientID>/<StudyInstanceUID>`` with file-system-safe names."""
    return (
        Path(out_root)
        / study_folder_name(study.patient_id, "no-patient-id")
        / study_folder_name(study.study_uid, "no-study-uid")
    )


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_done(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The ``done.json`` of a complete study, or None when the study must be (re)done.

    None when the marker is missing, unreadable, of another format, or when any file it lists is
    missing or has changed (checksum).
    """
    path = Path(folder) / DONE_NAME
    try:
        done = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(done, dict) or done.get("format") != DONE_FORMAT or not isinstance(done.get("files"), dict):
        return None
    for name, digest in done["files"].items():
        target = Path(folder) / name
        if not target.is_file() or sha256(target) != digest:
            return None
    return done


class _StudyLog(logging.Handler):
    """Collects the study's own lines and the ``oncoqi`` log records of the thread running it."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.buffer = io.StringIO()
        self.thread = threading.get_ident()
        self.addFilter(lambda record: record.thread == self.thread)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.buffer.write(self.format(record) + "\n")

    def line(self, message: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self.buffer.write(f"{stamp} {message}\n")


def _clear_outputs(folder: Path, keep: tuple[str, ...] = ()) -> None:
    """Remove what an earlier (failed or forced) run left but ``keep``, marker first: the study is then not complete."""
    (folder / DONE_NAME).unlink(missing_ok=True)
    for name in OUTPUT_FILES:
        if name not in keep:
            (folder / name).unlink(missing_ok=True)


def _earlier_ct_part(folder: Path, options: StudyOptions) -> dict[str, Any] | None:
    """The verified ``done.json`` of an earlier run whose PET part alone failed, when its CT results can
    stand for this run's (same version, same CT options, every CT output listed); else None."""
    done = load_done(folder)
    if done is None or done.get("failed_part") != "pet" or not isinstance(done.get("ct_part"), dict):
        return None
    ours = json.loads(json.dumps({name: asdict(options)[name] for name in CT_OPTIONS}))
    recorded = done.get("options") if isinstance(done.get("options"), dict) else {}
    if done.get("oncoqi") != __version__ or {name: recorded.get(name) for name in CT_OPTIONS} != ours:
        return None
    return done if all(name in done["files"] for name in (LABELS_NAME, LUNGS_NAME, LESIONS_NAME)) else None


@dataclass
class _CtResults:
    """The CT part's results read back from its files: what the PET part and the QC picture use of a segmentation."""

    labels: Image
    lungs: Image
    lesions: list[Any]


def _reused_ct_part(
    earlier: dict[str, Any], choice: SeriesChoice, folder: Path, say: Callable[[str], None]
) -> tuple[Any, list[dict[str, Any]], list[str], dict[str, Any]] | None:
    """Step 2 from an earlier run whose PET part failed: its label maps, lesions, rows and record, as
    :func:`_ct_part` returns them; None (and its CT outputs removed) when they cannot stand for this run's."""
    from oncoqi.dicom import read_volume_file
    from oncoqi.lung.measure import LesionMeasurement

    why = "another CT is chosen now" if choice.ct.series_uid != earlier.get("ct_series_uid") else ""
    try:
        if not why:
            ct_part = earlier["ct_part"]
            records = json.loads((folder / LESIONS_NAME).read_text(encoding="utf-8"))
            lesions = [LesionMeasurement.from_dict(record) for record in records]
            seg = _CtResults(read_volume_file(folder / LABELS_NAME), read_volume_file(folder / LUNGS_NAME), lesions)
            rows = copy.deepcopy(ct_part["rows"])
            for row in rows:
                row["pet_series_uid"] = choice.pet.series_uid if choice.pet is not None else ""
            say(
                f"CT part of the earlier run reused ({len(lesions)} lesion(s)); its PET part failed: {earlier['error']}"
            )
            return seg, rows, list(ct_part["warnings"]), copy.deepcopy(ct_part["info"])
    except (OncoQIError, OSError, ValueError, TypeError, KeyError) as exc:
        why = f"its results cannot be read back ({type(exc).__name__}: {exc})"
    say(f"CT part of the earlier run not reused: {why}; it is redone")
    for name in CT_OUTPUTS:
        (folder / name).unlink(missing_ok=True)
    return None


def _choose_and_load_ct(study: StudyInput, override: tuple[str, ...]) -> tuple[SeriesChoice, Image]:
    """The study's series choice and its CT volume, loaded once.

    With several CT candidates the choice loads each to count its lung slices; the volumes with the
    most lung slices (all of them on a tie) are kept, so the chosen CT is not read again unless
    ``--series`` picked one with fewer.
    """
    from oncoqi.dicom import load_series

    best, kept = -1, {}

    def lung_slices(series: SeriesInfo) -> int:
        nonlocal best, kept
        image = load_series(series)
        count = lung_slice_count(image)
        if count > best:
            best, kept = count, {}
        if count == best:
            kept[series.series_uid] = image
        return count

    choice = choose_series(study, override, lung_slices=lung_slices)
    ct = kept.get(choice.ct.series_uid)
    return choice, ct if ct is not None else load_series(choice.ct)


def _note(row: dict[str, Any], notes: list[str]) -> None:
    """Append ``notes`` to the row's ``warnings``."""
    if notes:
        row["warnings"] = "; ".join([*filter(None, [row.get("warnings", "")]), *notes])


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


def _drop_small(seg: Any, min_volume_ml: float) -> int:
    """Drop lesions below ``min_volume_ml`` from a segmentation, the others keeping their order; returns how many."""
    kept = [lesion for lesion in seg.lesions if lesion.volume_ml >= min_volume_ml]
    dropped = len(seg.lesions) - len(kept)
    if dropped:
        relabel = np.zeros(int(seg.labels.array.max(initial=0)) + 1, seg.labels.array.dtype)
        for new, lesion in enumerate(kept, start=1):
            relabel[lesion.label] = new
        seg.labels = seg.labels.with_array(relabel[seg.labels.array])
        seg.lesions = [replace(lesion, label=new) for new, lesion in enumerate(kept, start=1)]
    return dropped


class _StudyPet:
    """The study's PET series and its SUVbw, read at the first :meth:`suv` call and kept.

    Why: the PET is evidence for GTV-1 before the CT's results are written, and then the PET part
    measures the lesions on it; both use one reading (a PET series is hundreds of files). A PET
    that cannot be read raises the same error at every call.
    """

    def __init__(self, series: SeriesInfo) -> None:
        self.series = series
        self._read: tuple[Image, Any] | OncoQIError | None = None

    def suv(self) -> tuple[Image, Any]:
        """The SUVbw volume and the :class:`~oncoqi.pet.SUVFactors` it was computed with."""
        from oncoqi.pet import SUVType, apply_suv, compute_suv_factors, load_pet_series

        if self._read is None:
            try:
                pet = load_pet_series(self.series)
                factors = compute_suv_factors(pet.datasets)
                self._read = (apply_suv(pet.image, factors, SUVType.BW), factors)
            except OncoQIError as exc:
                self._read = exc
        if isinstance(self._read, OncoQIError):
            raise self._read
        return self._read


def _pet_evidence(seg: Any, pet: _StudyPet, say: Callable[[str], None]) -> None:
    """Number the lesions again with the PET as evidence (:func:`oncoqi.report.evidence.order_lesions_on_pet`).

    Each lesion's SUVmax joins the evidence that it is a tumour before anything is written, so
    GTV-1 is not a lesion the PET shows to be inert. A PET that cannot be read here is left to the
    PET part, which reports why.
    """
    from oncoqi.report.evidence import describe_renumbering, order_lesions_on_pet

    try:
        suv, _ = pet.suv()
        found = order_lesions_on_pet(suv, seg.labels, seg.lesions, measure=False)  # the PET part measures them
    except OncoQIError as exc:
        say(f"PET not used as evidence for GTV-1: {exc}")
        return
    seg.labels, seg.lesions = found.labels, found.lesions
    for line in describe_renumbering(found):
        say(line)


def _lesion_row(study: StudyInput, choice: SeriesChoice, lesion: Any) -> dict[str, Any]:
    from oncoqi.lung.naming import lesion_name

    return {
        "patient_id": study.patient_id,
        "study_uid": study.study_uid,
        "ct_series_uid": choice.ct.series_uid,
        "pet_series_uid": choice.pet.series_uid if choice.pet is not None else "",
        "lesion": lesion_name(lesion.label),
        "label": int(lesion.label),
        "volume_ml": float(lesion.volume_ml),
        "recist_mm": float(lesion.recist_mm),
        "perpendicular_mm": float(lesion.perpendicular_mm),
        "side": lesion.side,
        "confidence": None if lesion.confidence is None else float(lesion.confidence),
        "doubts": "; ".join(lesion.doubts),
    }


@dataclass
class _PetSegments:
    """The segments of the PET SEG with what made each and its indices (three lists kept in step for the SR)."""

    masks: list[tuple[str, Image, int]] = field(default_factory=list)
    algorithms: list[dict[str, str]] = field(default_factory=list)  # the lung network, then the PET threshold
    results: list[Any] = field(default_factory=list)

    def add(self, name: str, mask: Image, algorithm_name: str, indices: Any) -> None:
        """One segment: its name and mask, the algorithm that made it, its PET-IndiC indices."""
        self.masks.append((name, mask, 1))
        self.algorithms.append({"type": "AUTOMATIC", "name": algorithm_name, "version": __version__})
        self.results.append(indices)


def _suv_image(pet: _StudyPet, say: Callable[[str], None], study_warnings: list[str], info: dict[str, Any]) -> Image:
    """SUVbw from the PET's headers, its factors and their notes recorded in the log, the warnings and ``done.json``."""
    suv, factors = pet.suv()
    say(f"PET: SUVbw factor {factors.suvbw if factors.suvbw is not None else 'per frame'}")
    info["suv"] = {
        "suvbw": factors.suvbw,
        "sul": factors.sul,
        "suvbsa": factors.suvbsa,
        "warnings": list(factors.warnings),
    }
    for warning in factors.warnings:
        say(f"  SUV note: {warning}")
        study_warnings.append(f"SUV: {warning}")
    return suv


def _add_thresholded(row: dict[str, Any], name: str, primary: Any, segments: _PetSegments) -> None:
    """GTV-1's PET-thresholded lesion, when found, as a segment of the PET SEG and as the ``thr_*`` columns of its row."""
    from oncoqi.pet.segment import THRESHOLD_ALGORITHM_NAME

    thr, t_idx = primary.threshold, primary.indices
    if thr is not None and t_idx is not None:
        segments.add(f"{name} PET {thr.method.value} {thr.value:g}", thr.mask, THRESHOLD_ALGORITHM_NAME, t_idx)
        row.update(
            thr_method=f"{thr.method.value} {thr.value:g}",
            thr_suv=thr.threshold,
            thr_suv_max=t_idx.suv_max,
            thr_suv_peak=t_idx.suv_peak,
            thr_mtv_ml=t_idx.mtv_ml,
            thr_tlg=t_idx.tlg,
        )


def _pet_part(
    pet: _StudyPet,
    seg: Any,
    rows: list[dict[str, Any]],
    folder: Path,
    options: StudyOptions,
    say: Callable[[str], None],
    study_warnings: list[str],
    info: dict[str, Any],
) -> tuple[Image, Image]:
    """SUV, indices of the CT lesions and of GTV-1's PET-thresholded lesion, the PET SEG/SR.

    The science is :func:`oncoqi.pet.ct_lesions_on_pet`; this records it (rows, log, files).
    Returns the SUV volume and the CT labels on the PET grid.
    """
    from oncoqi.lung.naming import ALGORITHM_NAME as LUNG_ALGORITHM_NAME
    from oncoqi.lung.naming import lesion_name
    from oncoqi.pet import SUVType, ct_lesions_on_pet
    from oncoqi.report.pet import write_indices_report

    suv = _suv_image(pet, say, study_warnings, info)
    primary = next((lesion for lesion in seg.lesions if lesion.label == 1), None)
    found = ct_lesions_on_pet(
        suv,
        seg.labels,
        [lesion.label for lesion in seg.lesions],
        primary_label=1,
        primary_centroid_lps=primary.centroid_lps_mm if primary is not None else None,
        method=options.pet_method,
        value=options.pet_value,
        margin_mm=options.pet_margin_mm,
    )
    segments = _PetSegments()
    for row, lesion, on_pet in zip(rows, seg.lesions, found.lesions):
        name = lesion_name(lesion.label)
        notes = list(on_pet.notes)
        if on_pet.indices is not None:
            indices = on_pet.indices
            segments.add(name, suv.with_array(on_pet.region.astype(np.uint8)), LUNG_ALGORITHM_NAME, indices)
            row.update(
                suv_max=indices.suv_max,
                suv_peak=indices.suv_peak,
                suv_mean=indices.suv_mean,
                mtv_ml=indices.mtv_ml,
                tlg=indices.tlg,
            )
        if lesion.label != 1 or found.primary is None:  # the PET-thresholded lesion is GTV-1's
            _note(row, notes)
            say(f"  {name}: SUVmax {_num(row.get('suv_max'))}, MTV {_num(row.get('mtv_ml'))} ml")
            continue
        _add_thresholded(row, name, found.primary, segments)
        notes.extend(found.primary.notes)
        _note(row, notes)
        say(
            f"  {name}: SUVmax {_num(row.get('suv_max'))}, MTV {_num(row.get('mtv_ml'))} ml; "
            f"PET-thresholded ({options.pet_method} {options.pet_value:g}) MTV {_num(row.get('thr_mtv_ml'))} ml"
        )
    if segments.masks:
        write_indices_report(
            pet.series,
            segments.masks,
            segments.results,
            folder / PET_REPORT_DIR,
            SUVType.BW,
            algorithms=segments.algorithms,
        )
        say(f"PET SEG/SR written: {PET_REPORT_DIR}/seg.dcm, {PET_REPORT_DIR}/sr.dcm ({len(segments.masks)} segments)")
    write_volume(found.pet_labels, folder / PET_LABELS_NAME)
    return suv, found.on_pet


def _ct_part(
    study: StudyInput,
    choice: SeriesChoice,
    ct: Image,
    folder: Path,
    options: StudyOptions,
    say: Callable[[str], None],
    stages: Reporter,
    pet: _StudyPet | None,
) -> tuple[Any, list[dict[str, Any]], list[str], dict[str, Any]]:
    """Lung tumours of the CT: label images, ``lesions.json``, the CT SEG/SR and the table rows.

    Returns the segmentation, the rows (one per lesion), the study's warnings and its record for
    ``done.json``. ``stages`` is told ``lungs``, ``network``, ``lesions`` and ``write``; ``pet``,
    the study's PET if it has one, is evidence for GTV-1.
    """
    from oncoqi.lung.segment import segment_ct

    seg = segment_ct(ct, options.model, threads=options.threads, progress=stages, name=choice.ct.name)
    if options.min_volume_ml > 0:
        dropped = _drop_small(seg, options.min_volume_ml)
        say(f"{dropped} lesion(s) smaller than {options.min_volume_ml:g} ml dropped")
    if pet is not None and seg.lesions:
        _pet_evidence(seg, pet, say)
    stages.stage("write")
    volumes = seg.masks.volume_ml
    say(
        f"lungs: right {volumes['right']:.0f} ml, left {volumes['left']:.0f} ml; "
        f"{len(seg.lesions)} lesion(s) at threshold {seg.threshold:.3g}"
    )
    write_volume(seg.lungs.with_array(seg.lungs.array.astype(np.uint8)), folder / LUNGS_NAME)
    rows = _write_lesions(study, choice, seg, folder, say)
    study_warnings = [] if seg.lesions else ["no lesion found: no SEG/SR written"]
    info: dict[str, Any] = {
        "ct": {"size": list(ct.size), "spacing_mm": list(ct.spacing), "series": choice.ct.name},
        "lung_volume_ml": {k: float(v) for k, v in volumes.items()},
        "threshold": float(seg.threshold),
    }
    return seg, rows, study_warnings, info


def _write_lesions(
    study: StudyInput, choice: SeriesChoice, seg: Any, folder: Path, say: Callable[[str], None]
) -> list[dict[str, Any]]:
    """The lesions' files (label map, ``lesions.json``, CT SEG/SR) and their table rows."""
    from oncoqi.report.lung import write_lesion_report

    write_volume(seg.labels.with_array(seg.labels.array.astype(np.int16)), folder / LABELS_NAME)
    write_text(json.dumps([m.to_dict() for m in seg.lesions], indent=2) + "\n", folder / LESIONS_NAME)
    if seg.lesions:
        write_lesion_report(choice.ct, seg.labels, seg.lesions, folder / CT_REPORT_DIR, force=True)
        say(f"CT SEG/SR written: {CT_REPORT_DIR}/seg.dcm, {CT_REPORT_DIR}/sr.dcm")
    else:
        say("warning: no lesion found; no SEG/SR written")
    return [_lesion_row(study, choice, lesion) for lesion in seg.lesions]


def _reuse(
    earlier: dict[str, Any],
    study: StudyInput,
    choice: SeriesChoice,
    folder: Path,
    say: Callable[[str], None],
    pet: _StudyPet | None,
) -> tuple[Any, list[dict[str, Any]], list[str], dict[str, Any]] | None:
    """The earlier run's CT part (:func:`_reused_ct_part`), with the PET's evidence when there is a PET."""
    reused = _reused_ct_part(earlier, choice, folder, say)
    if reused is not None and pet is not None and reused[0].lesions:
        reused = _reused_with_pet_evidence(reused, study, choice, folder, say, pet)
    return reused


def _reused_with_pet_evidence(
    reused: tuple[Any, list[dict[str, Any]], list[str], dict[str, Any]],
    study: StudyInput,
    choice: SeriesChoice,
    folder: Path,
    say: Callable[[str], None],
    pet: _StudyPet,
) -> tuple[Any, list[dict[str, Any]], list[str], dict[str, Any]]:
    """A reused CT part with the PET's evidence (:func:`_pet_evidence`), which its run could not use.

    The earlier run's PET failed, so its lesions were numbered and doubted without it. When the PET
    now changes a doubt or the numbering, the lesions' files and rows are written again from the
    segmentation read back: the same results as a whole run, without segmenting again.
    """
    seg, rows, warnings, info = reused
    before = [m.to_dict() for m in seg.lesions]
    _pet_evidence(seg, pet, say)
    if [m.to_dict() for m in seg.lesions] == before:
        return reused
    say("the PET changed the lesions' doubts or numbering: their files are written again (not segmented again)")
    return seg, _write_lesions(study, choice, seg, folder, say), warnings, info


def run_study(
    study: StudyInput,
    out_root: str | os.PathLike,
    options: StudyOptions | None = None,
    reporter: Reporter | None = None,
) -> StudyResult:
    """Process one study into ``out_root/<patient>/<study>/`` (steps in the module documentation).

    Never raises for a bad study: the error (one line, naming the file or series) is returned in a
    ``failed`` :class:`StudyResult` and the traceback is in the study's ``log.txt``.

    Parameters
    ----------
    study
        The study's series (from :func:`oncoqi.batch.selection.group_studies`).
    out_root
        The cohort's output folder.
    options
        Processing options, the same for every study (default: :class:`StudyOptions` defaults).
    reporter
        Told the stages (:mod:`oncoqi.progress`): ``read``, ``lungs``, ``network``, ``lesions``,
        ``write`` (the CT's results), then with a PET ``pet`` and ``write`` (QC picture, ``done.json``).

    Returns
    -------
    StudyResult
        ``done`` with the table rows, or ``failed`` with the reason.
    """
    start = time.perf_counter()
    options = options if options is not None else StudyOptions()
    folder = study_folder(out_root, study)
    result = StudyResult(study.key, study.patient_id, study.study_uid, folder, FAILED)
    capture = _StudyLog()
    root_logger = logging.getLogger("oncoqi")
    root_logger.addHandler(capture)
    say = capture.line
    stages = stages_of(reporter)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        earlier = _earlier_ct_part(folder, options)
        _clear_outputs(folder, keep=CT_OUTPUTS if earlier is not None else ())
        say(f"oncoqi {__version__} batch: study {study.key} ({len(study.series)} series)")
        say(f"options: {json.dumps(asdict(options))}")
        stages.stage("read")
        choice, ct = _chosen_ct(study, options, result, say)
        pet = _StudyPet(choice.pet) if choice.pet is not None else None
        reused = _reuse(earlier, study, choice, folder, say, pet) if earlier is not None else None
        seg, rows, study_warnings, info = reused or _ct_part(study, choice, ct, folder, options, say, stages, pet)
        ct_record = copy.deepcopy({"rows": rows, "warnings": study_warnings, "info": info})  # for a PET-only rerun
        suv = None
        on_pet = None
        if pet is not None and seg.lesions:
            stages.stage("pet")
            try:
                pet_rows = copy.deepcopy(rows)  # the CT's rows stay as they are if the PET part fails half-way
                suv, on_pet = _pet_part(pet, seg, pet_rows, folder, options, say, study_warnings, info)
                rows = pet_rows
            except OncoQIError as exc:  # a bad PET must not throw away the CT's results
                _record_pet_failure(result, exc, folder, say, study_warnings)
            stages.stage("write")
        if options.qc:
            from oncoqi.batch.qc import write_study_qc

            write_study_qc(
                ct, seg.labels, folder / QC_NAME, lungs=seg.lungs, suv=suv, pet_labels=on_pet, title=study.key
            )
            say(f"QC picture: {QC_NAME}")
        rows = _table_rows(rows, study, choice, result, study_warnings)
        result.rows = rows
        result.seconds = time.perf_counter() - start
        say(f"done in {result.seconds:.1f} s; writing {DONE_NAME}")
        done = {**_done_record(study, result, choice, info, options, folder), "ct_part": ct_record}
        result.status = DONE
        _write_log(capture, folder)
        write_text(json.dumps(done, indent=2, allow_nan=False, default=_json_default) + "\n", folder / DONE_NAME)
    except Exception as exc:  # noqa: BLE001 - one bad study never stops the cohort: the reason is reported, the run goes on
        _record_failure(result, exc, start, capture, folder)
    finally:
        root_logger.removeHandler(capture)
        stages.close()
    return result


def _chosen_ct(
    study: StudyInput, options: StudyOptions, result: StudyResult, say: Callable[[str], None]
) -> tuple[SeriesChoice, Image]:
    """Step 1: the series choice and the loaded CT, logged and recorded in the result (a failure then names them)."""
    choice, ct = _choose_and_load_ct(study, options.series)
    for line in choice.log:
        say(line)
    result.ct_series_uid = choice.ct.series_uid
    result.pet_series_uid = choice.pet.series_uid if choice.pet is not None else ""
    say(
        f"CT loaded: {ct.size[0]}x{ct.size[1]}x{ct.size[2]} voxels of "
        f"{ct.spacing[0]:.3g}x{ct.spacing[1]:.3g}x{ct.spacing[2]:.3g} mm"
    )
    for warning in ct.metadata.get("geometry_warnings", []):
        say(f"  geometry note: {warning}")
    return choice, ct


def _table_rows(
    rows: list[dict[str, Any]],
    study: StudyInput,
    choice: SeriesChoice,
    result: StudyResult,
    study_warnings: list[str],
) -> list[dict[str, Any]]:
    """The study's rows of the cohort table: a ``none`` row without lesions (the study still shows), warnings noted."""
    if not rows:
        rows = [
            {
                "patient_id": study.patient_id,
                "study_uid": study.study_uid,
                "ct_series_uid": choice.ct.series_uid,
                "pet_series_uid": result.pet_series_uid,
                "lesion": "none",
            }
        ]
    for row in rows:
        _note(row, study_warnings)
    return [_clean(row) for row in rows]


def _done_record(
    study: StudyInput,
    result: StudyResult,
    choice: SeriesChoice,
    info: dict[str, Any],
    options: StudyOptions,
    folder: Path,
) -> dict[str, Any]:
    """Step 5: the ``done.json`` record, with the checksum of every output, by which the study counts as complete."""
    files = sorted(name for name in OUTPUT_FILES if (folder / name).is_file())  # not what others add later
    return {
        "format": DONE_FORMAT,
        "version": DONE_VERSION,
        "oncoqi": __version__,
        "patient_id": study.patient_id,
        "study_uid": study.study_uid,
        "ct_series_uid": result.ct_series_uid,
        "pet_series_uid": result.pet_series_uid,
        "selection": choice.log,
        "study": info,
        "options": asdict(options),
        "seconds": result.seconds,
        "rows": result.rows,
        "failed_part": result.failed_part,
        "error": result.error,
        "files": {name: sha256(folder / name) for name in files},
    }


def _record_pet_failure(
    result: StudyResult, exc: OncoQIError, folder: Path, say: Callable[[str], None], study_warnings: list[str]
) -> None:
    """The PET part failed: its reason in the result (listed in ``failures.csv`` as part ``pet``) and on
    every row; whatever it wrote is removed, the CT's results stay."""
    result.failed_part = "pet"
    result.error = " ".join(str(exc).split()) or type(exc).__name__
    say(f"PET part FAILED: {result.error}; the CT results are kept")
    study_warnings.append(f"PET part failed: {result.error}")
    for name in (PET_LABELS_NAME, f"{PET_REPORT_DIR}/seg.dcm", f"{PET_REPORT_DIR}/sr.dcm"):
        (folder / name).unlink(missing_ok=True)


def _record_failure(result: StudyResult, exc: Exception, start: float, capture: _StudyLog, folder: Path) -> None:
    """A failed study: the one-line reason in the result and the log, the traceback in ``log.txt`` (when writable)."""
    result.status = FAILED
    result.rows = []
    result.seconds = time.perf_counter() - start
    reason = str(exc) if isinstance(exc, OncoQIError) else f"{type(exc).__name__}: {exc}"
    result.error = " ".join(reason.split()) or type(exc).__name__
    capture.line(f"FAILED: {result.error}")
    capture.buffer.write(traceback.format_exc())
    try:
        _write_log(capture, folder)
    except OSError:
        pass


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    """A table row with plain Python values (NaN and infinities as None), ready for JSON and CSV."""
    return strict({key: value.item() if isinstance(value, np.generic) else value for key, value in row.items()})


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _write_log(capture: _StudyLog, folder: Path) -> None:
    write_text(capture.buffer.getvalue(), folder / LOG_NAME)


def skipped_result(study: StudyInput, folder: Path, done: dict[str, Any]) -> StudyResult:
    """The :class:`StudyResult` of a study found complete (rows from its ``done.json``)."""
    return StudyResult(
        study.key,
        study.patient_id,
        study.study_uid,
        folder,
        SKIPPED,
        rows=list(done.get("rows", [])),
        ct_series_uid=str(done.get("ct_series_uid", "")),
        pet_series_uid=str(done.get("pet_series_uid", "")),
    )


__all__ = [
    "DONE",
    "FAILED",
    "SKIPPED",
    "StudyOptions",
    "StudyResult",
    "load_done",
    "run_study",
    "skipped_result",
    "study_folder",
]
