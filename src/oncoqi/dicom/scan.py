"""Discover the DICOM series in a folder tree.

Researchers point OncoQI at whatever their archive export looks like: nested folders, several
patients, CT beside PET beside RTSTRUCT, a DICOMDIR, stray text files. Scanning reads only the
header of each file (never pixel data), groups instances by SeriesInstanceUID and keeps a list of
what was skipped and why, so that nothing disappears silently.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError
from tqdm import tqdm

from oncoqi.errors import InputError

#: Header attributes read during a scan; everything a listing or a geometry check needs.
SCAN_TAGS = [
    "PatientID",
    "PatientName",
    "StudyInstanceUID",
    "StudyDate",
    "StudyDescription",
    "SeriesInstanceUID",
    "SeriesNumber",
    "SeriesDescription",
    "Modality",
    "SOPClassUID",
    "SOPInstanceUID",
    "FrameOfReferenceUID",
    "NumberOfFrames",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "SliceThickness",
    "Rows",
    "Columns",
    "GantryDetectorTilt",
    "InstanceNumber",
]


#: Why a DICOM file whose header cannot be read is skipped (see :attr:`ScanResult.damaged`).
DAMAGED_REASON = "unreadable DICOM header"


@dataclass(frozen=True)
class SeriesInfo:
    """One series found on disk.

    Attributes
    ----------
    series_uid, study_uid, patient_id, patient_name, modality, description
        Identification, as in the DICOM headers (empty strings where absent).
    series_number
        SeriesNumber, or None.
    frame_of_reference_uid
        Shared by series that are spatially registered (e.g. the CT and PET of one PET/CT).
    study_date
        StudyDate as written (YYYYMMDD).
    sop_class_uid
        SOPClassUID of the first instance.
    files
        Every file of the series, sorted by path.
    is_image
        True when the instances are single-frame images with plane geometry, i.e. the series
        can be stacked into a volume.
    """

    series_uid: str
    study_uid: str
    patient_id: str
    patient_name: str
    modality: str
    description: str
    series_number: int | None
    frame_of_reference_uid: str
    study_date: str
    sop_class_uid: str
    files: tuple[Path, ...]
    is_image: bool

    @property
    def number_of_instances(self) -> int:
        """How many files (instances) the series has."""
        return len(self.files)

    @property
    def name(self) -> str:
        """A short human name: modality, description and UID."""
        desc = f" '{self.description}'" if self.description else ""
        return f"{self.modality or '?'} series{desc} ({self.series_uid})"

    def to_dict(self) -> dict:
        """JSON-ready form (paths as strings)."""
        d = asdict(self)
        d["files"] = [str(f) for f in self.files]
        d["number_of_instances"] = self.number_of_instances
        return d


@dataclass
class ScanResult:
    """All series found under a path, and every file that was not used with the reason."""

    root: Path
    series: list[SeriesInfo] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def find(self, series_uid: str) -> SeriesInfo:
        """The series with this SeriesInstanceUID.

        Raises
        ------
        InputError
            When no series under the root has that UID.
        """
        for s in self.series:
            if s.series_uid == series_uid:
                return s
        raise InputError(f"{self.root}: no series with SeriesInstanceUID {series_uid}")

    @property
    def image_series(self) -> list[SeriesInfo]:
        """The series that can be loaded as volumes."""
        return [s for s in self.series if s.is_image]

    @property
    def damaged(self) -> list[tuple[Path, str]]:
        """Skipped files that are DICOM but whose header cannot be read (a slice cut short, a bad
        element): likely slices of a series, which then looks incomplete, so they are named."""
        return [(path, why) for path, why in self.skipped if why.startswith(DAMAGED_REASON)]

    def damaged_note(self) -> str:
        """``"; damaged DICOM file(s) here, maybe the missing slice(s): a.dcm (why), ..."``, or ``""``."""
        if not self.damaged:
            return ""
        listing = ", ".join(f"{path} ({why})" for path, why in self.damaged[:5])
        more = f" and {len(self.damaged) - 5} more" if len(self.damaged) > 5 else ""
        return f"; damaged DICOM file(s) here, maybe the missing slice(s): {listing}{more}"


def _iter_files(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath) / name


def _str(ds: pydicom.Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    return "" if value is None else str(value).strip()


def _is_single_frame_image(ds: pydicom.Dataset) -> bool:
    frames = ds.get("NumberOfFrames", 1) or 1
    return "ImagePositionPatient" in ds and "ImageOrientationPatient" in ds and "Rows" in ds and int(frames) == 1


def read_header(path: Path) -> pydicom.Dataset:
    """Read the header of one DICOM file (no pixel data).

    Raises
    ------
    InputError
        When the file is not DICOM or cannot be read, naming the file.
    """
    try:
        return pydicom.dcmread(path, stop_before_pixels=True, specific_tags=SCAN_TAGS)
    except InvalidDicomError as exc:
        raise InputError(f"{path}: not a DICOM file ({exc})") from exc
    except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: {DAMAGED_REASON} ({exc})") from exc


def _without_series_uid(ds: pydicom.Dataset) -> str:
    """Why a DICOM file without SeriesInstanceUID is skipped. An image whose header stops before the
    attributes every image has (pydicom reads a file cut short without complaint) is damaged, not
    merely foreign: it is likely a slice of a series beside it."""
    sop_class = str(getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", ""))
    is_image = "Image Storage" in getattr(pydicom.uid.UID(sop_class), "name", "") if sop_class else False
    if is_image and not ds.get("SOPInstanceUID"):
        return f"{DAMAGED_REASON} (it ends before SOPInstanceUID and SeriesInstanceUID: a file cut short?)"
    return "DICOM file without SeriesInstanceUID"


def _series_info(uid: str, members: list[tuple[Path, pydicom.Dataset]]) -> SeriesInfo:
    members = sorted(members, key=lambda m: str(m[0]))
    ds = members[0][1]
    number = ds.get("SeriesNumber")
    return SeriesInfo(
        series_uid=uid,
        study_uid=_str(ds, "StudyInstanceUID"),
        patient_id=_str(ds, "PatientID"),
        patient_name=_str(ds, "PatientName"),
        modality=_str(ds, "Modality"),
        description=_str(ds, "SeriesDescription"),
        series_number=int(number) if number not in (None, "") else None,
        frame_of_reference_uid=_str(ds, "FrameOfReferenceUID"),
        study_date=_str(ds, "StudyDate"),
        sop_class_uid=_str(ds, "SOPClassUID"),
        files=tuple(m[0] for m in members),
        is_image=all(_is_single_frame_image(m[1]) for m in members),
    )


def series_from_files(paths: Iterable[str | os.PathLike]) -> SeriesInfo:
    """Describe an explicit list of files that must form exactly one series.

    Raises
    ------
    InputError
        When a file is not DICOM, or the files belong to several series.
    """
    members = [(Path(p), read_header(Path(p))) for p in paths]
    if not members:
        raise InputError("no files given for the series")
    uids = {_str(ds, "SeriesInstanceUID") for _, ds in members}
    if len(uids) != 1:
        raise InputError(f"the {len(members)} files given belong to {len(uids)} series, not one: {sorted(uids)}")
    return _series_info(uids.pop(), members)


def scan_series(path: str | os.PathLike, progress: bool = False) -> ScanResult:
    """List the DICOM series under ``path`` (a folder tree or one file).

    Parameters
    ----------
    path
        Folder to walk recursively, or a single file.
    progress
        Show a tqdm progress bar on stderr (for the command line on large cohorts).

    Returns
    -------
    ScanResult
        Series sorted by patient, study, modality and series number; skipped files with reasons.

    Raises
    ------
    InputError
        When ``path`` does not exist.
    """
    root = Path(path)
    if not root.exists():
        raise InputError(f"{root}: no such file or folder")
    groups: dict[str, list[tuple[Path, pydicom.Dataset]]] = defaultdict(list)
    result = ScanResult(root=root)
    files: Iterable[Path] = _iter_files(root)
    if progress:
        files = tqdm(files, desc="scanning", unit=" files", leave=False)
    for f in files:
        if f.name == "DICOMDIR":
            result.skipped.append((f, "DICOMDIR index (the files it lists are scanned directly)"))
            continue
        try:
            ds = read_header(f)
        except InputError as exc:
            result.skipped.append((f, str(exc).split(": ", 1)[-1]))
            continue
        uid = _str(ds, "SeriesInstanceUID")
        if not uid:
            result.skipped.append((f, _without_series_uid(ds)))
            continue
        groups[uid].append((f, ds))
    result.series.extend(_series_info(uid, members) for uid, members in groups.items())
    result.series.sort(key=lambda s: (s.patient_id, s.study_uid, s.modality, s.series_number or 0, s.series_uid))
    return result
