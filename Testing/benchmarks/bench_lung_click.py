"""Development benchmark of one click (issue 25): the lesion a point on a tumour gives, on development phantoms.

Run from the checkout root::

    PYTHONPATH=src python Testing/benchmarks/bench_lung_click.py [--groups NAME ...] [--cases N]
        [--cache DIR] [--model PATH] [--json FILE] [--markdown FILE]

Data roles: this is **development** data, on which :mod:`oncoqi.lung.click` may be studied and
tuned. It never uses the fresh test set of ``bench_lung_fresh.py`` (defaults seeds 9001-9020 and
varied set seed 9100), nor any seed a model was trained or tuned on (varied sets 0, 500, 1000 and
7100). The groups (:data:`GROUPS`):

* ``defaults``: ``oncoqi phantom ct --seed S`` for S in 100-109 (the generator's defaults: 256 x 256,
  3 mm slices, one tumour anywhere);
* ``small``: ``oncoqi phantom ct --seed S --size 192 --slices 60`` for S in 120-129;
* ``varied``: cases 0-9 of :func:`oncoqi.lung.training.data.phantom_case` with set seed 777 (the
  varied geometry, drawn as ``bench_lung_fresh.py`` draws its varied half);
* ``hard``: cases 0-14 of set seed 778 with every tumour placed against the mediastinum or the chest
  wall (``hard=1``, the training's hard placements): the tumours the network misses;
* ``subsolid``: cases 0-5 of set seed 779 with part-solid and ground-glass tumours (``subsolid=1``),
  half of them hard-placed.

What it measures: the shipped model segments each study (:func:`oncoqi.lung.segment.segment_ct`;
``--cache`` keeps the studies and results, so that a second run costs only the clicks). Every true
tumour is then clicked twice, at its deepest voxel (the middle a reader clicks,
``bench_lung_fresh.deepest_point``) and half-way from there to its nearest edge (``off``):

* ``missed`` (tumours no lesion overlaps, ``bench_lung_fresh.missed_tumours``): what
  :func:`oncoqi.lung.click.add_lesions_at_points` adds, with the network's probability;
* ``blind`` (every tumour, found or not): the same with the automatic result ignored (no lesion, zero
  probability), so that the CT alone outlines it; the click must work for any tumour.

Each row gives the click's DSC against the tumour, the tumour's volume, what it touches
(``lung``: free in the lung; else ``mediastinum``, ``chest_wall``, ``abdomen``, from the phantom's
truth), its shape, the method that outlined it (``ct``, ``network``, or ``refused`` for a point
taken as aerated lung: nothing added) and the seconds the outline took. The summary gives, per mode and click, the median DSC and the share at
or above 0.8 (issue 25's bar); the exit code is 0.
"""

from __future__ import annotations

import argparse
import gzip
import json
import pickle
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

import oncoqi.phantom
from oncoqi.atomic import atomic_path, write_text
from oncoqi.errors import InputError
from oncoqi.image import Image
from oncoqi.lung.click import ClickOutline, outline_click
from oncoqi.lung.segment import TumourSegmentation, resolve_model, segment_ct
from oncoqi.lung.training.data import phantom_case
from oncoqi.phantom import PhantomOptions, PhantomResult

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_lung_fresh import CLICK_BAR, deepest_point, missed_tumours  # noqa: E402  (the fresh set's rules)
from provenance import provenance  # noqa: E402  (Testing/benchmarks/provenance.py)

#: Development groups (module documentation): name -> (what, seeds or set seed, count).
DEFAULT_SEEDS = tuple(range(100, 110))
SMALL_SEEDS = tuple(range(120, 130))
VARIED_SEED, HARD_SEED, SUBSOLID_SEED = 777, 778, 779
GROUPS = ("defaults", "small", "varied", "hard", "subsolid")
SET_CASES = {"varied": 10, "hard": 15, "subsolid": 6}


@dataclass
class Study:
    """A development study with what the click needs and what it is scored against."""

    name: str
    ct: Image
    truth: Image
    tumours: list[dict[str, Any]]
    result: TumourSegmentation


@contextmanager
def _keeping_phantoms() -> Iterator[list[PhantomResult]]:
    """Keep every study :func:`oncoqi.phantom.make_ct` makes meanwhile: ``phantom_case`` returns the CT
    and labels only, and the truth (where each tumour lies) is in the generator's result."""
    made: list[PhantomResult] = []
    original = oncoqi.phantom.make_ct

    def keep(options: PhantomOptions) -> PhantomResult:
        made.append(original(options))
        return made[-1]

    oncoqi.phantom.make_ct = keep
    try:
        yield made
    finally:
        oncoqi.phantom.make_ct = original


def phantoms(group: str, limit: int | None) -> Iterator[tuple[str, Any]]:
    """``(name, how to make it)`` of the group's studies, in order."""
    if group == "defaults":
        for seed in DEFAULT_SEEDS[:limit]:
            yield f"defaults-{seed}", PhantomOptions(seed=seed)
    elif group == "small":
        for seed in SMALL_SEEDS[:limit]:
            yield f"small-{seed}", PhantomOptions(seed=seed, size=192, slices=60)
    else:
        seed, extra = {
            "varied": (VARIED_SEED, {}),
            "hard": (HARD_SEED, {"hard": 1.0}),
            "subsolid": (SUBSOLID_SEED, {"subsolid": 1.0, "hard": 0.5}),
        }[group]
        for index in range(SET_CASES[group] if limit is None else min(limit, SET_CASES[group])):
            yield f"{group}-{seed}-{index}", (seed, index, extra)


def make_study(name: str, recipe: Any, model: Path) -> Study:
    """Generate the study and segment it with ``model``."""
    if isinstance(recipe, PhantomOptions):
        phantom = oncoqi.phantom.make_ct(recipe)
    else:
        with _keeping_phantoms() as made:
            phantom_case(recipe[0], recipe[1], **recipe[2])
        phantom = made[-1]
    result = segment_ct(phantom.ct, model, threads=2, name=name)
    return Study(name, phantom.ct, phantom.tumour_label, phantom.truth["tumours"], result)


def load_study(name: str, recipe: Any, model: Path, cache: Path | None) -> Study:
    """The study from ``cache`` when it was kept there for this model, else made (and kept)."""
    path = None if cache is None else cache / f"{name}.pkl.gz"
    if path is not None and path.exists():
        kept = pickle.loads(gzip.decompress(path.read_bytes()))
        if kept.pop("model") == model.name:
            return Study(**kept)
    study = make_study(name, recipe, model)
    if path is not None:  # a dict, not the class, which is __main__.Study when this runs as a script
        with atomic_path(path) as tmp:
            tmp.write_bytes(gzip.compress(pickle.dumps({"model": model.name, **vars(study)}), 1))
    return study


def off_centre(mask: np.ndarray, spacing: tuple[float, ...], centre: tuple[int, ...]) -> tuple[int, ...] | None:
    """The voxel half-way from ``centre`` to the nearest voxel outside ``mask`` (None if it falls outside)."""
    _, nearest = ndimage.distance_transform_edt(mask, sampling=spacing, return_indices=True)
    edge = nearest[(slice(None), *centre)]
    half = tuple(int(v) for v in np.rint((np.asarray(centre) + edge) / 2.0))
    return half if mask[half] else None


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 2.0 * float((a & b).sum()) / total if total else 1.0


def _where(tumour: dict[str, Any]) -> str:
    return "+".join(tumour["touches"]) or "lung"


def click_rows(study: Study) -> list[dict[str, Any]]:
    """Each tumour clicked at its middle and off centre, ``missed`` (if it was) and ``blind`` (always)."""
    ct, result = study.ct, study.result
    missed = set(missed_tumours(result, study.truth))
    zeros = np.zeros(ct.array.shape, np.uint8)
    blind = replace(result, labels=result.labels.with_array(zeros), probability=ct.with_array(zeros.astype(float)))
    rows = []
    for entry in study.tumours:
        tumour = study.truth.array == entry["label"]
        if not tumour.any():
            continue
        centre_lps = deepest_point(ct, tumour)
        centre = tuple(int(v) for v in np.rint(ct.lps_to_index(centre_lps))[::-1])
        half = off_centre(tumour, ct.spacing[::-1], centre)
        points = {"centre": centre_lps, "off": None if half is None else ct.index_to_lps(np.array(half[::-1], float))}
        for mode, found in (("missed", result), ("blind", blind)):
            if mode == "missed" and entry["label"] not in missed:
                continue
            for click, point in points.items():
                if point is None:
                    continue
                start = time.perf_counter()
                try:
                    outline = outline_click(ct, point, found.probability, body=found.masks.body)
                except InputError:  # refused (on aerated lung): nothing added
                    outline = ClickOutline(np.zeros(ct.array.shape, bool), "refused")
                seconds = time.perf_counter() - start
                added = outline.mask & (found.labels.array == 0)  # what add_lesions_at_points adds
                rows.append(
                    {
                        "case": study.name,
                        "tumour": entry["label"],
                        "mode": mode,
                        "click": click,
                        "truth_ml": round(float(tumour.sum()) * ct.voxel_volume_ml, 2),
                        "where": _where(entry),
                        "shape": entry["shape"],
                        "method": outline.method,
                        "dsc": round(_dice(added, tumour), 4),
                        "added_ml": round(float(added.sum()) * ct.voxel_volume_ml, 2),
                        "seconds": round(seconds, 3),
                    }
                )
    return rows


def summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per mode and click: count, median DSC, share at or above the bar, and the worst click."""
    out = []
    for mode in ("missed", "blind"):
        for click in ("centre", "off"):
            chosen = [r for r in rows if r["mode"] == mode and r["click"] == click]
            if not chosen:
                continue
            dsc = [r["dsc"] for r in chosen]
            worst = min(chosen, key=lambda r: r["dsc"])
            out.append(
                {
                    "mode": mode,
                    "click": click,
                    "clicks": len(chosen),
                    "dsc_median": round(statistics.median(dsc), 4),
                    "meeting_bar": sum(d >= CLICK_BAR for d in dsc),
                    "worst": f"{worst['case']} tumour {worst['tumour']} ({worst['where']}): {worst['dsc']:.3f}",
                    "seconds_max": max(r["seconds"] for r in chosen),
                }
            )
    return out


def markdown(rows: list[dict[str, Any]], heading: list[str], every_click: bool = True) -> str:
    """The summary and (with ``every_click``) every click, as Markdown tables under the provenance ``heading``."""
    keys = ("case", "tumour", "mode", "click", "truth_ml", "added_ml", "where", "shape", "method", "dsc", "seconds")
    text = [
        "# One click on development phantoms",
        "",
        "Generated by `Testing/benchmarks/bench_lung_click.py --markdown`; do not edit by hand.",
        "",
        *heading,
        "",
        "| mode | click | clicks | median DSC | DSC >= 0.8 | worst | slowest (s) |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {s['mode']} | {s['click']} | {s['clicks']} | {s['dsc_median']:.3f} | {s['meeting_bar']} | "
            f"{s['worst']} | {s['seconds_max']:.2f} |"
            for s in summary(rows)
        ),
    ]
    if every_click:
        text += [
            "",
            "| " + " | ".join(keys) + " |",
            "|" + "---|" * len(keys),
            *("| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows),
        ]
    return "\n".join(text) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", nargs="+", choices=GROUPS, default=list(GROUPS), help="which groups (all)")
    parser.add_argument("--cases", type=int, help="only the first N studies of each group")
    parser.add_argument("--cache", type=Path, help="folder keeping the studies and their segmentations")
    parser.add_argument("--model", help="ONNX model (default: the shipped one)")
    parser.add_argument("--json", type=Path, help="write every click's numbers here")
    parser.add_argument("--markdown", type=Path, help="write the tables here")
    args = parser.parse_args(argv)
    model = resolve_model(args.model)
    heading = provenance(__file__, argv)
    rows: list[dict[str, Any]] = []
    for group in args.groups:
        for name, recipe in phantoms(group, args.cases):
            study = load_study(name, recipe, model, args.cache)
            for row in click_rows(study):
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.json:
        write_text(json.dumps({"rows": rows, "summary": summary(rows)}, indent=2) + "\n", args.json)
    if args.markdown:
        write_text(markdown(rows, heading), args.markdown)
    print(markdown(rows, heading, every_click=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
