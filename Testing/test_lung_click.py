"""One click recovers a missed tumour (:mod:`oncoqi.lung.click`, ``oncoqi lung segment --point``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers.lung import small_identity_model
from oncoqi.cli import main
from oncoqi.errors import InputError
from oncoqi.image import Image
from oncoqi.lung.click import point_index, segment_click
from oncoqi.phantom import PhantomOptions, make_ct, write_study

SPACING = (0.8, 0.8, 1.5)


def _chest():
    """Lung (-850 HU) with a soft-tissue block (the mediastinum, 40 HU) and a 12 mm tumour ball of the
    same density touching it: the case the network misses and a threshold cannot separate."""
    hu = np.full((40, 80, 80), -850.0, np.float32)
    hu[:, :, :30] = 40.0  # mediastinum on the left of the array
    k, j, i = np.ogrid[:40, :80, :80]
    tumour = ((k - 20) * SPACING[2]) ** 2 + ((j - 40) * SPACING[1]) ** 2 + ((i - 45) * SPACING[0]) ** 2 <= 12.0**2
    hu[tumour] = 40.0
    return Image(hu, SPACING, (-30.0, -30.0, -30.0), np.eye(3), {}), tumour


def _dice(a, b):
    return 2.0 * (a & b).sum() / (a.sum() + b.sum())


def test_a_click_outlines_a_tumour_against_tissue_of_its_own_density():
    ct, truth = _chest()
    centre = ct.index_to_lps(np.array([45.0, 40.0, 20.0]))
    mask = segment_click(ct, centre)
    assert _dice(mask, truth) >= 0.8, _dice(mask, truth)
    assert mask[:, :, :20].sum() == 0  # the growth did not run into the mediastinum far from the tumour
    # Off centre (5 mm towards the lung) it still finds most of it.
    assert _dice(segment_click(ct, centre + np.array([5.0, 0.0, 0.0])), truth) >= 0.7


def test_a_click_uses_the_networks_faint_outline_where_there_is_one():
    ct, truth = _chest()
    prob = np.zeros(ct.array.shape, np.float32)
    prob[truth] = 0.3  # the network saw it, below its threshold
    centre = ct.index_to_lps(np.array([45.0, 40.0, 20.0]))
    mask = segment_click(ct, centre, ct.with_array(prob))
    np.testing.assert_array_equal(mask, truth)


def test_points_outside_the_ct_or_on_air_are_refused_with_the_reason():
    ct, _ = _chest()
    with pytest.raises(
        InputError, match=r"outside the CT, which spans \(-30.0, -30.0, -30.0\) to \(33.2, 33.2, 28.5\)"
    ):
        point_index(ct, (0.0, 0.0, 500.0))
    with pytest.raises(InputError, match="in aerated lung"):
        segment_click(ct, ct.index_to_lps(np.array([75.0, 5.0, 20.0])))


def test_segment_cli_adds_the_lesion_at_the_point(tmp_path, capsys):
    phantom = make_ct(PhantomOptions(seed=11, size=128, slices=70, slice_thickness_mm=5.0))
    study = tmp_path / "study"
    write_study(phantom, study)
    model = small_identity_model(tmp_path / "id.onnx")
    truth = phantom.tumour_label.array == 1
    deepest = np.argwhere(truth)[len(np.argwhere(truth)) // 2]
    point = [f"{v:.2f}" for v in phantom.ct.index_to_lps(deepest[::-1].astype(float))]
    base = ["lung", "segment", str(study / "CT"), "--model", str(model), "--threads", "1"]
    assert main([*base, "--out", str(tmp_path / "far"), "--point", "0", "0", "900"]) == 2
    assert "outside the CT" in capsys.readouterr().err and not (tmp_path / "far").exists()
    assert main([*base, "--out", str(tmp_path / "out"), "--point", *point]) == 0
    out = capsys.readouterr().out
    records = json.loads((tmp_path / "out" / "lesions.json").read_text())
    if "already inside lesion" in out:  # the automatic pass found it: the point adds nothing
        assert all(r["source"] == "network" for r in records)
    else:
        assert "added" in out and [r["source"] for r in records].count("point") == 1
        clicked = next(r for r in records if r["source"] == "point")
        assert not any("confidence" in d for d in clicked["doubts"])


def test_lesions_added_in_earlier_calls_stay_the_readers(tmp_path):
    from oncoqi.lung.click import add_lesions_at_points
    from oncoqi.lung.segment import TumourSegmentation

    ct, truth = _chest()
    hu = ct.array.copy()
    k, j, i = np.ogrid[:40, :80, :80]
    second = ((k - 20) * SPACING[2]) ** 2 + ((j - 15) * SPACING[1]) ** 2 + ((i - 65) * SPACING[0]) ** 2 <= 6.0**2
    hu[second] = 40.0
    ct = ct.with_array(hu)
    empty = ct.with_array(np.zeros(ct.array.shape, np.uint8))
    found = TumourSegmentation(empty, empty, ct.with_array(np.zeros(ct.array.shape, np.float32)), [], None, 0.5, None)
    once, _ = add_lesions_at_points(ct, found, [ct.index_to_lps(np.array([45.0, 40.0, 20.0]))])
    twice, notes = add_lesions_at_points(ct, once, [ct.index_to_lps(np.array([65.0, 15.0, 20.0]))])
    assert [m.source for m in twice.lesions] == ["point", "point"] and notes[0].endswith("added")
    assert not any(d.startswith("low confidence") for m in twice.lesions for d in m.doubts)
    assert _dice(twice.labels.array == 1, truth) >= 0.8  # the larger one is GTV-1
