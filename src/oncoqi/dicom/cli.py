"""``oncoqi dicom ls|check``: list and validate the DICOM series of a folder tree."""

from __future__ import annotations

import argparse
import json
import sys

from tqdm import tqdm

from oncoqi.dicom.check import check_series
from oncoqi.dicom.scan import ScanResult, scan_series

#: ``oncoqi dicom --help``: plain text, shown as written.
DESCRIPTION = """\
List and check the DICOM series under a folder before computing on them.

Any nesting, several patients and modalities mixed; files that are not DICOM
are skipped and counted.
"""
EPILOG = """\
Examples:
  oncoqi dicom ls /data/cohort
  oncoqi dicom check /data/cohort --headers-only
"""

#: ``oncoqi dicom ls --help``.
LS_DESCRIPTION = """\
List every DICOM series under a folder, one line per series.

Columns: PatientID, StudyInstanceUID, SeriesInstanceUID, Modality, number of
instances, SeriesDescription. Only headers are read, so listing is fast.
Exit code 1 when no series is found.
"""
LS_EPILOG = """\
Examples:
  oncoqi dicom ls /data/cohort
  oncoqi dicom ls /data/cohort --json --files
"""

#: ``oncoqi dicom check --help``.
CHECK_DESCRIPTION = """\
Check that every image series under a folder loads as a correct volume.

Reports each defect that would make a volume wrong: missing or duplicate
slices, uneven spacing, gantry tilt, mixed orientations or sizes, truncated
pixel data, and compressed transfer syntaxes this installation cannot decode.
Exit code 0 only when every series is sound; SEG, SR, RTSTRUCT and other
non-image objects are listed as skipped.
"""
CHECK_EPILOG = """\
Examples:
  oncoqi dicom check /data/cohort
  oncoqi dicom check /data/cohort/LUNG1-001 --headers-only
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``oncoqi dicom`` and its sub-commands."""
    parser = sub.add_parser(
        "dicom",
        help="list and check DICOM series",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dsub = parser.add_subparsers(dest="dicom_command", metavar="ACTION")
    dsub.required = True

    ls = dsub.add_parser(
        "ls",
        help="one line per series found under DIR",
        description=LS_DESCRIPTION,
        epilog=LS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ls.add_argument("path", metavar="DIR", help="folder tree (or one file) to scan")
    ls.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    ls.add_argument("--files", action="store_true", help="with --json, include every file path")
    ls.set_defaults(func=_ls)

    check = dsub.add_parser(
        "check",
        help="validate every series' geometry and pixel data (exit 0 only when all are sound)",
        description=CHECK_DESCRIPTION,
        epilog=CHECK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("path", metavar="DIR", help="folder tree (or one file) to check")
    check.add_argument("--headers-only", action="store_true", help="check geometry only, do not read pixel data")
    check.set_defaults(func=_check)


def _progress() -> bool:
    return sys.stderr.isatty()


def _warn_damaged(scan: ScanResult) -> None:
    """Name every DICOM file that was left out because its header cannot be read."""
    for path, why in scan.damaged:
        print(f"warning: {path}: {why}; left out", file=sys.stderr)


def _ls(args: argparse.Namespace) -> int:
    scan = scan_series(args.path, progress=_progress())
    _warn_damaged(scan)
    if args.json:
        rows = []
        for s in scan.series:
            d = s.to_dict()
            if not args.files:
                d.pop("files")
            rows.append(d)
        print(json.dumps(rows, indent=2))
    else:
        for s in scan.series:
            print(
                f"{s.patient_id or '-'}\t{s.study_uid}\t{s.series_uid}\t{s.modality or '-'}\t"
                f"{s.number_of_instances}\t{s.description or '-'}"
            )
    if not scan.series:
        print(f"{args.path}: no DICOM series found ({len(scan.skipped)} files skipped)", file=sys.stderr)
        return 1
    return 0


def _check(args: argparse.Namespace) -> int:
    scan = scan_series(args.path, progress=_progress())
    _warn_damaged(scan)
    if not scan.series:
        print(f"{args.path}: no DICOM series found ({len(scan.skipped)} files skipped)", file=sys.stderr)
        return 1
    n_bad = 0
    for s in tqdm(scan.series, desc="checking", unit=" series", leave=False, disable=not _progress()):
        result = check_series(s, read_pixels=not args.headers_only)
        if not result.checked_geometry:
            print(f"skip: {s.name}: not a stack of single-frame images")
            continue
        for w in result.warnings:
            print(f"warning: {w}", file=sys.stderr)
        if result.ok:
            print(f"ok: {s.name}, {s.number_of_instances} instances")
        else:
            n_bad += 1
            for p in result.problems:
                print(f"problem: {p}")
    print(f"{len(scan.series) - n_bad} of {len(scan.series)} series sound", file=sys.stderr)
    return 0 if n_bad == 0 else 1
