"""Benchmark: lung isolation accuracy (Dice of the tight lung mask) and time per case.

Run from the checkout root::

    PYTHONPATH=src python Testing/benchmarks/bench_lung_isolation.py [--seeds 20] [--first-seed 1000]
        [--threads 1] [--qc DIR] [--json] [--markdown FILE]

Cases:

* ``phantom-<seed>``: synthetic thorax CTs (:mod:`oncoqi.phantom`, default options: 256 x 256
  pixels over 380 mm, 100 slices of 3 mm, one random tumour) from seeds that no test or
  development run used (1000 onwards by default); Dice of the tight lungs against the phantom's
  exact lung mask (vessels, airways and tumours inside the lungs included);
* ``phantom-512``: one 512 x 512 x 150 phantom, for the time on a full-size CT;
* ``LUNG1-001``: the real NSCLC-Radiomics CT (512 x 512 x 134) against its expert contours
  ``Lung-Left`` + ``Lung-Right`` (RTSTRUCT), when ``../shared/data`` is present.

Times are of :func:`oncoqi.lung.isolate_lungs` alone (``--threads 1``, the default, limits
SimpleITK to one thread; NumPy and SciPy use one core here anyway). The exit code is 1 when a
Dice is below 0.95 (the project's bar) or a full-size case takes 15 s or more. ``--markdown FILE``
also writes the tables, the bars, the machine and the command to FILE (atomically; the
validation page links ``Docs/validation/lung-isolation.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk

from oncoqi.atomic import write_text
from oncoqi.dicom import load_series, scan_series
from oncoqi.dicom.rtstruct import read_rtstruct, rois_to_label
from oncoqi.image import Image
from oncoqi.lung import isolate_lungs, write_lung_qc
from oncoqi.phantom import PhantomOptions, make_ct

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from datasets import dataset  # noqa: E402  (Testing/datasets.py: unpacks ../shared/data once)

DICE_BAR = 0.95
TIME_BAR_S = 15.0


def provenance(argv: list[str] | None) -> list[str]:
    """Markdown lines: when, on which machine and by which command this run was made (call it first)."""
    script = Path(__file__).resolve()
    here = script.relative_to(Path.cwd()) if script.is_relative_to(Path.cwd()) else script
    cpu = platform.processor() or platform.machine()
    if Path("/proc/cpuinfo").exists():
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next((x.split(":", 1)[1].strip() for x in lines if x.startswith("model name")), cpu)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    git = ["git", "-C", str(script.parent), "describe", "--always", "--dirty"]
    commit = subprocess.run(git, capture_output=True, text=True, check=False).stdout.strip() or "unknown"
    command = f"PYTHONPATH=src python {here} {shlex.join(sys.argv[1:] if argv is None else argv)}".rstrip()
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    niceness = os.nice(0) if hasattr(os, "nice") else "unknown"  # POSIX only, as the load average
    load = f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "unknown"
    return [
        (
            f"Run {when} on {cpu}, {cpus} CPUs available ({os.cpu_count()} in the machine), niceness "
            f"{niceness}, load average {load} at the start; Python {platform.python_version()}, "
            f"OncoQI `{commit}`. Command, from the checkout root:"
        ),
        "",
        f"```sh\n{command}\n```",
    ]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


def run_case(
    name: str, ct: Image, truth: np.ndarray, qc: Path | None, reference: Image | None = None
) -> dict[str, Any]:
    """Isolate the lungs of ``ct`` and compare with ``truth`` (non-zero = lung)."""
    start = time.perf_counter()
    masks = isolate_lungs(ct, name=name)
    seconds = time.perf_counter() - start
    if qc is not None:
        write_lung_qc(ct, masks, qc / f"{name}.png", reference=reference, title=name)
    volumes = masks.volume_ml
    return {
        "case": name,
        "size": list(ct.size),
        "dice": round(dice(masks.lungs.array, truth), 4),
        "dice_right": round(dice(masks.lungs.array == 1, truth == 1), 4),
        "dice_left": round(dice(masks.lungs.array == 2, truth == 2), 4),
        "volume_ml": round(float(volumes["total"]), 1),
        "truth_volume_ml": round(float((truth > 0).sum()) * ct.voxel_volume_ml, 1),
        "seconds": round(seconds, 2),
    }


def lung1_case(qc: Path | None) -> dict[str, Any] | None:
    try:
        root = dataset("nsclc-radiomics-lung1-001")
    except pytest.skip.Exception as skipped:
        print(f"LUNG1-001 skipped: {skipped}", file=sys.stderr)
        return None
    scan = scan_series(root)
    ct = load_series(next(s for s in scan.series if s.modality == "CT"))
    ss = read_rtstruct(next(s for s in scan.series if s.modality == "RTSTRUCT").files[0])
    reference = rois_to_label(ss, ct, ["Lung-Right", "Lung-Left"])  # 1 right, 2 left, as ours
    return run_case("LUNG1-001", ct, reference.array, qc, reference)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def markdown(rows: list[dict[str, Any]], summary: dict[str, Any], info: list[str]) -> str:
    """The result tables of ``Docs/validation/lung-isolation.md`` (``info``: :func:`provenance`)."""
    lung1 = next((r for r in rows if r["case"] == "LUNG1-001"), None)
    low = [r["case"] for r in rows if r["dice"] < DICE_BAR]
    slow = [case for case, seconds in summary["full_size_seconds"].items() if seconds >= TIME_BAR_S]
    missed = [f"Dice below {DICE_BAR}: {', '.join(low)}"] if low else []
    missed += [f"{TIME_BAR_S:g} s or more: {', '.join(slow)}"] if slow else []
    lines = [
        "# Lung isolation: Dice and time per case",
        "",
        "Generated by `Testing/benchmarks/bench_lung_isolation.py --markdown`; do not edit by hand.",
        "",
        *info,
        "",
        (
            f"Times are of `oncoqi.lung.isolate_lungs` alone (SimpleITK limited to {summary['threads']} thread(s)). "
            "Dice is of the tight lung mask against the phantom's exact lung mask (synthetic cases) or the "
            "expert `Lung-Right` + `Lung-Left` contours (LUNG1-001). No reference tool is run: no ratio."
        ),
        "",
        "| measure | value | bar |",
        "|---|---|---|",
        f"| synthetic phantoms (256 x 256 x 100) | {summary['phantoms']} | |",
        f"| phantom Dice, minimum | {_fmt(summary['phantom_dice_min'], '.4f')} | >= {DICE_BAR} |",
        f"| phantom Dice, median | {_fmt(summary['phantom_dice_median'], '.4f')} | >= {DICE_BAR} |",
        f"| phantom time, median | {_fmt(summary['phantom_seconds_median'], '.2f')} s | |",
    ]
    for case, seconds in summary["full_size_seconds"].items():
        lines.append(f"| {case} time (512 x 512) | {seconds:.2f} s | < {TIME_BAR_S:g} s |")
    lines.append(f"| LUNG1-001 Dice | {_fmt(lung1['dice'] if lung1 else None, '.4f')} | >= {DICE_BAR} |")
    lines += ["", f"**Bars missed: {'; '.join(missed)}.**" if missed else "**All bars met.**", ""]
    if lung1 is None:
        lines += ["LUNG1-001 was skipped (no `../shared/data`).", ""]
    lines += [
        "| case | size (i x j x k) | Dice | Dice right | Dice left | volume ml | truth ml | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        size = " x ".join(str(n) for n in r["size"])
        lines.append(
            f"| {r['case']} | {size} | {r['dice']:.4f} | {r['dice_right']:.4f} | {r['dice_left']:.4f} "
            f"| {r['volume_ml']} | {r['truth_volume_ml']} | {r['seconds']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20, help="number of synthetic studies")
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1, help="SimpleITK threads")
    parser.add_argument("--qc", type=Path, help="folder to write a QC picture per case into")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="also write the result tables here as Markdown")
    args = parser.parse_args(argv)
    info = provenance(argv)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(args.threads)
    if args.qc is not None:
        args.qc.mkdir(parents=True, exist_ok=True)

    rows = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        study = make_ct(PhantomOptions(seed=seed))
        rows.append(run_case(f"phantom-{seed}", study.ct, study.lung_mask.array, args.qc))
        if not args.json:
            print(rows[-1], flush=True)
    phantom_dice = [r["dice"] for r in rows]
    phantom_seconds = [r["seconds"] for r in rows]
    large = make_ct(PhantomOptions(seed=args.first_seed + args.seeds, size=512, slices=150, slice_thickness_mm=2.0))
    rows.append(run_case("phantom-512", large.ct, large.lung_mask.array, args.qc))
    real = lung1_case(args.qc)
    if real is not None:
        rows.append(real)
    if not args.json:
        for row in rows[len(phantom_dice):]:
            print(row)

    full_size = [r for r in rows if r["size"][0] >= 512]
    summary = {
        "phantoms": len(phantom_dice),
        "phantom_dice_min": min(phantom_dice) if phantom_dice else None,
        "phantom_dice_median": statistics.median(phantom_dice) if phantom_dice else None,
        "phantom_seconds_median": statistics.median(phantom_seconds) if phantom_seconds else None,
        "full_size_seconds": {r["case"]: r["seconds"] for r in full_size},
        "lung1_dice": real["dice"] if real else None,
        "threads": args.threads,
    }
    if args.json:
        print(json.dumps({"cases": rows, "summary": summary}, indent=2))
    else:
        print(json.dumps(summary))
    failed = [r["case"] for r in rows if r["dice"] < DICE_BAR]
    failed += [r["case"] for r in full_size if r["seconds"] >= TIME_BAR_S]
    if args.markdown:
        write_text(markdown(rows, summary, info), args.markdown)
    if failed:
        print(f"below the bar: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
