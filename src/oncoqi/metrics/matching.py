"""Pairing the inputs of an evaluation by case name: predictions, references and their extras.

PRED and GT (and any extra input, e.g. lung label maps) are either all single label-map files (one
case) or all folders. In folders, every label file (``.nrrd .nhdr .nii .nii.gz .mha .mhd``) or
sub-folder (a DICOM series) of GT is a case, named by its file name without the extension; every
other input must hold an entry of the same name (a missing one is an error, not a silent skip).
Nothing is read here: the caller loads the paired files.
"""

from __future__ import annotations

from pathlib import Path

from oncoqi.errors import InputError

#: File name endings of label-map files, longest first so that ``.nii.gz`` wins over ``.gz``.
VOLUME_SUFFIXES = (".nii.gz", ".nrrd", ".nhdr", ".nii", ".mha", ".mhd")


def case_name(path: Path) -> str | None:
    """Case name of a folder entry: a label file's name without extension, a folder's name; else None."""
    if path.is_dir():
        return path.name
    lower = path.name.lower()
    for suffix in VOLUME_SUFFIXES:
        if lower.endswith(suffix):
            return path.name[: -len(suffix)]
    return None


def _entries(folder: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        name = case_name(path)
        if name is not None and not name.startswith("."):
            out.setdefault(name, path)
    return out


def match_cases(pred: Path, gt: Path, **extra: Path | None) -> list[tuple[str, dict[str, Path]]]:
    """Pair the cases of GT with their PRED (and optional extra) entries by name.

    Parameters
    ----------
    pred, gt
        Two label files, or two folders.
    extra
        Further inputs keyed by role (e.g. ``lungs``): a file when ``gt`` is a file, a folder
        when it is a folder; None is left out.

    Returns
    -------
    list of (name, {role: path})
        Roles ``pred``, ``gt`` and the given extras, in case-name order.

    Raises
    ------
    InputError
        When a path is missing, files and folders are mixed, GT holds no case, or an input lacks
        one of GT's cases.
    """
    roles = {"pred": pred, "gt": gt, **{k: v for k, v in extra.items() if v is not None}}
    for role, path in roles.items():
        if not path.exists():
            raise InputError(f"{path}: no such file or folder ({role})")
    if not gt.is_dir():
        folder = next((f"{path} ({role})" for role, path in roles.items() if path.is_dir()), None)
        if folder is not None:
            raise InputError(f"{folder}: is a folder, but GT {gt} is a file: give files for every input, not folders")
        return [(case_name(gt) or gt.stem, roles)]
    file = next((f"{path} ({role})" for role, path in roles.items() if not path.is_dir()), None)
    if file is not None:
        raise InputError(f"{file}: is a file, but GT {gt} is a folder: give folders for every input")
    listings = {role: _entries(path) for role, path in roles.items()}
    names = sorted(listings["gt"])
    if not names:
        raise InputError(f"{gt}: no label file ({', '.join(VOLUME_SUFFIXES)}) or case folder found")
    for role, listing in listings.items():
        missing = [n for n in names if n not in listing]
        if missing:
            more = " ..." if len(missing) > 10 else ""
            raise InputError(f"{roles[role]}: no {role} for case(s) {', '.join(missing[:10])}{more}")
    return [(n, {role: listing[n] for role, listing in listings.items()}) for n in names]
