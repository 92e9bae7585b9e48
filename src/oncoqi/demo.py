"""``oncoqi demo``: the cohort pipeline (``oncoqi batch``) on the embedded sample PET/CT study.

The demo unpacks the synthetic sample (made by :mod:`oncoqi.phantom`) into ``OUT/sample``, runs
:func:`oncoqi.batch.run_cohort` on it into ``OUT/batch`` (series choice, lung tumour segmentation,
SUV and PET indices, DICOM SEG + SR, QC picture, ``results.csv`` and ``report.html``) and compares
the results with the sample's exact ground truth: the lung mask (Dice), the SUVbw factor and GTV-1
(Dice against the true tumour it overlaps most). A newcomer sees in one command that the
installation works and what OncoQI measures. It needs the trained tumour model (shipped as
``oncoqi/data/lung_unet.onnx``, or ``--model``). A rerun reuses the complete study; ``--force``
redoes it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from oncoqi.batch import CohortOptions, CohortResult, StudyOptions, StudyResult, run_cohort
from oncoqi.batch.study import DONE_NAME, LABELS_NAME, LUNGS_NAME
from oncoqi.dicom import read_image
from oncoqi.lung.naming import lesion_name
from oncoqi.phantom.sample import extract_sample
from oncoqi.progress import for_terminal

#: Columns of the lesion table printed by the demo: (header, results key, format).
TABLE = (
    ("lesion", "lesion", "{}"),
    ("ml", "volume_ml", "{:.1f}"),
    ("RECIST mm", "recist_mm", "{:.1f}"),
    ("side", "side", "{}"),
    ("conf", "confidence", "{:.2f}"),
    ("SUVmax", "suv_max", "{:.2f}"),
    ("SUVpeak", "suv_peak", "{:.2f}"),
    ("MTV ml", "mtv_ml", "{:.1f}"),
    ("TLG", "tlg", "{:.1f}"),
    ("PET-thr MTV", "thr_mtv_ml", "{:.1f}"),
)


#: Lesion rows printed (the table holds them all).
MAX_ROWS = 10


#: ``oncoqi demo --help``: plain text, shown as written.
DESCRIPTION = """\
Check an installation: the batch pipeline on the embedded sample PET/CT.

It compares the results with the sample's exact truth. Unpacks the synthetic
sample into OUT/sample, runs oncoqi batch on it into OUT/batch (series choice,
lung tumour segmentation, SUV and PET indices, DICOM SEG + SR, QC picture,
results.csv and report.html) and prints the lung mask Dice, the SUVbw factor
and GTV-1's Dice against the true tumour, then the lesion table. Needs the
tumour model (shipped in the package, or --model). A rerun reuses the complete
study; --force redoes it.
"""
EPILOG = """\
Examples:
  oncoqi demo
  oncoqi demo --out demo --force
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``oncoqi demo``."""
    parser = sub.add_parser(
        "demo",
        help="run the batch pipeline on the embedded sample PET/CT study",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--out", default="oncoqi-demo", help="folder for the sample and the results (default: %(default)s)"
    )
    parser.add_argument("--model", metavar="M.onnx", help="tumour model (default: the shipped one)")
    parser.add_argument("--force", action="store_true", help="redo the study even when it is complete")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress lines per stage on stderr (shown only on a terminal)"
    )
    parser.set_defaults(func=run_demo, output_folders=("out",))


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * np.logical_and(a, b).sum() / max(1, a.sum() + b.sum()))


def _best_lesion(labels: np.ndarray, tumour: np.ndarray) -> tuple[int, float] | None:
    """The lesion label overlapping ``tumour`` most and its Dice with it, or None when none overlaps."""
    hit = labels[tumour & (labels > 0)]
    if hit.size == 0:
        return None
    label = int(np.bincount(hit.astype(np.int64)).argmax())
    return label, _dice(labels == label, tumour)


def _cell(row: dict, key: str, fmt: str) -> str:
    value = row.get(key)
    return "-" if value is None or value == "" else fmt.format(value)


def run_demo(args: argparse.Namespace) -> int:
    """Unpack the sample, run the batch on it, print each result against the truth. Returns the exit code."""
    start = time.perf_counter()
    out = Path(args.out)
    from oncoqi.lung.segment import check_model

    check_model(args.model)  # a missing or bad model: said once, before unpacking anything
    sample = extract_sample(out / "sample")
    truth = json.loads((sample / "truth" / "truth.json").read_text())
    print(f"sample study unpacked in {sample}")

    print(f"1. oncoqi batch {sample} --out {out / 'batch'}")
    # one study: onnxruntime may use every core (a cohort run uses one per study and runs studies in parallel)
    options = StudyOptions(model=args.model, threads=None)
    with for_terminal(sys.stderr, quiet=args.quiet, prefix="  ") as stages:
        result = run_cohort(
            sample,
            out / "batch",
            options,
            CohortOptions(force=args.force, progress=False),
            on_stage=lambda _key, stage, fraction: stages.update(stage, fraction),
        )
    (study,) = result.studies
    if study.status == "failed":
        print(f"  failed: {study.error} (log: {study.folder / 'log.txt'})")
        return 1
    info = _show_choice(study)
    _show_lungs(study, sample, truth, info)
    _show_suv(info, truth)
    _show_tumours(study, sample, truth, info)
    _show_table(result, study)
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


def _show_choice(study: StudyResult) -> dict[str, Any]:
    """Step 1's outcome: whether the study was processed now and which series were chosen; its ``done.json`` record."""
    done = json.loads((study.folder / DONE_NAME).read_text())
    info = done.get("study", {})
    state = "processed" if study.status == "done" else "complete from an earlier run (--force redoes it)"
    print(f"  {study.key}: {state}")
    for line in done["selection"][1:]:
        print(f"  {line}")
    return info


def _show_lungs(study: StudyResult, sample: Path, truth: dict[str, Any], info: dict[str, Any]) -> None:
    """Step 2: the lung volumes found and their Dice against the sample's true lung mask."""
    print("2. lung isolation on the CT")
    lungs = read_image(study.folder / LUNGS_NAME).array
    reference = read_image(sample / "truth" / "lung_mask.nrrd").array
    volumes = info.get("lung_volume_ml", {})
    print(
        f"  right {volumes.get('right', float('nan')):.0f} ml, left {volumes.get('left', float('nan')):.0f} ml "
        f"(truth {truth['lung_volume_ml']['right']:.0f} / {truth['lung_volume_ml']['left']:.0f} ml), "
        f"Dice {_dice(lungs > 0, reference > 0):.3f} against the true lung mask"
    )


def _show_suv(info: dict[str, Any], truth: dict[str, Any]) -> None:
    """Step 3: the SUV factors read from the PET headers against the true SUVbw factor."""
    print("3. PET SUV normalisation from the DICOM headers")
    suv = info.get("suv")
    expected = truth["pet"]["suvbw_factor"]
    if suv is None or suv.get("suvbw") is None:
        print("  no SUVbw factor (no PET chosen, or no lesion to measure on it)")
    else:
        print(
            f"  SUVbw factor {suv['suvbw']:.9g} g/ml per Bq/ml (truth {expected:.9g}), "
            f"SUL {suv['sul']:.6g}, SUVbsa {suv['suvbsa']:.6g}"
        )
        for warning in suv.get("warnings", []):
            print(f"  note: {warning}")


def _show_tumours(study: StudyResult, sample: Path, truth: dict[str, Any], info: dict[str, Any]) -> None:
    """Step 4: GTV-1 against the true tumour it overlaps most, then each true tumour and the lesion that found it."""
    print("4. lung tumours: GTV-1 against the truth")
    labels = read_image(study.folder / LABELS_NAME).array
    true_labels = read_image(sample / "truth" / "tumor_label.nrrd").array
    gtv = labels == 1
    if gtv.any():
        overlap = [(int(np.logical_and(gtv, true_labels == t["label"]).sum()), t) for t in truth.get("tumours", [])]
        hits, best = max(overlap, key=lambda o: o[0]) if overlap else (0, None)
        if best is not None and hits:
            dice = _dice(gtv, true_labels == best["label"])
            print(
                f"  GTV-1 {float(gtv.sum()) * float(np.prod(info['ct']['spacing_mm'])) / 1000:.1f} ml, "
                f"Dice {dice:.3f} against true tumour {best['label']} ({best['volume_ml']:.1f} ml)"
            )
        else:
            print("  GTV-1 overlaps no true tumour (Dice 0.000)")
    else:
        print("  no lesion found")
    for t in truth.get("tumours", []):
        found = _best_lesion(labels, true_labels == t["label"])
        match = f"found as {lesion_name(found[0])} (Dice {found[1]:.3f})" if found else "not found"
        print(
            f"  true tumour {t['label']}: {t['volume_ml']:.1f} ml, {t['shape']}, {t['location']}, {t['side']} lung; {match}"
        )


def _show_table(result: CohortResult, study: StudyResult) -> None:
    """Step 5: the first rows of the lesion table and where every output of the run lies."""
    print("5. lesion table (results.csv)")
    print("  " + "  ".join(f"{h:>11}" for h, _, _ in TABLE))
    for row in result.rows[:MAX_ROWS]:
        print("  " + "  ".join(f"{_cell(row, key, fmt):>11}" for _, key, fmt in TABLE))
    if len(result.rows) > MAX_ROWS:
        print(f"  ... {len(result.rows) - MAX_ROWS} more lesion(s) in results.csv")
    for name, path in result.files.items():
        print(f"  {name}: {path}")
    print(f"  QC picture: {study.folder / 'qc.png'}; SEG/SR: {study.folder / 'ct'}, {study.folder / 'pet'}")
