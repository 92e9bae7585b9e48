"""Choose the post-processing of a trained model on held-out cases (``oncoqi lung tune``).

A slice-wise network leaves small specks where a vessel or the heart border looks like tumour
on one slice, and whole discs where a vessel crosses the slices; each would be a false lesion.
How large a component must be to count, how probable on average (its confidence), whether the vessel test of
:func:`oncoqi.lung.postprocess.through_going` and the dome test of
:func:`oncoqi.lung.postprocess.dome_caps` apply (and at which fraction), how much of it must lie
inside the lungs, and the
probability threshold, depend on the trained model, so they are chosen per model on a tuning
set that is neither the training set nor the test set (synthetic set seed 500 for the shipped
model; 0 trains it and 1000 tests it), and stored in the model's metadata (``oncoqi.threshold``,
``oncoqi.min_volume_ml``, ``oncoqi.min_slices``, ``oncoqi.min_confidence``, ``oncoqi.through_fraction``,
``oncoqi.min_lung_fraction``, ``oncoqi.dome_fraction``, ``oncoqi.tuning``), where
:func:`oncoqi.lung.segment_ct` reads them.

The network runs once per case (:func:`case_probabilities`), and the components once per case
and threshold (:func:`oncoqi.lung.postprocess.find_components`, with each vessel and dome test);
every candidate setting is then only a choice of components.

The objective follows the bars the model is held to (median Dice >= 0.85, lung-wise sensitivity
and specificity >= 0.95, median HD95 <= 5 mm): first the detection and overlap figure furthest
below its bar, as a fraction of the bar (:attr:`Setting.worst`, 1 when all three meet theirs), so
that a setting cannot buy one figure with another; then the mean of the median per-case Dice
(cases with tumour), the lung-wise sensitivity and specificity, the lesion-wise precision (the
share of predicted lesions that touch a true tumour) and the HD95 term (the bar over the median
HD95, at most 1). A plain mean, used before, let a setting trade missed tumours for fewer false
lesions, which specificity and precision both reward. Why the precision and HD95 at all: a speck
of 0.1 ml beside a true tumour changes neither the Dice nor the lung-wise findings, yet it is a
false lesion a reader must dismiss, and it sets the case's HD95 to its distance from the tumour.
The precision counts specks; the HD95 term weighs how far they lie, which the precision cannot.
HD95 is not in the first criterion: it stays above its bar on the tuning set whatever the
setting, so there it would decide alone, and it bought a millimetre with a sixth of the tumours
found (run H with the mirrored pass: sensitivity 0.67 for a median HD95 of 11.5 mm, against 0.80
for 12.8 mm). Ties go to the setting that drops the least (lowest minimum volume, slices,
confidence and lung fraction, no vessel or dome test or the highest fraction, then the threshold
nearest 0.5).
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from oncoqi.errors import OncoQIError
from oncoqi.image import Image
from oncoqi.lung.onnx_model import save_with_metadata
from oncoqi.lung.postprocess import Components, LesionRules, find_components
from oncoqi.lung.segment import tumour_probability
from oncoqi.lung.training.data import Case
from oncoqi.metrics import LungFinding, lung_findings, surface_distances

#: Candidate settings searched by default.
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)
MIN_VOLUMES_ML = (0.0, 0.02, 0.05, 0.1, 0.2, 0.5)
MIN_SLICES = (1, 2, 3)
MIN_CONFIDENCES = (0.0, 0.9, 0.93, 0.95)
THROUGH_FRACTIONS: tuple[float | None, ...] = (None, 0.5, 0.7, 0.9)
DOME_FRACTIONS: tuple[float | None, ...] = (None, 0.5, 0.8)
MIN_LUNG_FRACTIONS = (0.0, 0.25, 0.5)
#: The bars of the objective: median Dice, lung-wise sensitivity and specificity, median HD95 (mm).
DICE_BAR = 0.85
DETECTION_BAR = 0.95
HD95_BAR_MM = 5.0


class TuningError(OncoQIError):
    """The tuning set cannot choose a setting (no case with tumour, no lung masks)."""


@dataclass
class CaseProbability:
    """What one tuning case needs: the network's probability, the search region, truth, lungs and CT.

    ``lungs`` are the true lungs (1 right, 2 left), which score lung-wise detection; ``lung_mask`` is
    lung isolation's tight mask, which the lung rule uses at inference (None: the true lungs).
    """

    name: str
    ct: Image
    probability: Image
    search: Image
    truth: np.ndarray
    lungs: Image
    lung_mask: Image | None = None


@dataclass(frozen=True)
class Setting:
    """One post-processing setting (a threshold and the lesion rules) and how it scored on the tuning set."""

    threshold: float
    rules: LesionRules
    dice_median: float
    sensitivity: float
    specificity: float
    precision: float
    hd95_median: float

    @property
    def worst(self) -> float:
        """The figure furthest below its bar as a fraction of the bar, at most 1 (see the module doc)."""
        return min(1.0, self.dice_median / DICE_BAR, self.sensitivity / DETECTION_BAR, self.specificity / DETECTION_BAR)

    @property
    def hd95_term(self) -> float:
        """The HD95 bar over the median HD95, at most 1 (0 when the median case has no prediction)."""
        return 1.0 if self.hd95_median <= HD95_BAR_MM else HD95_BAR_MM / self.hd95_median

    @property
    def objective(self) -> float:
        """Mean of median Dice, sensitivity, specificity, lesion-wise precision and :attr:`hd95_term`.

        The second criterion (see the module documentation).
        """
        return (self.dice_median + self.sensitivity + self.specificity + self.precision + self.hd95_term) / 5.0

    def rules_text(self) -> str:
        """The setting's post-processing in words, for the tuning log."""
        r = self.rules
        return (
            f"threshold {self.threshold:.2f}, min {r.min_volume_ml:.2f} ml, min {r.min_slices} slices, "
            f"min confidence {r.min_confidence:.2f}, vessel test {r.through_fraction}, min lung fraction "
            f"{r.min_lung_fraction:.2f}, dome test {r.dome_fraction}"
        )

    def note(self, cases: int, seed: int | None) -> str:
        where = f"synthetic set seed {seed}, " if seed is not None else ""
        return (
            f"{where}{cases} cases: median Dice {self.dice_median:.3f}, lung-wise sensitivity "
            f"{self.sensitivity:.3f}, specificity {self.specificity:.3f}, lesion precision {self.precision:.3f}, "
            f"median HD95 {self.hd95_median:.2f} mm"
        )


def case_probabilities(cases: Iterable[Case], model: Path, threads: int | None = None) -> list[CaseProbability]:
    """Run the network once on each case (the cases need their lung masks, as phantoms have)."""
    out = []
    for case in cases:
        if case.lungs is None:
            raise TuningError(f"{case.name}: tuning needs the case's lung mask (1 right, 2 left)")
        result = tumour_probability(case.ct, model, threads=threads, name=case.name, step_mm=0)
        # Every candidate setting relabels the case: keep only the rows and columns where a lesion
        # can be (any candidate threshold, or truth), with all slices for the vessel test.
        box = _box(result.probability.array >= min(THRESHOLDS), case.label.array != 0)
        out.append(
            CaseProbability(
                case.name,
                case.ct.crop(box),
                result.probability.crop(box),
                result.masks.search_region.crop(box),
                case.label.array[box] != 0,
                case.lungs.crop(box),
                result.masks.lungs.crop(box),
            )
        )
    return out


def _box(*masks: np.ndarray, margin: int = 2) -> tuple[slice, slice, slice]:
    """All slices, and the rows and columns of the union of ``masks`` with a margin."""
    union = np.logical_or.reduce(masks).any(axis=0)
    if not union.any():
        return (slice(None), slice(0, 1), slice(0, 1))
    rows, cols = np.flatnonzero(union.any(axis=1)), np.flatnonzero(union.any(axis=0))
    return (
        slice(None),
        slice(max(0, rows[0] - margin), rows[-1] + margin + 1),
        slice(max(0, cols[0] - margin), cols[-1] + margin + 1),
    )


@dataclass(frozen=True)
class _Outcome:
    """What one case's kept components score: Dice and HD95 (None without tumour), lung findings, lesions."""

    dice: float | None
    hd95: float | None
    findings: list[LungFinding]
    lesions: int
    true_lesions: int


@dataclass
class _Judged:
    """One tuning case's components at one threshold (they cache their vessel and dome tests).

    ``outcomes`` caches what the case scores by the kept components (their bytes): thousands of
    settings keep only a few distinct sets of components, and labelling, lung-wise findings and
    HD95 are the costly part of scoring one.
    """

    case: CaseProbability
    components: Components
    outcomes: dict[bytes, _Outcome] = field(default_factory=dict)

    def outcome(self, kept: np.ndarray, threshold: float) -> _Outcome:
        """The score of the components ``kept`` (bool ``(n,)``) against the case's truth."""
        key = kept.tobytes()
        if key not in self.outcomes:
            c = self.case
            labels = self.components.lesion_labels(c.probability, kept, threshold)
            predicted = labels.array != 0
            dice = hd95 = None
            if c.truth.any():
                dice = 2.0 * float((predicted & c.truth).sum()) / float(predicted.sum() + c.truth.sum())
                hd95 = surface_distances(c.truth, predicted, c.probability.spacing[::-1]).robust_hausdorff(95.0)
            findings = lung_findings(c.name, labels, labels.with_array(c.truth.astype(np.uint8)), lungs=c.lungs)
            self.outcomes[key] = _Outcome(
                dice,
                hd95,
                findings,
                int(labels.metadata["lesions"]),
                int(np.count_nonzero(np.unique(labels.array[c.truth]))),
            )
        return self.outcomes[key]


def _judge(cases: Sequence[CaseProbability], threshold: float) -> list[_Judged]:
    return [
        _Judged(
            c,
            find_components(c.probability, threshold, c.search, c.lungs if c.lung_mask is None else c.lung_mask, c.ct),
        )
        for c in cases
    ]


def _score(judged: Sequence[_Judged], threshold: float, rules: LesionRules) -> Setting:
    outcomes = [j.outcome(j.components.dropped(rules) == "", threshold) for j in judged]
    dices = [o.dice for o in outcomes if o.dice is not None]
    hd95s = [o.hd95 for o in outcomes if o.hd95 is not None]
    findings = [f for o in outcomes for f in o.findings]
    lesions, true_lesions = sum(o.lesions for o in outcomes), sum(o.true_lesions for o in outcomes)
    positives = [f for f in findings if f.positive]
    negatives = [f for f in findings if not f.positive]
    if not dices or not positives:
        raise TuningError("the tuning set has no case with tumour")
    sensitivity = sum(f.predicted for f in positives) / len(positives)
    specificity = sum(not f.predicted for f in negatives) / len(negatives) if negatives else 1.0
    precision = true_lesions / lesions if lesions else 1.0
    return Setting(
        threshold, rules, statistics.median(dices), sensitivity, specificity, precision, statistics.median(hd95s)
    )


def score(
    cases: Sequence[CaseProbability],
    threshold: float,
    min_volume_ml: float,
    min_slices: int,
    through_fraction: float | None = None,
    min_confidence: float = 0.0,
    min_lung_fraction: float = 0.0,
    dome_fraction: float | None = None,
) -> Setting:
    """Median Dice and HD95, lung-wise detection and lesion-wise precision of one setting over the tuning cases."""
    rules = LesionRules(
        min_volume_ml, min_slices, min_confidence, through_fraction, min_lung_fraction, dome_fraction=dome_fraction
    )
    return _score(_judge(cases, threshold), threshold, rules)


def choose(
    cases: Sequence[CaseProbability],
    thresholds: Sequence[float] = THRESHOLDS,
    min_volumes_ml: Sequence[float] = MIN_VOLUMES_ML,
    min_slices: Sequence[int] = MIN_SLICES,
    through_fractions: Sequence[float | None] = THROUGH_FRACTIONS,
    min_confidences: Sequence[float] = MIN_CONFIDENCES,
    min_lung_fractions: Sequence[float] = MIN_LUNG_FRACTIONS,
    dome_fractions: Sequence[float | None] = DOME_FRACTIONS,
) -> tuple[Setting, list[Setting]]:
    """The best setting (see the module documentation) and every setting scored."""
    scored = []
    for t in thresholds:
        judged = _judge(cases, t)
        for v, n, f, q, g, d in itertools.product(
            min_volumes_ml, min_slices, through_fractions, min_confidences, min_lung_fractions, dome_fractions
        ):
            scored.append(_score(judged, t, LesionRules(v, n, q, f, g, dome_fraction=d)))

    def preference(x: Setting) -> tuple[float, ...]:
        # the best objective; then the setting that drops the least (a higher vessel or dome
        # fraction drops fewer components; off drops none)
        r = x.rules
        through = 2.0 if r.through_fraction is None else r.through_fraction
        dome = 2.0 if r.dome_fraction is None else r.dome_fraction
        return (
            round(x.worst, 6),
            round(x.objective, 6),
            -r.min_volume_ml,
            -r.min_slices,
            -r.min_confidence,
            -r.min_lung_fraction,
            through,
            dome,
            -abs(x.threshold - 0.5),
        )

    best = max(scored, key=preference)
    return best, scored


def write_setting(model: Path, setting: Setting, note: str) -> Path:
    """Store ``setting`` in the model's metadata, atomically (needs the ``onnx`` package)."""
    import onnx

    r = setting.rules

    def optional(fraction: float | None) -> str:  # absent key or "": the test is off
        return "" if fraction is None else repr(float(fraction))

    # min_compactness is not tuned: the model's own value is left as it is.
    values = {
        "oncoqi.threshold": repr(float(setting.threshold)),
        "oncoqi.tuning": note,
        "oncoqi.min_volume_ml": repr(float(r.min_volume_ml)),
        "oncoqi.min_slices": str(int(r.min_slices)),
        "oncoqi.min_confidence": repr(float(r.min_confidence)),
        "oncoqi.min_lung_fraction": repr(float(r.min_lung_fraction)),
        "oncoqi.through_fraction": optional(r.through_fraction),
        "oncoqi.dome_fraction": optional(r.dome_fraction),
    }
    return save_with_metadata(onnx.load(str(model)), model, values)
