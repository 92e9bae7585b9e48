"""``oncoqi batch INPUT --out DIR``: the whole pipeline on every study of a folder or TCIA manifest.

For each study: the chest CT and its PET are chosen (the rule is logged), the lung tumours are
segmented and measured, the PET indices of each lesion and of its PET-thresholded counterpart are
computed, and DICOM SEG + SR TID 1500, a QC picture and a log are written into
``DIR/<PatientID>/<StudyInstanceUID>/``. Then ``DIR/results.csv`` (and ``results.parquet``),
``DIR/failures.csv`` and ``DIR/report.html`` cover the whole cohort.

A rerun skips the complete studies (``done.json`` verified) and redoes failed ones; ``--force``
redoes everything. Exit code: the number of failed studies (and failed downloads), at most 125;
2 for a usage problem (no input, no model, bad option). See Docs/batch.md.
"""

from __future__ import annotations

import argparse
import sys

from oncoqi.batch.cohort import CohortOptions, run_cohort
from oncoqi.batch.study import StudyOptions
from oncoqi.pet.segment import ThresholdMethod

#: ``oncoqi batch --help``: plain text, shown as written.
DESCRIPTION = """\
Run the whole pipeline on every study of a folder or a TCIA/IDC manifest.

For each study the chest CT and its PET are chosen (the rule is logged), the
lung tumours are segmented and measured, the PET indices of each lesion and
of its PET-thresholded counterpart are computed, and DICOM SEG + SR TID
1500, a QC picture and a log are written into
DIR/<PatientID>/<StudyInstanceUID>/. Then DIR/results.csv (and
results.parquet), DIR/failures.csv and DIR/report.html cover the cohort.

A rerun skips complete studies and redoes failed ones; --force redoes
everything. Exit code: the number of failed studies (and failed downloads),
at most 125; 2 for a usage problem (no input, no model, bad option). More:
Docs/batch.md.
"""
EPILOG = """\
Examples:
  oncoqi batch /data/cohort --out results --workers 2
  oncoqi batch manifest.tcia --out results --download-dir downloads
  oncoqi batch /data/cohort --out results --scheduler tcp://host:8786
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``oncoqi batch``."""
    p = sub.add_parser(
        "batch",
        help="run segmentation, PET indices, SEG/SR and QC on every study of a folder or manifest",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", metavar="INPUT", help="folder of DICOM studies (any nesting), or a TCIA .tcia manifest")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="studies processed at once in separate processes (default: %(default)s)",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on a Dask cluster, e.g. tcp://host:8786 (needs the batch extra; shared file system)",
    )
    p.add_argument(
        "--series",
        action="append",
        default=[],
        metavar="UID",
        help="use this CT or PET SeriesInstanceUID in the study that holds it (repeatable)",
    )
    p.add_argument("--model", metavar="M.onnx", help="tumour model (default: the shipped one)")
    p.add_argument(
        "--threads", type=int, default=1, metavar="N", help="onnxruntime threads per study (default: %(default)s)"
    )
    p.add_argument(
        "--pet-method",
        choices=[m.value for m in ThresholdMethod],
        default="background",
        help="threshold of the PET-defined lesion (default: %(default)s)",
    )
    p.add_argument(
        "--pet-value",
        type=float,
        default=50.0,
        help="its value: SUV for fixed, percent otherwise (default: %(default)s)",
    )
    p.add_argument(
        "--pet-margin",
        type=float,
        default=10.0,
        metavar="MM",
        help="the PET lesion is sought within GTV-1 grown by this margin (default: %(default)s)",
    )
    p.add_argument(
        "--min-volume",
        type=float,
        default=0.0,
        metavar="ML",
        help="also drop CT lesions smaller than this (default: %(default)s: only the minimum stored "
        "in the model applies)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="redo studies that are already complete, also in a folder holding another cohort's results",
    )
    p.add_argument("--no-qc", action="store_true", help="do not write the QC pictures")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or per-study lines")
    p.add_argument("-q", "--quiet", dest="no_progress", action="store_true", help="the same as --no-progress")
    g = p.add_argument_group("manifest input")
    g.add_argument("--api-url", help="NBIA v4 API base URL (default: TCIA's)")
    g.add_argument("--source", choices=("nbia", "idc"), default="nbia", help="archive of the manifest's series")
    g.add_argument("--download-dir", metavar="DIR", help="where the series are downloaded (default: OUT/downloads)")
    p.set_defaults(func=run, output_folders=("out", "download_dir"), run_command="batch", input_arg="input")


def options_from_args(args: argparse.Namespace) -> StudyOptions:
    """The :class:`StudyOptions` of ``oncoqi batch``'s arguments.

    Raises
    ------
    OncoQIError
        When the model (``--model``, or the shipped one when none is given) is missing or cannot be
        loaded: every study would fail alike, so it is said once, before any work.
    """
    options = StudyOptions(
        model=args.model,
        threads=args.threads,
        series=tuple(args.series),
        pet_method=args.pet_method,
        pet_value=args.pet_value,
        pet_margin_mm=args.pet_margin,
        min_volume_ml=args.min_volume,
        qc=not args.no_qc,
    )
    from oncoqi.lung.segment import check_model

    check_model(options.model)
    return options


def cohort_options_from_args(args: argparse.Namespace) -> CohortOptions:
    """The :class:`CohortOptions` of ``oncoqi batch``'s arguments."""
    return CohortOptions(
        workers=args.workers,
        scheduler=args.scheduler,
        force=args.force,
        progress=not args.no_progress,
        api_url=args.api_url,
        source=args.source,
        download_dir=args.download_dir,
    )


def run(args: argparse.Namespace) -> int:
    """Run the cohort and print the summary; returns the exit code (failed studies, at most 125)."""
    result = run_cohort(args.input, args.out, options_from_args(args), cohort_options_from_args(args))
    done, skipped, failed = (len(result.with_status(s)) for s in ("done", "skipped", "failed"))
    lesions = sum(1 for r in result.rows if r.get("lesion") not in (None, "", "none"))
    print(
        f"{len(result.studies)} studies: {done} processed, {skipped} already complete, {failed} failed; {lesions} lesions"
    )
    for name, path in result.files.items():
        print(f"{name}: {path}")
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if result.failures:
        print(f"{len(result.failures)} failure(s), reasons in {result.files['failures.csv']}", file=sys.stderr)
    return result.exit_code
