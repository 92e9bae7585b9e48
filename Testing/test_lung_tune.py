"""Choosing a model's post-processing on held-out cases (``oncoqi.lung.training.tune``)."""

from __future__ import annotations

import numpy as np
import pytest

from oncoqi.errors import InputError
from oncoqi.image import Image
from oncoqi.lung.training.tune import CaseProbability, TuningError, choose, score, write_setting


def _case(name: str, tumour: bool, speck: bool) -> CaseProbability:
    """A 2-lung volume (right x < 0, left x > 0) with an optional true tumour and a one-slice speck."""
    shape = (20, 40, 40)
    probability = np.zeros(shape, np.float32)
    truth = np.zeros(shape, bool)
    if tumour:
        truth[8:14, 10:18, 8:16] = True  # right lung (low i = -x in LPS: patient's right)
        probability[truth] = 0.9
        probability[8:14, 18, 8:16] = 0.45  # an uncertain rim: only a low threshold takes it
    if speck:
        probability[5, 30, 30] = 0.8  # one voxel in the left lung: a false lesion
    lungs = np.zeros(shape, np.uint8)
    lungs[:, :, :20], lungs[:, :, 20:] = 1, 2
    geometry = dict(spacing=(2.0, 2.0, 2.0), origin=(-40.0, -40.0, 0.0))
    ct = Image(np.full(shape, -850, np.int16), **geometry)  # all lung: the vessel test drops nothing
    return CaseProbability(
        name,
        ct,
        Image(probability, **geometry),
        Image(np.ones(shape, np.uint8), **geometry),
        truth,
        Image(lungs, **geometry),
    )


def test_score_counts_dice_and_lung_wise_detection():
    cases = [_case("a", tumour=True, speck=True), _case("b", tumour=False, speck=True)]
    raw = score(cases, 0.5, 0.0, 1)
    assert raw.dice_median == pytest.approx(2 * 384 / (384 + 385))  # the speck is in the other lung
    # negatives: a's left lung and both of b's; the speck puts a false lesion in both left lungs
    assert (raw.sensitivity, raw.specificity) == (1.0, pytest.approx(1 / 3))
    assert raw.precision == pytest.approx(1 / 3)  # of 3 lesions (tumour, 2 specks) one is true
    cleaned = score(cases, 0.5, 0.0, 2)  # single-slice components dropped
    assert (cleaned.dice_median, cleaned.sensitivity, cleaned.specificity, cleaned.precision) == (1.0, 1.0, 1.0, 1.0)


def test_precision_counts_a_false_lesion_beside_a_true_tumour():
    """A speck in the tumour's own lung leaves Dice (almost) and lung-wise findings alone; precision sees it."""
    case = _case("a", tumour=True, speck=False)
    case.probability.array[3, 12, 5] = 0.8  # right lung, away from the tumour
    raw, cleaned = score([case], 0.5, 0.0, 1), score([case], 0.5, 0.0, 2)
    assert (raw.sensitivity, raw.specificity) == (cleaned.sensitivity, cleaned.specificity) == (1.0, 1.0)
    assert (raw.precision, cleaned.precision) == (0.5, 1.0) and raw.objective < cleaned.objective


def test_hd95_term_weighs_how_far_a_false_lesion_lies():
    """Precision counts a false lesion; the median HD95 says how far from the tumour it lies (DeepMind's HD95)."""
    from oncoqi.metrics import evaluate_masks

    near, far = _case("a", tumour=True, speck=False), _case("a", tumour=True, speck=False)
    near.probability.array[10:12, 4:6, 10:12] = 0.8  # 8 voxels, 3 voxels in front of the tumour
    far.probability.array[10:12, 34:36, 10:12] = 0.8  # the same, 17 voxels behind it
    scores = {name: score([c], 0.5, 0.0, 1) for name, c in (("near", near), ("far", far))}
    for name, c in (("near", near), ("far", far)):
        expected = evaluate_masks(c.truth, c.probability.array >= 0.5, c.probability.spacing[::-1]).hd95_mm
        assert scores[name].hd95_median == pytest.approx(expected)
    assert (scores["near"].precision, scores["far"].precision) == (0.5, 0.5)
    assert 5.0 < scores["near"].hd95_median < scores["far"].hd95_median
    assert scores["near"].objective > scores["far"].objective
    assert score([near], 0.5, 0.1, 1).hd95_term == 1.0  # the speck (0.064 ml) dropped: the tumour alone, HD95 0
    missed = _case("a", tumour=True, speck=False)
    missed.probability.array[:] = 0.0
    assert score([missed], 0.5, 0.0, 1).hd95_term == 0.0  # no prediction: HD95 inf


def test_choose_drops_specks_and_prefers_the_least_dropping_setting():
    cases = [_case("a", tumour=True, speck=True), _case("b", tumour=False, speck=True), _case("c", True, False)]
    grid = dict(thresholds=(0.4, 0.5), min_volumes_ml=(0.0, 0.005, 0.05), min_slices=(1, 2))
    best, scored = choose(cases, **grid, min_confidences=(0.0,))
    assert (
        len(scored) == 48 * 3 * 3
        and best.objective == 1.0
        and best.rules.through_fraction is None is best.rules.dome_fraction
    )
    # min 2 slices alone removes the speck; a 0.005 ml (0.625 voxel) minimum does not, 0.05 ml does too,
    # but the tie goes to the setting that drops the least; 0.4 would take the rim.
    assert (best.threshold, best.rules.min_volume_ml, best.rules.min_slices) == (0.5, 0.0, 2)
    # A confidence cut of 0.85 removes the 0.8 speck too; the tie goes to fewer minimum slices first.
    best, scored = choose(cases, **grid, min_confidences=(0.0, 0.85))
    assert len(scored) == 96 * 3 * 3 and best.objective == 1.0
    assert (best.threshold, best.rules.min_volume_ml, best.rules.min_slices, best.rules.min_confidence) == (
        0.5,
        0.0,
        1,
        0.85,
    )


def test_objective_is_the_figure_furthest_below_its_bar_first():
    """A plain mean would trade a missed tumour for fewer false lesions; the worst figure first does not."""
    from oncoqi.lung.postprocess import LesionRules
    from oncoqi.lung.training.tune import Setting

    balanced = Setting(
        0.5, LesionRules(), dice_median=0.8, sensitivity=0.9, specificity=0.8, precision=0.6, hd95_median=4.0
    )
    cautious = Setting(
        0.5,
        LesionRules(min_confidence=0.9),
        dice_median=0.8,
        sensitivity=0.6,
        specificity=1.0,
        precision=1.0,
        hd95_median=4.0,
    )
    assert cautious.objective > balanced.objective and balanced.worst > cautious.worst
    assert balanced.worst == pytest.approx(0.80 / 0.95) and cautious.worst == pytest.approx(0.60 / 0.95)
    assert Setting(0.5, LesionRules(), 0.9, 1.0, 0.96, 0.5, 4.0).worst == 1.0  # all bars met: capped
    # On cases: a faint tumour (probability 0.65) among three clear ones, and a faint speck (0.6) in a
    # tumour-free lung. A confidence cut of 0.7 removes the speck but loses the faint tumour: a higher
    # mean (0.94 against 0.91), yet sensitivity 3/4; keeping both leaves specificity at 5/6, nearer its bar.
    faint, speck = _case("d", tumour=True, speck=False), _case("b", tumour=False, speck=True)
    faint.probability.array[faint.truth] = 0.65
    speck.probability.array[speck.probability.array > 0] = 0.6
    cases = [_case(name, True, False) for name in "ace"] + [faint, speck]
    best, scored = choose(
        cases,
        thresholds=(0.5,),
        min_volumes_ml=(0.0,),
        min_slices=(1,),
        through_fractions=(None,),
        min_confidences=(0.0, 0.7),
    )
    assert max(scored, key=lambda x: x.objective).rules.min_confidence == 0.7
    assert best.rules.min_confidence == 0.0 and (best.sensitivity, best.specificity) == (1.0, pytest.approx(5 / 6))


def test_lung_rule_drops_what_lies_outside_the_lungs_and_is_tuned():
    from oncoqi.lung.postprocess import LesionRules, find_components, label_lesions

    case = _case("a", tumour=True, speck=False)
    # A 12-voxel false lesion on the mediastinal border: 3 of its voxels in the lung mask.
    case.probability.array[4:7, 30:32, 18:20] = 0.9
    lungs = case.lungs.array.copy()
    lungs[:, 30:32, 18:22] = 0
    lungs[4:7, 30, 19] = 2
    case.lung_mask = case.lungs.with_array(lungs)
    found = find_components(case.probability, 0.5, case.search, case.lung_mask)
    assert sorted(np.round(found.lung_fraction, 3)) == [0.25, 1.0]
    reasons = found.dropped(LesionRules(min_lung_fraction=0.5))
    assert sorted(reasons) == ["", "mostly outside the lungs"]
    kept = label_lesions(case.probability, 0.5, LesionRules(min_lung_fraction=0.5), lungs=case.lung_mask)
    np.testing.assert_array_equal(kept.array != 0, case.truth)
    assert label_lesions(case.probability, 0.5).metadata["lesions"] == 2  # no lung mask: no lung rule
    with pytest.raises(ValueError, match="needs the lung mask"):
        find_components(case.probability, 0.5).dropped(LesionRules(min_lung_fraction=0.5))
    with pytest.raises(InputError, match="min_lung_fraction must be in"):
        LesionRules(min_lung_fraction=1.0)
    best, _ = choose(
        [case, _case("b", False, False)],
        thresholds=(0.5,),
        min_volumes_ml=(0.0,),
        min_slices=(1,),
        through_fractions=(None,),
        min_confidences=(0.0,),
        min_lung_fractions=(0.0, 0.25, 0.5),
    )
    assert best.rules.min_lung_fraction == 0.5 and best.precision == 1.0  # 0.25 keeps it (not below)


def test_tuning_set_without_tumour_is_refused():
    with pytest.raises(TuningError, match="no case with tumour"):
        score([_case("b", tumour=False, speck=True)], 0.5, 0.0, 1)


def test_setting_is_written_into_the_model_metadata(tmp_path):
    onnx = pytest.importorskip("onnx", reason="onnx (the 'train' extra) writes the metadata")
    from helpers.known_models import identity_model
    from oncoqi.lung.onnx_model import OnnxSegmenter, save_with_metadata
    from oncoqi.lung.preprocess import PreprocessOptions

    model = identity_model(tmp_path / "m.onnx", PreprocessOptions(pixel_mm=3.0, columns=128, rows=128), 0.77)
    before = OnnxSegmenter(model, threads=1)
    assert (before.lesion_rules.min_volume_ml, before.lesion_rules.min_slices) == (0.0, 1)
    best, _ = choose(
        [_case("a", True, True), _case("b", False, True)],
        thresholds=(0.5,),
        min_volumes_ml=(0.0,),
        min_slices=(1, 2),
        through_fractions=(0.7,),
        min_lung_fractions=(0.0,),
    )
    write_setting(model, best, best.note(2, 500))
    after = OnnxSegmenter(model, threads=1)
    rules = after.lesion_rules
    assert (after.threshold, rules.min_volume_ml, rules.min_slices, rules.through_fraction) == (0.5, 0.0, 2, 0.7)
    assert rules.min_confidence == 0.0 and before.lesion_rules.min_confidence == 0.0
    assert rules.min_lung_fraction == before.lesion_rules.min_lung_fraction == 0.0
    assert after.metadata["oncoqi.min_lung_fraction"] == "0.0"
    assert after.metadata["oncoqi.tuning"].startswith("synthetic set seed 500, 2 cases: median Dice 1.000")
    assert after.preprocess_options == before.preprocess_options  # the rest of the metadata is kept
    # the sheet rule is not tuned: off unless the metadata asks for it
    assert rules.min_compactness == 0.0
    save_with_metadata(onnx.load(str(model)), model, {"oncoqi.min_compactness": "0.3"})
    assert OnnxSegmenter(model, threads=1).lesion_rules.min_compactness == 0.3
    codes = np.full((1, 128, 128), 200, np.uint8)
    np.testing.assert_array_equal(after.predict(codes), before.predict(codes))


def test_vessel_test_drops_a_tube_and_keeps_a_ball_and_a_tube_end():
    from oncoqi.lung.postprocess import LesionRules, label_lesions, through_going

    shape = (40, 48, 48)
    hu = np.full(shape, -850, np.int16)
    z, y, x = np.mgrid[:40, :48, :48]
    hu[((y - 12) ** 2 + (x - 12) ** 2 <= 9)] = 40  # a vessel across every slice
    ball = (z - 20) ** 2 + (y - 34) ** 2 + (x - 34) ** 2 <= 25
    hu[ball] = 40
    hu[:12, 34, 12] = 40  # a second vessel ending in the lung at slice 12 ...
    hu[:12, 33:36, 11:14] = 40
    ct = Image(hu, (1.0, 1.0, 2.0))
    prob = np.zeros(shape, np.float32)
    prob[15:25][hu[15:25] > 0] = 0.9  # the network's find: a piece of the vessel and the ball
    prob[6:12, 33:36, 11:14] = 0.9  # ... found up to its end: a vessel feeding a nodule looks like this
    probability = ct.with_array(prob)
    components, count = ndimage_label(prob >= 0.5)
    drop = through_going(components, count, ct, fraction=0.5, distance_mm=4.0)
    by_place = {tuple(int(v) for v in np.argwhere(components == n)[0]): bool(drop[n]) for n in range(1, count + 1)}
    assert sorted(by_place.values()) == [False, False, True]
    assert by_place[min(by_place)] is False  # the vessel end (first voxel at slice 6)
    kept = label_lesions(probability, 0.5, LesionRules(through_fraction=0.5), ct=ct)
    assert kept.metadata["lesions"] == 2 and (kept.array == 1)[ball & (prob > 0)].all()
    assert label_lesions(probability, 0.5).metadata["lesions"] == 3  # off by default
    # Each dropped component says which step dropped it (reported for missed tumours).
    from oncoqi.lung.postprocess import LesionRules, find_components

    with pytest.raises(ValueError, match="need the CT"):
        find_components(probability, 0.5).dropped(LesionRules(through_fraction=0.5))
    found = find_components(probability, 0.5, ct=ct)
    dropped = found.dropped(LesionRules(min_slices=7, through_fraction=0.5))
    reasons = {tuple(int(v) for v in np.argwhere(found.labels == n + 1)[0]): r for n, r in enumerate(dropped)}
    assert reasons[min(reasons)] == "fewer slices than min_slices"  # the vessel end spans 6 slices
    assert sorted(reasons.values()) == ["", "a vessel runs through it", "fewer slices than min_slices"]
    assert set(found.dropped(LesionRules(min_volume_ml=1e6, min_slices=7))) == {"smaller than min_volume_ml"}
    np.testing.assert_allclose(found.mean_probability, 0.9, atol=1e-6)
    assert set(found.dropped(LesionRules(min_confidence=0.95))) == {"mean probability below min_confidence"}
    with pytest.raises(InputError, match="min_confidence in"):
        LesionRules(min_confidence=1.0)


@pytest.mark.parametrize("superior_first", [False, True])
def test_dome_test_drops_the_top_of_the_diaphragm_and_keeps_a_nodule(superior_first):
    """The liver's dome cut by the lowest lung slices: dense below, lung above; a nodule has lung at both ends."""
    from oncoqi.lung.postprocess import LesionRules, dome_caps, find_components, label_lesions

    z, y, x = np.mgrid[:40, :48, :48]
    liver = (2 * z) ** 2 + (y - 24) ** 2 + (x - 24) ** 2 <= 30**2  # top at slice 15 (30 mm), 2 mm slices
    nodule = (z - 30) ** 2 + (y - 10) ** 2 + (x - 38) ** 2 <= 9
    vessel = (z < 30) & ((y - 10) ** 2 + (x - 38) ** 2 <= 1)  # a vessel entering the nodule from below
    hu = np.where(liver | nodule | vessel, 50, -850).astype(np.int16)
    prob = np.where(nodule | (liver & (z >= 13)), 0.9, 0.0).astype(np.float32)  # the dome's cap, 3 slices
    direction = np.eye(3)
    if superior_first:  # the same patient stored head first: below is now the higher k
        hu, prob, nodule, direction = hu[::-1], prob[::-1], nodule[::-1], np.diag([1.0, 1.0, -1.0])
    ct = Image(hu, (1.0, 1.0, 2.0), direction=direction)
    probability = ct.with_array(prob)
    components, count = ndimage_label(prob >= 0.5)
    caps = dome_caps(components, count, ct, fraction=0.5)
    assert count == 2 and caps.tolist() == [False] + [not nodule[components == n].any() for n in (1, 2)]
    found = find_components(probability, 0.5, ct=ct)
    assert sorted(found.dropped(LesionRules(dome_fraction=0.5))) == ["", "the top of a diaphragm dome"]
    kept = label_lesions(probability, 0.5, LesionRules(dome_fraction=0.5), ct=ct)
    np.testing.assert_array_equal(kept.array != 0, nodule)
    assert label_lesions(probability, 0.5, ct=ct).metadata["lesions"] == 2  # off by default


@pytest.mark.parametrize("superior_first", [False, True])
def test_dome_test_keeps_the_found_top_of_a_tumour_and_drops_a_cap_at_the_scan_edge(superior_first):
    """A tumour found only at its top is dense 5 mm below but lung 15 mm below: not a dome's cap.

    A dome's cap in a scan that ends 8 mm below it is judged at the last slice, not kept for want
    of slices.
    """
    from oncoqi.lung.postprocess import DOME_DEPTH_MM, dome_caps

    z, y, x = np.mgrid[:40, :48, :48]
    tumour = (1.5 * (z - 30)) ** 2 + (y - 14) ** 2 + (x - 14) ** 2 <= 36  # 2 mm slices: 26-34
    liver = (2 * z) ** 2 + (y - 30) ** 2 + (x - 34) ** 2 <= 12**2  # top at slice 6, 4 slices above the edge
    hu = np.where(tumour | liver, 50, -850).astype(np.int16)
    found_top = tumour & (z >= 32)  # the network saw the top 3 slices, not the lower 12 mm
    cap = liver & (z >= 4)
    prob = np.where(found_top | cap, 0.9, 0.0).astype(np.float32)
    direction = np.eye(3)
    if superior_first:
        hu, prob, found_top, direction = hu[::-1], prob[::-1], found_top[::-1], np.diag([1.0, 1.0, -1.0])
    ct = Image(hu, (1.0, 1.0, 2.0), direction=direction)
    components, count = ndimage_label(prob >= 0.5)
    assert count == 2
    is_top = [bool(found_top[components == n].any()) for n in (1, 2)]
    caps = dome_caps(components, count, ct, fraction=0.5)
    assert caps[1:].tolist() == [not t for t in is_top]
    # Without the deep look the found top is a cap as well: dense 5 mm below, lung above.
    assert dome_caps(components, count, ct, fraction=0.5, depth_mm=5.0)[1:].all()
    assert DOME_DEPTH_MM == 15.0
    from oncoqi.lung.postprocess import LesionRules, find_components

    found = find_components(ct.with_array(prob), 0.5, ct=ct)
    reasons = found.dropped(LesionRules(dome_fraction=0.5))
    assert [r == "" for r in reasons] == is_top


def ndimage_label(mask):
    from scipy import ndimage

    return ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
