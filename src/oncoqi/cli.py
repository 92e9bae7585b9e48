"""The ``oncoqi`` command line.

Each family registers its own sub-command through an ``add_parser(subparsers)`` function in its
``cli`` module (``oncoqi.dicom.cli``, ``oncoqi.phantom.cli``, ...); a sub-command stores its
handler as ``func`` and returns the process exit code. Expected problems (:class:`OncoQIError`)
are printed as one ``error:`` line without a traceback and give exit code 2. Anything else is a bug:
one ``internal error:`` line that says where to report it, exit code 1 (Python's own for an uncaught
exception), and the traceback only with ``-v``, so that a user sees one line and a report can carry
the details.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from oncoqi import __version__
from oncoqi.errors import OncoQIError

#: Modules whose ``add_parser`` adds a sub-command, in the order ``--help`` lists them.
COMMAND_MODULES = (
    "oncoqi.dicom.cli",
    "oncoqi.phantom.cli",
    "oncoqi.lung.cli",
    "oncoqi.pet.cli",
    "oncoqi.tcia.cli",
    "oncoqi.report.cli",
    "oncoqi.batch.cli",
    "oncoqi.demo",
)

#: Where bugs are reported (``[project.urls]`` of pyproject.toml; the core is not always installed as a
#: distribution, inside Slicer say, so it is not read from the package metadata).
ISSUES_URL = "https://github.com/OncoQI/SlicerOncoQI/issues"
#: Exit code of a bug (an unexpected exception), as Python gives for an uncaught one.
BUG_EXIT_CODE = 1


#: ``oncoqi --help``: plain text, shown as written.
DESCRIPTION = """\
OncoQI: quantitative oncologic imaging of lung tumours on CT and PET/CT.

Segments and measures lung tumours on chest CT, computes PET SUV and
PET-IndiC indices, writes and reads DICOM SEG + SR TID 1500 reports, and
browses and downloads TCIA and IDC collections. An expected problem (a bad
file, a missing series, an existing result) ends with one error line naming
it, and exit code 2.
"""
EPILOG = """\
Examples:
  oncoqi demo --out oncoqi-demo
  oncoqi dicom ls /data/cohort
  oncoqi lung segment CT_DIR --out lesions --dicom-seg
  oncoqi -v batch /data/cohort --out results --workers 2

Each command has its own help, with examples: add --help after it, e.g.
"oncoqi lung --help", then "oncoqi lung segment --help".
"""


def build_parser() -> argparse.ArgumentParser:
    """Create the top-level parser with every family's sub-commands."""
    parser = argparse.ArgumentParser(
        prog="oncoqi",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"oncoqi {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def error_text(exc: OncoQIError) -> str:
    """The message of ``exc`` for the command line: with the option to change when it names a setting."""
    if exc.setting is None:
        return str(exc)
    return f"{exc}; on the command line: --{exc.setting.replace('_', '-')}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``oncoqi`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        folders = check_outputs(args)
        code = int(args.func(args) or 0)
        if code not in (2, 130):  # the work ran (batch's exit code counts failed studies); not refused or cancelled
            record_outputs(args, folders)
        return code
    except OncoQIError as exc:
        print(f"error: {error_text(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return 130
    except OSError as exc:  # the environment (disk, permissions), not a bug: one line naming the file
        if args.verbose:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except MemoryError:
        if args.verbose:
            raise
        print("error: out of memory (the input is too large for this machine's memory)", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - a bug: one line for the user, the traceback with -v for a report
        return report_bug(exc, verbose=args.verbose)


def report_bug(exc: Exception, *, verbose: bool) -> int:
    """Print the one line of an unexpected exception (a bug), after its traceback with ``verbose``.

    Returns
    -------
    int
        :data:`BUG_EXIT_CODE`.
    """
    if verbose:
        traceback.print_exception(exc, file=sys.stderr)
    message = " ".join(str(exc).split())
    where = "see the details above" if verbose else "rerun with -v for the details"
    print(
        f"internal error: {type(exc).__name__}{': ' + message if message else ''}; {where} and report it at {ISSUES_URL}",
        file=sys.stderr,
    )
    return BUG_EXIT_CODE


def check_outputs(args: argparse.Namespace) -> list[Path]:
    """Refuse unusable output paths and existing results before the command reads its input.

    A sub-command describes its outputs with ``set_defaults``: ``output_folders`` and ``output_files``
    (argparse destinations), ``results`` (destination -> the files it writes in that folder),
    ``run_command`` (its name) and ``input_arg`` (the destination of what it runs on). Each path is
    checked (:func:`oncoqi.atomic.check_output_folder`, :func:`~oncoqi.atomic.check_output_file`),
    then the overwrite rule (:func:`oncoqi.atomic.check_existing_results`) is applied: without
    ``--force`` nothing that exists is replaced and a folder holding another input's results is
    refused; with it, the old results are removed before the work starts.

    Returns
    -------
    list of Path
        The output folders, for :func:`record_outputs`.

    Raises
    ------
    oncoqi.errors.OutputError
        For the first output path that cannot be written or holds results not to be replaced.
    """
    from oncoqi.atomic import (  # not for --help: it loads SimpleITK
        check_existing_results,
        check_output_file,
        check_output_folder,
        remove_results,
    )
    from oncoqi.errors import OutputError

    force = bool(getattr(args, "force", False) or getattr(args, "overwrite", False))
    input_id = _input_id(args)
    folders = [Path(getattr(args, n)) for n in getattr(args, "output_folders", ()) if getattr(args, n, None)]
    files = [Path(getattr(args, n)) for n in getattr(args, "output_files", ()) if getattr(args, n, None)]
    for folder in folders:
        check_output_folder(folder)
    for file in files:
        check_output_file(file)
    replaced: list[Path] = []
    results = getattr(args, "results", {})
    for name in getattr(args, "output_folders", ()):
        if getattr(args, name, None):
            folder = Path(getattr(args, name))
            replaced += check_existing_results(folder, results.get(name, ()), force=force, input_id=input_id)
    for file in files:
        if file.exists() and not force:
            raise OutputError(
                f"{file}: already exists; not replaced (choose another file, or ask to replace it: force)",
                setting="force",
            )
        if file.exists():
            replaced.append(file)
    remove_results(replaced)
    return folders


def _input_id(args: argparse.Namespace) -> str | None:
    """The resolved path of what the command runs on (``input_arg``), for the run record."""
    value = getattr(args, getattr(args, "input_arg", "") or "-", None)
    return str(Path(value).resolve()) if value else None


def record_outputs(args: argparse.Namespace, folders: list[Path]) -> None:
    """Leave the run record (:func:`oncoqi.atomic.write_run_record`) in every output folder written."""
    from oncoqi.atomic import write_run_record

    command = getattr(args, "run_command", None)  # not ``command``: the top-level sub-command's destination
    if command is None:
        return
    for folder in folders:
        if folder.is_dir():
            write_run_record(folder, command, _input_id(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
