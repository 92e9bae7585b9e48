"""``oncoqi batch`` inside 3D Slicer, headless.

Usage::

    Slicer --no-main-window --python-script LungTumorSegmentation/Scripts/batch.py -- INPUT --out DIR [options]

(add ``--additional-module-paths`` with the four module folders when the extension is not installed;
``xvfb-run -a`` on a Linux machine without a display). It takes the options of ``oncoqi batch``
(``--workers``, ``--scheduler``, ``--series``, ``--model``, ``--force``, ...) and does the same
work: the studies are processed by the core's :mod:`oncoqi.batch` (series choice, lung tumour
segmentation, PET indices, DICOM SEG/SR, QC, ``results.csv``, ``report.html``, resumable). Then,
unless ``--no-mrml``, every complete study is loaded into Slicer's scene and measured again through
the modules' Logic, as a user would in the GUI:

* the CT (MRML volume) and the lesions (segmentation node, one segment per lesion) are saved as
  ``DIR/<patient>/<study>/slicer/ct.nrrd`` and ``lesions.seg.nrrd``;
* OncoQIQuantitativeReporting's ``measurementTable`` gives ``slicer/ct_measurements.tsv``;
* with a PET, the PET is loaded in SUVbw (``OncoQISlicer.dicom.load_pet_suv``) and OncoQIPETIndiC's
  ``computeIndices`` gives ``slicer/pet_indices.tsv``;

and the scene is cleared before the next study. Lung segmentation itself goes through the core
(``oncoqi.batch``), not through OncoQILungTumorSegmentation's Logic.

The core is made importable first: ``OncoQISlicer.dependencies.ensure_core`` checks (and, after
asking, installs) its PyPI dependencies, as every module's Logic does. Exit status: the number of
failed studies (at most 125), 2 for a usage error; Slicer exits with it.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import logging
import sys
from pathlib import Path
from typing import Any

#: The extension's folders: this script lives in ``LungTumorSegmentation/Scripts``.
MODULE_DIR = Path(__file__).resolve().parent.parent
EXTENSION_DIR = MODULE_DIR.parent
MODULE_FOLDERS = ("LungTumorSegmentation", "PETIndiC", "QuantitativeReporting")
#: The package the modules share: a folder of the checkout's root, beside the module folders.
SHARED_PACKAGE = "OncoQISlicer"
#: Sub-folder of a study's output folder holding what Slicer saved.
SLICER_DIR = "slicer"


def build_parser() -> argparse.ArgumentParser:
    """The parser: ``oncoqi batch``'s options plus ``--no-mrml``."""
    from oncoqi.batch.cli import add_parser

    top = argparse.ArgumentParser(prog="Slicer --python-script batch.py --")
    sub = top.add_subparsers(dest="command")
    add_parser(sub)
    parser = sub.choices["batch"]
    parser.prog = "Slicer --no-main-window --python-script LungTumorSegmentation/Scripts/batch.py --"
    parser.add_argument("--no-mrml", action="store_true", help="do not load the results into Slicer's scene")
    return parser


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse the arguments after Slicer's ``--`` (or all of ``argv`` when there is none)."""
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    return build_parser().parse_args(argv)


def _on_path() -> None:
    """Put the module folders, and the folder holding ``OncoQISlicer``, on ``sys.path`` when Slicer was
    started without them (source checkout)."""
    folders = [EXTENSION_DIR / name for name in MODULE_FOLDERS]
    if (EXTENSION_DIR / SHARED_PACKAGE).is_dir():
        folders.append(EXTENSION_DIR)
    for folder in folders:
        if folder.is_dir() and str(folder) not in sys.path:
            sys.path.append(str(folder))


def ensure_core() -> None:
    """Make ``oncoqi`` importable: its PyPI dependencies through ``OncoQISlicer.dependencies``.

    Headless (``--no-main-window``) it installs what is missing without asking; it never waits for input.
    """
    _on_path()
    from OncoQISlicer.dependencies import ensure_core as ensure

    ensure("OncoQILungTumorSegmentation batch")


def python_for_workers() -> str | None:
    """The Python that ``--workers N`` processes must start with inside Slicer: ``PythonSlicer``.

    Slicer's ``sys.executable`` is the application itself, which cannot run a worker; its
    ``bin/PythonSlicer`` (next to the application, or in ``slicer.app.slicerHome``) can. None when
    not found (or not in Slicer).
    """
    import os

    names = ("PythonSlicer.exe", "PythonSlicer") if os.name == "nt" else ("PythonSlicer",)
    folders = [Path(sys.executable).parent]
    try:
        import slicer

        folders.append(Path(slicer.app.slicerHome) / "bin")
    except (ImportError, AttributeError, TypeError):
        pass
    for folder in folders:
        for name in names:
            if (folder / name).is_file():
                return str(folder / name)
    return None


def module_logic(name: str) -> Any:
    """The Logic of scripted module ``name``: Slicer's instance, else a new one from the module script."""
    try:
        import slicer.util

        return slicer.util.getModuleLogic(name)
    except Exception:  # noqa: BLE001 - not in the application (slicer-core), or the module is not loaded
        module = importlib.import_module(name)
        return getattr(module, f"{name}Logic")()


def _save(node: Any, path: Path) -> Path:
    """Write a node through its default storage node (no application IO manager needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    node.AddDefaultStorageNode()
    storage = node.GetStorageNode()
    storage.SetFileName(str(path))
    if not storage.WriteData(node):
        raise OSError(f"{path}: Slicer could not write {node.GetName()}")
    return path


def load_and_measure(result: Any, logics: dict[str, Any], series: dict[str, Any]) -> list[Path]:
    """Load one complete study into the scene, measure it through the modules' Logic, save, clear.

    Parameters
    ----------
    result
        An ``oncoqi.batch.StudyResult`` that is ``done`` or ``skipped``.
    logics
        ``OncoQIQuantitativeReporting`` and ``OncoQIPETIndiC`` Logic objects.
    series
        The cohort's scanned series by SeriesInstanceUID (``CohortResult.series``).

    Returns
    -------
    list[pathlib.Path]
        The files written into ``<study>/slicer``.
    """
    import json

    import numpy as np
    import slicer
    from OncoQISlicer.dicom import load_pet_suv
    from OncoQISlicer.mrml import segmentation_node_from_labels, volume_node_from_image

    from oncoqi.batch.study import DONE_NAME, LABELS_NAME
    from oncoqi.dicom import load_series, read_image
    from oncoqi.lung.naming import lesion_name

    scene = slicer.mrmlScene
    folder = Path(result.folder)
    done = json.loads((folder / DONE_NAME).read_text())
    labels = read_image(folder / LABELS_NAME)
    names = {int(v): lesion_name(int(v)) for v in np.unique(labels.array) if v}
    ct_series = series.get(done.get("ct_series_uid", ""))
    if not names or ct_series is None:
        return []
    out = folder / SLICER_DIR
    written: list[Path] = []
    added: list[Any] = []
    try:
        ct = volume_node_from_image(scene, load_series(ct_series), "CT")
        added.append(ct)
        segmentation = segmentation_node_from_labels(scene, labels, names, reference_volume_node=ct, name="Lesions")
        added.append(segmentation)
        written.append(_save(ct, out / "ct.nrrd"))
        written.append(_save(segmentation, out / "lesions.seg.nrrd"))
        table = logics["OncoQIQuantitativeReporting"].measurementTable(segmentation, ct)
        added.append(table)
        written.append(_save(table, out / "ct_measurements.tsv"))
        pet_series = series.get(done.get("pet_series_uid", ""))
        if pet_series is not None:
            pet = load_pet_suv(scene, [str(f) for f in pet_series.files], "PET SUVbw")
            added.append(pet)
            indices = logics["OncoQIPETIndiC"].computeIndices(pet, segmentation)
            added.append(indices)
            written.append(_save(indices, out / "pet_indices.tsv"))
    finally:
        for node in reversed(added):
            if node is not None and node.GetScene() is scene:
                scene.RemoveNode(node)
    return written


def main(argv: list[str] | None = None, logics: dict[str, Any] | None = None) -> int:
    """Run the batch, then load and measure every complete study in Slicer; returns the exit status.

    Parameters
    ----------
    argv
        The command line (default ``sys.argv``; everything up to ``--`` is Slicer's).
    logics
        ``{"OncoQIQuantitativeReporting": logic, "OncoQIPETIndiC": logic}`` (default: the modules' own).
    """
    argv = list(sys.argv if argv is None else argv)
    try:
        ensure_core()
    except Exception as exc:  # noqa: BLE001 - DependencyError, or pip's CalledProcessError: one line, no traceback
        print(f"error: the OncoQI core cannot be used in this Slicer: {exc}", file=sys.stderr)
        return 2
    from oncoqi.batch.cli import cohort_options_from_args, options_from_args
    from oncoqi.batch.cohort import MAX_EXIT_CODE, run_cohort
    from oncoqi.batch.study import FAILED
    from oncoqi.cli import error_text
    from oncoqi.errors import OncoQIError

    try:
        args = parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    workers = args.workers
    if workers > 1 and args.scheduler is None and Path(sys.executable).name.lower().startswith("slicer"):
        python = python_for_workers()
        if python is None:
            print("note: PythonSlicer not found next to Slicer: --workers 1 used", file=sys.stderr)
            workers = 1
        else:
            import multiprocessing

            multiprocessing.set_executable(python)
    try:
        cohort = dataclasses.replace(cohort_options_from_args(args), workers=workers)
        result = run_cohort(args.input, args.out, options_from_args(args), cohort)
    except OncoQIError as exc:
        print(f"error: {error_text(exc)}", file=sys.stderr)
        return 2
    done = [r for r in result.studies if r.status != FAILED]
    print(f"{len(result.studies)} studies, {len(result.failures)} failure(s); results: {result.files['results.csv']}")
    if not args.no_mrml and done:
        import slicer

        if getattr(slicer, "mrmlScene", None) is None:
            print("note: no MRML scene (not running inside Slicer): --no-mrml assumed", file=sys.stderr)
        else:
            logics = logics or {name: module_logic(name) for name in ("OncoQIQuantitativeReporting", "OncoQIPETIndiC")}
            failed_mrml = 0
            for study in done:
                try:
                    files = load_and_measure(study, logics, result.series)
                    print(f"slicer  {study.key}: {', '.join(f.name for f in files)}")
                except Exception as exc:  # noqa: BLE001 - one study's Slicer step never stops the others
                    failed_mrml += 1
                    print(f"slicer  {study.key}: failed ({type(exc).__name__}: {exc})", file=sys.stderr)
            if failed_mrml:
                return min(len(result.failures) + failed_mrml, MAX_EXIT_CODE)
    return result.exit_code


if __name__ == "__main__":
    status = main()
    try:
        import slicer

        slicer.util.exit(status)
    except (ImportError, AttributeError):
        sys.exit(status)
