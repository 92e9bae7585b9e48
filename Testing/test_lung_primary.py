"""GTV-1 is the largest lesion the evidence does not doubt (:mod:`oncoqi.lung.primary`)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from oncoqi.image import Image
from oncoqi.lung.measure import measure_lesions
from oncoqi.lung.primary import EvidenceRules, lesion_doubts, order_by_evidence


def _labels(shape=(30, 64, 64)):
    """A 2 mm grid with: 1 a 3-slice slab across most of the slice (a sheet), 2 a ball, 3 a small ball."""
    array = np.zeros(shape, np.uint8)
    array[10:12, 5:60, 5:60] = 1
    k, j, i = np.ogrid[: shape[0], : shape[1], : shape[2]]
    array[(k - 20) ** 2 + (j - 30) ** 2 + (i - 30) ** 2 <= 25] = 2
    array[(k - 20) ** 2 + (j - 50) ** 2 + (i - 50) ** 2 <= 4] = 3
    return Image(array, (2.0, 2.0, 2.0), (0.0, 0.0, 0.0), np.eye(3), {"lesions": 3, "threshold": 0.5})


def _probability(labels, confidence):
    prob = np.zeros(labels.array.shape, np.float32)
    for label, value in confidence.items():
        prob[labels.array == label] = value
    return labels.with_array(prob)


def test_a_sheet_is_doubted_and_the_largest_compact_lesion_becomes_gtv1():
    labels = _labels()
    lesions = measure_lesions(labels, probability=_probability(labels, {1: 0.95, 2: 0.9, 3: 0.8}))
    assert [m.label for m in sorted(lesions, key=lambda m: -m.volume_ml)] == [1, 2, 3]  # the sheet is the largest
    relabelled, ordered = order_by_evidence(labels, lesions)
    assert [m.volume_ml for m in ordered] == pytest.approx(
        [lesions[1].volume_ml, lesions[2].volume_ml, lesions[0].volume_ml]
    )
    assert ordered[0].doubts == () and ordered[1].doubts == ()
    assert len(ordered[2].doubts) == 1 and ordered[2].doubts[0].startswith("a thin sheet, not a mass (compactness 0.")
    # the map follows: the ball is label 1 now, the sheet label 3; grid, dtype and metadata kept
    assert relabelled.array.dtype == labels.array.dtype and relabelled.metadata == labels.metadata
    np.testing.assert_array_equal(relabelled.array == 1, labels.array == 2)
    np.testing.assert_array_equal(relabelled.array == 3, labels.array == 1)
    record = ordered[2].to_dict()
    assert record["doubtful"] is True and record["doubts"] == list(ordered[2].doubts)
    assert json.loads(json.dumps(ordered[0].to_dict()))["doubtful"] is False


def test_edge_confidence_and_suv_doubts_and_a_doubted_gtv1_says_so():
    labels = _labels()
    array = labels.array.copy()
    array[array == 1] = 0
    array[0:3, 20:26, 20:26] = 1  # a compact lesion on the scan's first slices
    labels = labels.with_array(array)
    lesions = measure_lesions(labels, probability=_probability(labels, {1: 0.9, 2: 0.55, 3: 0.9}))
    doubts = lesion_doubts(labels, lesions, suvmax={1: 9.0, 2: 6.0, 3: 1.2})
    assert doubts[1] == ("at the scan's edge (reaches its first or last slice)",)
    assert doubts[2] == ("low confidence (0.55)",)
    assert doubts[3] == ("not FDG-avid (SUVmax 1.2)",)
    # Every lesion doubted: the largest is GTV-1, and its doubts go with it.
    _, ordered = order_by_evidence(labels, lesions, suvmax={1: 9.0, 2: 6.0, 3: 1.2})
    assert ordered[0].volume_ml == max(m.volume_ml for m in lesions) and ordered[0].doubts
    # 0 switches a test off; a label without SUV (outside the PET) is not judged on it.
    off = EvidenceRules(min_compactness=0.0, min_confidence=0.0, min_suvmax=0.0)
    assert set(lesion_doubts(labels, lesions, off, suvmax={3: 1.2}).values()) == {
        (),
        ("at the scan's edge (reaches its first or last slice)",),
    }
    assert lesion_doubts(labels, lesions, suvmax={1: 9.0})[3] == ()
