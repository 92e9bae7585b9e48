"""Atomic file writes: a reader never sees a half-written file, a failed write leaves none.

Every output of OncoQI (DICOM objects, label volumes, JSON) goes through these helpers: the data is
written under a hidden temporary name in the destination folder, then renamed into place with
``os.replace`` (atomic on one file system). If writing fails or is interrupted, the temporary file
is removed and whatever was at the destination before is untouched.

:func:`check_output_folder` and :func:`check_output_file` look at an output path before any work: a
file where a folder is wanted (or the reverse), a folder that cannot be written (no permission, a
read-only file system) and a disk with less free space than the output needs are refused in one
line naming the path, so that a long computation never ends in a failed write.

The overwrite rule, the same for every command (:func:`check_existing_results`): an existing result
is never replaced unless the caller asks (``force``); a folder whose run record (:data:`RUN_RECORD`,
left by :func:`write_run_record`) names another input holds another case's or cohort's results and
is refused, naming them; replaced results are removed first, so old and new never mix.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import SimpleITK as sitk
from pydicom import Dataset

from oncoqi.errors import OutputError
from oncoqi.image import Image

#: Free space asked of an output's disk when the caller does not know the output's size.
DEFAULT_NEEDED_BYTES = 16 * 1024 * 1024


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds.

    The temporary name keeps ``path``'s ending (``.nrrd``, ``.nii.gz``, ...), so writers that choose
    the format from the file name still do the right thing. The parent folder is created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{os.getpid()}.partial.{path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        # a failed cleanup (read-only or vanished folder) must not hide the error that got us here
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def _existing_ancestor(path: Path) -> Path:
    """The nearest folder above (or at) ``path`` that exists: where the output would be created."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path.cwd()


def _check_writable_folder(folder: Path, shown: Path, needed_bytes: int) -> None:
    """Try to create a file in ``folder`` (the only sure test: permissions, ACLs, read-only mounts,
    root on a read-only file system) and compare its disk's free space with ``needed_bytes``."""
    try:
        handle, probe = tempfile.mkstemp(prefix=".oncoqi-write-check.", dir=folder)
    except OSError as exc:
        raise OutputError(f"{shown}: cannot write there ({exc.strerror or exc})") from exc
    os.close(handle)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    free = shutil.disk_usage(folder).free
    if free < needed_bytes:
        raise OutputError(
            f"{shown}: only {free / 1e6:.0f} MB free on its disk, the output needs about {needed_bytes / 1e6:.0f} MB"
        )


def check_output_folder(path: str | os.PathLike, needed_bytes: int = DEFAULT_NEEDED_BYTES) -> Path:
    """Refuse an output folder that cannot be created and written, before any work is done.

    Returns the folder; nothing is created.

    Raises
    ------
    OutputError
        When ``path`` or a parent is a file, when its nearest existing folder cannot be written,
        or when its disk has less than ``needed_bytes`` free.
    """
    path = Path(path)
    existing = _existing_ancestor(path)
    if not existing.is_dir():
        where = "is a file" if existing == path else f"cannot be created: {existing} is a file"
        raise OutputError(f"{path}: {where}, not a folder")
    _check_writable_folder(existing, path, needed_bytes)
    return path


def check_output_file(path: str | os.PathLike, needed_bytes: int = DEFAULT_NEEDED_BYTES) -> Path:
    """Refuse an output file that cannot be written, before any work is done.

    Returns the file's path; nothing is created.

    Raises
    ------
    OutputError
        When ``path`` is a folder, when its folder cannot be created or written, or when the disk
        has less than ``needed_bytes`` free.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder, not a file")
    check_output_folder(path.parent, needed_bytes)
    return path


def save_dataset(ds: Dataset, path: str | os.PathLike) -> Path:
    """Save a pydicom dataset (with its file meta) atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return Path(path)


def write_volume(image: Image, path: str | os.PathLike, compress: bool = True) -> Path:
    """Write an image as NRRD/NIfTI/MetaImage (chosen by the ending) atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        sitk.WriteImage(image.to_sitk(), str(tmp), useCompression=compress)
    return Path(path)


def write_text(text: str, path: str | os.PathLike) -> Path:
    """Write UTF-8 text atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


#: The record each command leaves in the folders it wrote: which command, on which input, when.
RUN_RECORD = ".oncoqi-run.json"


def read_run_record(folder: str | os.PathLike) -> dict[str, str] | None:
    """The run record of ``folder``, or None when there is none (or it cannot be read)."""
    try:
        record = json.loads((Path(folder) / RUN_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _describe(record: dict[str, str]) -> str:
    return f"`oncoqi {record.get('command', '?')}` on {record.get('input', '?')} ({record.get('finished', '?')})"


def check_existing_results(
    folder: str | os.PathLike, names: Sequence[str], *, force: bool, input_id: str | None = None
) -> list[Path]:
    """The overwrite rule: an existing result is never replaced without ``force``.

    Parameters
    ----------
    folder
        The output folder.
    names
        The files the command writes there.
    force
        Replace them.
    input_id
        What the command runs on (resolved path); a folder whose run record names another input holds
        another case's or cohort's results and is refused without ``force``, whatever files it holds.

    Returns
    -------
    list of Path
        The existing result files, which the caller removes (:func:`remove_results`) before writing,
        so that old and new results never mix.

    Raises
    ------
    OutputError
        Without ``force``, when the folder holds another input's results or any of ``names``.
    """
    folder = Path(folder)
    record = read_run_record(folder)
    if record is not None and not _same_input(record.get("input"), input_id) and not force:
        raise OutputError(
            f"{folder}: holds the results of {_describe(record)}, another input; not replaced "
            "(choose another folder, or ask to replace them: force)",
            setting="force",
        )
    existing = [folder / name for name in names if (folder / name).exists()]
    if existing and not force:
        origin = f", from {_describe(record)}" if record is not None else ""
        raise OutputError(
            f"{folder}: already holds {', '.join(p.name for p in existing)}{origin}; not replaced "
            "(choose another folder, or ask to replace them: force)",
            setting="force",
        )
    return existing


def _same_input(recorded: str | None, given: str | None) -> bool:
    """Whether a folder's results come from this input: the same path, or one inside the other (one
    study of the cohort whose results the folder holds, say)."""
    if recorded is None or given is None:
        return True
    a, b = Path(recorded), Path(given)
    return a == b or a in b.parents or b in a.parents


def remove_results(paths: Sequence[Path]) -> None:
    """Remove replaced results before the new ones are written (a result is replaced as a whole; a
    result that is a folder, such as a phantom's ``CT/`` series, goes with everything in it)."""
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def write_run_record(folder: str | os.PathLike, command: str, input_id: str | None) -> Path:
    """Leave the record that :func:`check_existing_results` reads in ``folder``."""
    record = {
        "command": command,
        "input": input_id,
        "finished": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    return write_text(json.dumps(record, indent=2) + "\n", Path(folder) / RUN_RECORD)
