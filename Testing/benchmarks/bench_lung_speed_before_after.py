"""A CT end to end (the benchmark's 512 x 512 x 150 one, or ``--ct``), an older checkout against this one, alternately.

Why: a speed change is judged against the pipeline before it on the same machine at the same time
(machines and their load differ by more than most changes). Each run is ``oncoqi lung segment`` in
a child process with ``PYTHONPATH`` set to one checkout's ``src``; its wall time and its own
high-water mark (VmHWM) are reported. Pause everything else on the machine first.

Run (the older checkout as a git worktree)::

    git worktree add --detach ../before a592d8d
    PYTHONPATH=src .venv/bin/python Testing/benchmarks/bench_lung_speed_before_after.py ../before/src \\
        [--int8 int8.onnx] [--model OTHER.onnx ...] [--ct CT]

``--ct`` times another CT (a DICOM folder or a volume file, anything ``oncoqi lung segment`` reads)
instead of the 512 x 512 x 150 phantom of seed 4242.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from oncoqi.atomic import write_volume
from oncoqi.lung.segment import default_model_path
from oncoqi.phantom import PhantomOptions, make_ct

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_lung_segmentation import _vm_hwm_kb  # noqa: E402  (Testing/benchmarks/bench_lung_segmentation.py)

#: This checkout's ``src``.
HERE = Path(__file__).resolve().parents[2] / "src"


def run(name: str, src: Path, volume: Path, model: Path, out: Path) -> dict[str, Any]:
    """One ``oncoqi lung segment`` child process with ``src`` first on its path: seconds and peak memory."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "oncoqi.cli", "lung", "segment", str(volume), "--out", str(out)]
    child = subprocess.Popen(
        [*command, "--model", str(model), "--threads", "2"],
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.DEVNULL,
    )
    peak_kb = 0
    while child.poll() is None:
        peak_kb = max(peak_kb, _vm_hwm_kb(child.pid))
        time.sleep(0.05)
    if child.returncode != 0:
        raise SystemExit(f"{name}: oncoqi lung segment failed with exit code {child.returncode}")
    row = {"run": name, "seconds": round(time.perf_counter() - start, 1), "peak_gb": round(peak_kb / 1024**2, 2)}
    print(row, flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, help="the older checkout's src folder")
    parser.add_argument("--int8", type=Path, help="also run this checkout with this (quantized) model")
    parser.add_argument(
        "--model",
        type=Path,
        action="append",
        default=[],
        help="also run this checkout with this model (repeatable; each row is named after the file)",
    )
    parser.add_argument("--ct", type=Path, help="time this CT instead of the 512 x 512 x 150 phantom")
    args = parser.parse_args(argv)
    model = default_model_path()
    with tempfile.TemporaryDirectory() as tmp:
        if args.ct is not None:
            volume = args.ct
        else:
            study = make_ct(PhantomOptions(seed=4242, size=512, slices=150, slice_thickness_mm=2.0))
            volume = write_volume(study.ct, Path(tmp) / "ct.nrrd")
            del study
        runs = [("before", args.before, model), ("now", HERE, model)]
        if args.int8:
            runs.append(("now int8", HERE, args.int8))
        runs += [(f"now {extra.name}", HERE, extra) for extra in args.model]
        runs += [("before", args.before, model), ("now", HERE, model)]
        rows = [run(name, src, volume, m, Path(tmp) / f"out{n}") for n, (name, src, m) in enumerate(runs)]
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
