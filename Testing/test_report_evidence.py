"""GTV-1 by PET evidence (:mod:`oncoqi.report.evidence`) on a phantom PET/CT whose largest lesion is not FDG-avid.

Expected values come from the phantom's truth (``helpers.pet_evidence``: SUVbw 1.6 and 8.0, 30 and
12 ml) and from :func:`oncoqi.pet.ct_lesions_on_pet` run directly, which the glue must not change.
"""

from __future__ import annotations

import numpy as np
import pytest

from helpers.pet_evidence import AVID_ML, AVID_SUV, LARGE_ML, LOW_SUV, options
from oncoqi.image import Image
from oncoqi.lung.measure import measure_lesions
from oncoqi.lung.primary import EvidenceRules
from oncoqi.pet import ct_lesions_on_pet
from oncoqi.phantom import make_petct
from oncoqi.report.evidence import describe_renumbering, order_lesions_on_pet, suvmax_by_label


@pytest.fixture(scope="module")
def study() -> dict:
    result = make_petct(options())
    suv = result.pet.with_array(result.pet.array * result.truth["pet"]["suvbw_factor"])
    labels = result.tumour_label
    return {"suv": suv, "labels": labels, "lesions": measure_lesions(labels, result.ct), "truth": result.truth}


def test_the_phantom_is_what_the_tests_assume(study) -> None:
    large, avid = study["truth"]["tumours"]
    assert (large["label"], large["suvbw"], avid["label"], avid["suvbw"]) == (1, LOW_SUV, 2, AVID_SUV)
    volumes = [lesion.volume_ml for lesion in study["lesions"]]
    assert volumes == pytest.approx([LARGE_ML, AVID_ML], rel=0.02)


def test_the_fdg_avid_lesion_becomes_gtv1_and_the_other_carries_the_doubt(study) -> None:
    found = order_lesions_on_pet(study["suv"], study["labels"], study["lesions"])
    assert found.renumbered == {1: 2, 2: 1}
    gtv1, other = found.lesions
    assert (gtv1.label, other.label) == (1, 2)
    assert gtv1.volume_ml == pytest.approx(AVID_ML, rel=0.02) and gtv1.doubts == ()
    assert other.volume_ml == pytest.approx(LARGE_ML, rel=0.02)
    assert other.doubts == (f"not FDG-avid (SUVmax {LOW_SUV:.1f})",)
    # the voxels keep their lesion, only the numbers change
    np.testing.assert_array_equal(found.labels.array == 1, study["labels"].array == 2)
    np.testing.assert_array_equal(found.labels.array == 2, study["labels"].array == 1)
    assert found.suvmax[1] == pytest.approx(AVID_SUV, rel=0.01)
    assert found.suvmax[2] == pytest.approx(LOW_SUV, rel=0.01)


def test_indices_are_those_of_ct_lesions_on_pet_under_the_new_labels(study) -> None:
    found = order_lesions_on_pet(study["suv"], study["labels"], study["lesions"], method="percent", value=41.0)
    direct = ct_lesions_on_pet(study["suv"], study["labels"], [1, 2], primary_label=2, method="percent", value=41.0)
    for new, old in ((1, 2), (2, 1)):
        mine = next(lesion for lesion in found.on_pet.lesions if lesion.label == new)
        theirs = next(lesion for lesion in direct.lesions if lesion.label == old)
        np.testing.assert_array_equal(mine.region, theirs.region)
        assert mine.indices.to_dict() | {"label": old} == theirs.indices.to_dict()
    # the PET-thresholded lesion is sought around the new GTV-1, the avid tumour
    assert found.on_pet.primary.label == 1
    assert found.on_pet.primary.indices.mtv_ml == pytest.approx(direct.primary.indices.mtv_ml)
    assert found.on_pet.primary.indices.suv_max == pytest.approx(AVID_SUV, rel=0.01)
    np.testing.assert_array_equal(found.on_pet.pet_labels.array != 0, direct.pet_labels.array != 0)


def test_the_change_is_said_in_words(study) -> None:
    found = order_lesions_on_pet(study["suv"], study["labels"], study["lesions"])
    large, avid = study["lesions"]
    assert describe_renumbering(found) == [
        f"GTV-1 is now the {avid.volume_ml:.1f} ml lesion (formerly Lesion 2): the former GTV-1 "
        f"({large.volume_ml:.1f} ml) is not FDG-avid (SUVmax {LOW_SUV:.1f}).",
        "Renamed: Lesion 2 -> GTV-1, GTV-1 -> Lesion 2.",
    ]
    names = {1: "mass", 2: "nodule"}
    assert describe_renumbering(found, names)[0].endswith(
        f"(formerly nodule): 'mass', the former first lesion ({large.volume_ml:.1f} ml) is not FDG-avid (SUVmax 1.6)."
    )
    assert describe_renumbering(found, names)[1] == "Renamed: nodule -> GTV-1, mass -> Lesion 2."


def test_without_the_avidity_doubt_nothing_changes(study) -> None:
    found = order_lesions_on_pet(study["suv"], study["labels"], study["lesions"], EvidenceRules(min_suvmax=0.0))
    assert found.renumbered == {1: 1, 2: 2}
    assert [lesion.doubts for lesion in found.lesions] == [(), ()]
    np.testing.assert_array_equal(found.labels.array, study["labels"].array)
    assert describe_renumbering(found) == []


def test_when_every_lesion_is_doubted_gtv1_says_so(study) -> None:
    found = order_lesions_on_pet(study["suv"], study["labels"], study["lesions"], EvidenceRules(min_suvmax=10.0))
    assert found.renumbered == {1: 1, 2: 2}  # both doubted: the largest stays GTV-1
    assert describe_renumbering(found) == [
        f"Every lesion is doubted, so GTV-1 is the largest: not FDG-avid (SUVmax {LOW_SUV:.1f})."
    ]


def test_a_lesion_smaller_than_a_pet_voxel_is_not_judged_on_suvmax() -> None:
    """One CT voxel between PET voxel centres has no PET voxel (nearest neighbour): no SUVmax, no doubt from it."""
    pet = Image(np.full((4, 4, 4), 0.5, np.float32), (4.0, 4.0, 4.0), (0.0, 0.0, 0.0), np.eye(3))
    ct = np.zeros((16, 16, 16), np.uint8)
    ct[4:12, 4:12, 4:12] = 1  # an 8 mm cube, on PET voxels
    ct[7, 7, 13] = 2  # a single 1 mm voxel at x = 13 mm, z = 7 mm
    labels = Image(ct, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3))
    lesions = measure_lesions(labels)
    first = ct_lesions_on_pet(pet, labels, [1, 2], primary_label=0)
    assert first.lesions[1].indices is None
    assert suvmax_by_label(first) == {1: pytest.approx(0.5)}
    found = order_lesions_on_pet(pet, labels, lesions, EvidenceRules(min_compactness=0.0))
    assert found.suvmax == {2: pytest.approx(0.5)}  # by new label: the cube is now Lesion 2
    assert [lesion.doubts for lesion in found.lesions] == [(), ("not FDG-avid (SUVmax 0.5)",)]
    assert found.renumbered == {1: 2, 2: 1}  # the undoubted one first, however small
