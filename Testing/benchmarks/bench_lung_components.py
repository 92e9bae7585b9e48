"""What the kept components of a tumour model are made of: true tumours against false lesions.

Why: the false lesions of the 12-filter networks on real CT lie mostly outside the aerated lung,
at the hilum and the mediastinal border. A rule that drops them must keep the true tumours, on
real CT and on phantoms. This benchmark lists, per kept component (the model's own threshold and
rules, the lung rule off), the two measures such a rule could use, so that the choice is made on
figures: the share inside the tight lung mask (``lung_fraction``, the rule
``oncoqi.min_lung_fraction`` applies), and the aerated share (below -400 HU) of a 3 mm shell
around it (a tumour in the lung is surrounded by lung on most sides, a mediastinal structure by
soft tissue). It also scores the tuning set with each lung-fraction floor.

Cases: the tuning set (phantom set seed 500, ``--cases``; the set ``oncoqi lung tune`` uses) and
the real development CTs LUNG1-001, LIDC-IDRI-1011 and CTChest4 when available (development data:
they may guide choices, and are reported as such). Never a test set. For a case with tumour it also
says how much of it the kept components find and miss (with the missed part's CT number and
probability), and how much they hold outside it.

Run::

    PYTHONPATH=src python Testing/benchmarks/bench_lung_components.py --model training/hc12_mined.onnx
    PYTHONPATH=src python Testing/benchmarks/bench_lung_components.py --model M --cases 0 --threshold 0.7
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy import ndimage

from oncoqi.dicom import read_image
from oncoqi.dicom.lidc import consensus_label, read_lidc_xml
from oncoqi.image import Image
from oncoqi.lung.onnx_model import OnnxSegmenter
from oncoqi.lung.postprocess import DENSE_HU, Components, LesionRules, find_components
from oncoqi.lung.segment import tumour_probability
from oncoqi.lung.training import tune
from oncoqi.lung.training.data import phantom_cases

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers.datasets import dataset_or_none, lung1_001  # noqa: E402  (Testing/helpers/datasets.py)

#: Lung-fraction floors scored on the tuning set.
FLOORS = (0.0, 0.1, 0.25, 0.5)
#: Width (mm) of the shell around a component whose aerated share is reported (at least one pixel).
SHELL_MM = 3.0


def aerated_shell(inside: np.ndarray, ct: np.ndarray, spacing: tuple[float, float, float]) -> float:
    """Share of the voxels within :data:`SHELL_MM` (or one pixel) outside ``inside`` (bool, ``[k, j, i]``) below ``DENSE_HU``."""
    width = max(SHELL_MM, min(spacing[:2]))
    box = ndimage.find_objects(inside.astype(np.uint8))[0]
    pad = [int(np.ceil(width / s)) + 1 for s in spacing[::-1]]
    box = tuple(slice(max(0, b.start - p), min(n, b.stop + p)) for b, p, n in zip(box, pad, inside.shape))
    distance = ndimage.distance_transform_edt(~inside[box], sampling=spacing[::-1])
    shell = (distance > 0) & (distance <= width)
    return float((ct[box][shell] < DENSE_HU).mean())


def describe(
    name: str, ct: Image, truth: np.ndarray | None, probability: Image, found: Components, rules: LesionRules
) -> None:
    """Print one line per component of ``found`` that ``rules`` keep (``truth``: tumour voxels, or None)."""
    kept = np.flatnonzero(found.dropped(rules) == "")
    if truth is not None and truth.any():
        ours = np.isin(found.labels, kept + 1)
        missed, extra, ml = truth & ~ours, ours & ~truth, ct.voxel_volume_ml
        print(
            f"{name}: truth {truth.sum() * ml:.1f} ml, found {(truth & ours).sum() * ml:.1f} ml, missed "
            f"{missed.sum() * ml:.1f} ml (median {_median(ct.array[missed])} HU, probability "
            f"{_median(probability.array[missed], 4)}), kept outside it {extra.sum() * ml:.1f} ml "
            f"(median {_median(ct.array[extra])} HU)"
        )
    for index in kept:
        inside = found.labels == index + 1
        what = "-" if truth is None else ("tumour" if truth[inside].any() else "false")
        print(
            f"{name}: {found.volume_ml[index]:.2f} ml, {what}, in lung {found.lung_fraction[index]:.2f}, "
            f"aerated shell {aerated_shell(inside, ct.array, ct.spacing):.2f}",
            flush=True,
        )


def tuning_set(count: int, model: Path) -> list[tune.CaseProbability]:
    """Tuning-set cases with the network's probability, each run once and, unlike
    :func:`oncoqi.lung.training.tune.case_probabilities`, not cropped, so that the shells are whole."""
    out = []
    for case in phantom_cases(count, 500):
        result = tumour_probability(case.ct, model, threads=2, name=case.name, step_mm=0)  # dense, as tuning
        search, truth = result.masks.search_region, case.label.array != 0
        out.append(
            tune.CaseProbability(case.name, case.ct, result.probability, search, truth, case.lungs, result.masks.lungs)
        )
    return out


def _median(values: np.ndarray, digits: int = 0) -> str:
    return f"{np.median(values):.{digits}f}" if values.size else "-"


def real_cases() -> list[tuple[str, Image, np.ndarray | None]]:
    """The real development CTs that are available, with their tumour voxels (None: none outlined)."""
    out = []
    loaded = lung1_001({"gtv": ["GTV-1"]})
    if loaded is not None:
        out.append(("LUNG1-001", loaded[0], loaded[1]["gtv"].array != 0))
    root = dataset_or_none("lidc-idri-1011")
    if root is not None:
        ct = read_image(root)
        nodules = consensus_label(read_lidc_xml(sorted(root.rglob("*.xml"))), ct, min_readers=3)
        out.append(("LIDC-IDRI-1011", ct, nodules.array != 0))
    try:
        import slicerio

        out.append(("CTChest4", read_image(slicerio.get_testdata_file("CTChest4.nrrd")), None))
    except ImportError:
        print("CTChest4 skipped: slicerio is not installed", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--cases", type=int, default=20, help="tuning-set cases (set seed 500; 0: the real CTs only)")
    parser.add_argument("--threshold", type=float, help="probability threshold (default: the model's)")
    args = parser.parse_args(argv)
    with OnnxSegmenter(args.model, threads=1) as segmenter:
        rules, threshold = replace(segmenter.lesion_rules, min_lung_fraction=0.0), segmenter.threshold
    threshold = threshold if args.threshold is None else args.threshold
    judged = tune._judge(tuning_set(args.cases, args.model), threshold)
    for floor in FLOORS if judged else ():
        setting = tune._score(judged, threshold, replace(rules, min_lung_fraction=floor))
        print(f"lung-fraction floor {floor:g}: {setting.note(args.cases, 500)}")
    for j in judged:
        describe(j.case.name, j.case.ct, j.case.truth, j.case.probability, j.components, rules)
    for name, ct, truth in real_cases():
        result = tumour_probability(ct, args.model, threads=2, name=name)
        found = find_components(result.probability, threshold, result.masks.search_region, result.masks.lungs, ct)
        describe(name, ct, truth, result.probability, found, rules)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
