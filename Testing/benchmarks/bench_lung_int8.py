"""Benchmark: a float tumour model and its int8 copy (``oncoqi lung quantize``) side by side, same cases, same process.

Run from the checkout root::

    PYTHONPATH=src python Testing/benchmarks/bench_lung_int8.py INT8.onnx [--model FLOAT.onnx] [--cases 4]
        [--skip-timing]

Data roles: cases ``0..cases-1`` of the synthetic **development** set (set seed 1000) and LUNG1-001
(real development set, when ``../shared/data`` is present); never the test sets, because this
comparison decides whether the int8 model may replace the float one.

Per case it prints one JSON line: seconds of :func:`oncoqi.lung.segment.segment_ct` with each model,
DSC of all lesions against the truth with each, the two models' agreement (DSC between their lesions
and between their GTV-1), lesion counts, and the largest probability difference. Then (unless
``--skip-timing``) the benchmark's 512 x 512 x 150 CT end to end (``oncoqi lung segment`` as a child
process: wall time and peak memory), float, int8 and float again, so that a change of load between
the runs shows.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from oncoqi.lung.segment import resolve_model, segment_ct
from oncoqi.lung.training.data import phantom_case

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers.datasets import lung1_001  # noqa: E402  (Testing/helpers/datasets.py)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_lung_segmentation import dice, timing_512  # noqa: E402


def side_by_side(name: str, ct, truth, models: dict[str, Path]) -> dict:
    """One case through both models: times, DSC against ``truth`` and the models' agreement."""
    out = {}
    for key, model in models.items():
        start = time.perf_counter()
        out[key] = (segment_ct(ct, model, threads=2), time.perf_counter() - start)
    (a, ta), (b, tb) = out["float"], out["int8"]
    tumour = truth.array != 0
    return {
        "case": name,
        "float_s": round(ta, 1),
        "int8_s": round(tb, 1),
        "float_dsc": round(dice(a.labels.array != 0, tumour), 3),
        "int8_dsc": round(dice(b.labels.array != 0, tumour), 3),
        "agreement": round(dice(a.labels.array != 0, b.labels.array != 0), 3),
        "gtv1_agreement": round(dice(a.labels.array == 1, b.labels.array == 1), 3),
        "lesions": [len(a.lesions), len(b.lesions)],
        "max_probability_difference": round(float(np.abs(a.probability.array - b.probability.array).max()), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("int8", help="the int8 model (oncoqi lung quantize)")
    parser.add_argument("--model", help="the float model (default: the shipped one)")
    parser.add_argument("--cases", type=int, default=4, help="synthetic development cases (default 4)")
    parser.add_argument("--skip-timing", action="store_true")
    args = parser.parse_args(argv)
    models = {"float": resolve_model(args.model), "int8": Path(args.int8)}
    cases = [(c.name, c.ct, c.label) for c in (phantom_case(1000, i) for i in range(args.cases))]
    lung = lung1_001({"gtv": ["GTV-1"]})
    if lung is not None:
        cases.append(("LUNG1-001", lung[0], lung[1]["gtv"]))
    for name, ct, truth in cases:
        print(json.dumps(side_by_side(name, ct, truth, models)), flush=True)
    if not args.skip_timing:
        for key in ("float", "int8", "float"):
            print(json.dumps({"model": key, **timing_512(models[key])}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
