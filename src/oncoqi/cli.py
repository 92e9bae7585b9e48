"""The ``oncoqi`` command line.

Each family registers its own sub-command through an ``add_parser(subparsers)`` function in its
``cli`` module (``oncoqi.dicom.cli``, ``oncoqi.phantom.cli``, ...); a sub-command stores its
handler as ``func`` and returns the process exit code. Expected problems (:class:`OncoQIError`)
are printed as one ``error:`` line without a traceback and give exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

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


def build_parser() -> argparse.ArgumentParser:
    """Create the top-level parser with every family's sub-commands."""
    parser = argparse.ArgumentParser(
        prog="oncoqi",
        description="OncoQI: quantitative oncologic imaging (CT lung tumours, PET, DICOM SEG/SR, TCIA).",
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
        check_outputs(args)
        return int(args.func(args) or 0)
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


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse unusable output paths before the command reads its input.

    A sub-command names its output options in ``set_defaults(output_folders=(...), output_files=(...))``
    (argparse destinations); each one given is checked with :func:`oncoqi.atomic.check_output_folder`
    or :func:`~oncoqi.atomic.check_output_file`.

    Raises
    ------
    oncoqi.errors.OutputError
        For the first output path that cannot be written.
    """
    from oncoqi.atomic import check_output_file, check_output_folder  # not for --help: it loads SimpleITK

    for name in getattr(args, "output_folders", ()):
        if getattr(args, name, None):
            check_output_folder(getattr(args, name))
    for name in getattr(args, "output_files", ()):
        if getattr(args, name, None):
            check_output_file(getattr(args, name))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
