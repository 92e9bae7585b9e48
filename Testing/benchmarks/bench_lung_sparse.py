"""The sparse network pass against the dense one, on the same cases in the same process.

Why: :func:`oncoqi.lung.segment.network_pass` skips slices between first-pass slices where the
network saw nothing. That is only worth having if the lesions stay those of the dense pass; this
benchmark runs both passes on each case, back to back, and reports the slices run, the seconds of
each pass and whether the lesion label maps are identical (and if not, the Dice between them).

Cases (all development data: they may guide choices, and are reported as such): the named checks of
issue 25 (the embedded demo sample's CT, ``scripts/make_sample.py``; seed 3; seed 5 at 192 x 60; the
512 x 512 x 150 timing phantom of seed 4242 at 2 mm), the synthetic development
set (set seed 1000, ``--cases``), and the real CTs LUNG1-001, LIDC-IDRI-1011 and CTChest4 when they
are available. Never the fresh test set (bench_lung_fresh.py).

Run::

    PYTHONPATH=src .venv/bin/python Testing/benchmarks/bench_lung_sparse.py --cases 10 --out sparse.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from oncoqi.atomic import write_text
from oncoqi.dicom import read_image
from oncoqi.image import Image
from oncoqi.lung.postprocess import label_lesions
from oncoqi.lung.segment import SPARSE_STEP_MM, TumourProbability, resolve_model, tumour_probability
from oncoqi.lung.training.data import phantom_case
from oncoqi.phantom import PhantomOptions, make_ct

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers.datasets import dataset_or_none, lung1_001  # noqa: E402  (Testing/helpers/datasets.py)

#: The synthetic development set (the same set seed as bench_lung_segmentation.py's development figures).
DEVELOPMENT_SET_SEED = 1000


def _sample_options() -> PhantomOptions:
    """The embedded demo sample's phantom options, from the script that makes it."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "make_sample.py"
    spec = importlib.util.spec_from_file_location("make_sample", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SAMPLE_OPTIONS


def development_cases(cases: int) -> Iterator[tuple[str, Image]]:
    """The named checks, the synthetic development set's first ``cases`` and the real development CTs."""
    yield "demo sample", make_ct(_sample_options()).ct
    yield "seed 3", make_ct(PhantomOptions(seed=3)).ct
    yield "seed 5 (192 x 60)", make_ct(PhantomOptions(seed=5, size=192, slices=60)).ct
    yield (
        "seed 4242 (512 x 150, 2 mm)",
        make_ct(PhantomOptions(seed=4242, size=512, slices=150, slice_thickness_mm=2.0)).ct,
    )
    for index in range(cases):
        case = phantom_case(DEVELOPMENT_SET_SEED, index)
        yield case.name, case.ct
    loaded = lung1_001({"lungs": ["Lung-Right", "Lung-Left"]})
    if loaded is not None:
        yield "LUNG1-001", loaded[0]
    root = dataset_or_none("lidc-idri-1011")
    if root is not None:
        yield "LIDC-IDRI-1011", read_image(root)
    try:
        import slicerio
    except ImportError:
        print("CTChest4 skipped: slicerio is not installed", file=sys.stderr)
    else:
        yield "CTChest4", read_image(slicerio.get_testdata_file("CTChest4.nrrd"))


def lesion_labels(found: TumourProbability, ct: Image) -> np.ndarray:
    """The lesion label array :func:`oncoqi.lung.segment.segment_ct` makes of ``found`` (before the evidence ordering)."""
    return label_lesions(
        found.probability,
        found.threshold,
        found.rules,
        search_mask=found.masks.search_region,
        ct=ct,
        lungs=found.masks.lungs,
    ).array


def _lesions(ct: Image, model: Path, step_mm: float) -> tuple[np.ndarray, int, float]:
    """Lesion labels, slices run, seconds."""
    start = time.perf_counter()
    found = tumour_probability(ct, model, threads=2, step_mm=step_mm)
    seconds = time.perf_counter() - start
    return lesion_labels(found, ct), len(found.slices_run), seconds


def compare(name: str, ct: Image, model: Path) -> dict[str, Any]:
    """Both passes on one case: slices, seconds, and whether the lesions agree."""
    dense, dense_slices, dense_s = _lesions(ct, model, 0.0)
    sparse, sparse_slices, sparse_s = _lesions(ct, model, SPARSE_STEP_MM)
    a, b = dense != 0, sparse != 0
    both = int(a.sum() + b.sum())
    row = {
        "case": name,
        "slice_mm": round(abs(ct.spacing[2]), 2),
        "slices_dense": dense_slices,
        "slices_sparse": sparse_slices,
        "seconds_dense": round(dense_s, 1),
        "seconds_sparse": round(sparse_s, 1),
        "speed_ratio": round(dense_s / sparse_s, 2),
        "lesions_dense": int(dense.max()),
        "lesions_sparse": int(sparse.max()),
        "identical": bool(np.array_equal(dense, sparse)),
        "lesion_dice": round(2.0 * int((a & b).sum()) / both, 6) if both else 1.0,
    }
    print(row, flush=True)
    return row


def rows_on_development_cases(
    compare_case: Callable[[str, Image, Path], dict[str, Any]], argv: list[str] | None, description: str, cases: int
) -> tuple[list[dict[str, Any]], Path | None]:
    """``--cases`` (default ``cases``), ``--model`` and ``--out`` from ``argv``; ``compare_case(name, ct, model)``
    on each of :func:`development_cases`. Returns its rows and where to write them (None: nowhere)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--cases", type=int, default=cases, help=f"synthetic development cases (default {cases})")
    parser.add_argument("--model", type=Path, help="ONNX model (default: the shipped one)")
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    model = resolve_model(args.model)
    return [compare_case(name, ct, model) for name, ct in development_cases(args.cases)], args.out


def main(argv: list[str] | None = None) -> int:
    rows, out = rows_on_development_cases(compare, argv, __doc__.splitlines()[0], 10)
    dense = sum(r["seconds_dense"] for r in rows)
    sparse = sum(r["seconds_sparse"] for r in rows)
    summary = {
        "cases": len(rows),
        "identical": sum(r["identical"] for r in rows),
        "min_lesion_dice": min(r["lesion_dice"] for r in rows),
        "seconds_dense": round(dense, 1),
        "seconds_sparse": round(sparse, 1),
        "speed_ratio": round(dense / sparse, 2),
    }
    print(summary)
    if out:
        write_text(json.dumps({"step_mm": SPARSE_STEP_MM, "rows": rows, "summary": summary}, indent=1), out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
