"""The network on the search region's window against the network on whole slices, on the same cases.

Why: :func:`oncoqi.lung.segment.network_pass` runs the network on :func:`network_window` (the rows and
columns of the search region with :data:`~oncoqi.lung.segment.WINDOW_MARGIN_PX` beyond), not on
whole slices, because the network's time grows with the pixels it sees. That is only worth having
if nothing that counts changes: this benchmark runs the pipeline's sparse pass twice on each case,
once as shipped and once with the window widened to the whole slice (the reference: what the
network computes), and reports the largest probability difference inside the search region,
whether the lesion label maps are identical, the share of the whole slices' pixels the network saw,
and the seconds of each.

Cases (development data only, the same as ``bench_lung_sparse.py``): the named checks of issue 25,
the synthetic development set (set seed 1000, ``--cases``), and LUNG1-001, LIDC-IDRI-1011 and
CTChest4 when they are available. Never the fresh test set (bench_lung_fresh.py).

Run::

    PYTHONPATH=src .venv/bin/python Testing/benchmarks/bench_lung_window.py --cases 4 --out window.json
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

from oncoqi.atomic import write_text
from oncoqi.image import Image
from oncoqi.lung import segment
from oncoqi.lung.segment import TumourProbability, tumour_probability

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_lung_sparse import lesion_labels, rows_on_development_cases  # noqa: E402  (the same cases)


def _run(ct: Image, model: Path, whole_slices: bool) -> tuple[TumourProbability, np.ndarray, int, float]:
    """The pipeline's probability, its lesion labels, the network pixels and the seconds."""
    pixels = []
    predict = segment.OnnxSegmenter.predict

    def counting(model: Any, slices: np.ndarray, *args: Any, indices: np.ndarray, **kwargs: Any) -> np.ndarray:
        pixels.append(len(indices) * slices.shape[1] * slices.shape[2])
        return predict(model, slices, *args, indices=indices, **kwargs)

    window = (lambda search, divisor: (slice(None), slice(None))) if whole_slices else segment.network_window
    with (
        mock.patch.object(segment.OnnxSegmenter, "predict", counting),
        mock.patch.object(segment, "network_window", window),
    ):
        start = time.perf_counter()
        found = tumour_probability(ct, model, threads=2)
        seconds = time.perf_counter() - start
    return found, lesion_labels(found, ct), sum(pixels), seconds


def compare(name: str, ct: Image, model: Path) -> dict[str, Any]:
    """Both runs on one case: probability difference in the search region, lesions, pixels, seconds."""
    windowed, windowed_labels, windowed_pixels, windowed_s = _run(ct, model, whole_slices=False)
    whole, whole_labels, whole_pixels, whole_s = _run(ct, model, whole_slices=True)
    search = windowed.masks.search_region.array != 0
    difference = np.abs(windowed.probability.array - whole.probability.array)[search]
    row = {
        "case": name,
        "slices_run": len(windowed.slices_run),
        "same_slices_run": bool(np.array_equal(windowed.slices_run, whole.slices_run)),
        "max_difference_in_search": float(difference.max(initial=0.0)),
        "lesions": int(windowed_labels.max()),
        "identical_lesions": bool(np.array_equal(windowed_labels, whole_labels)),
        "pixel_share": round(windowed_pixels / whole_pixels, 3) if whole_pixels else 1.0,
        "seconds_windowed": round(windowed_s, 1),
        "seconds_whole": round(whole_s, 1),
    }
    print(row, flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    rows, out = rows_on_development_cases(compare, argv, __doc__.splitlines()[0], 4)
    summary = {
        "cases": len(rows),
        "identical_lesions": sum(r["identical_lesions"] for r in rows),
        "max_difference_in_search": max(r["max_difference_in_search"] for r in rows),
    }
    print(summary)
    if out:
        write_text(json.dumps({"rows": rows, "summary": summary}, indent=2) + "\n", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
