"""PET bars on synthetic PET/CT studies of known activity (``oncoqi.phantom``), end to end from DICOM.

The phantom renders the PET activity on a grid twice as fine and averages it into the PET voxels,
so a PET voxel holds ``f * SUV_t + (1 - f) * SUV_bg`` where ``f`` is the fraction of the voxel in
the tumour (the tumour lies in lung of uniform SUV ``SUV_bg``); the truth gives ``SUV_t``,
``SUV_bg``, the SUVbw factor and the tumour volume on that fine grid. One study has no blur and
no noise, one has the default 6 mm FWHM resolution blur (no noise).

Partial-volume tolerance of a volume
------------------------------------
A segmentation that keeps the PET voxels covered at least half by the tumour (the 50 %
background-adapted threshold on the unblurred PET, since ``f >= 1/2`` iff ``value >= SUV_bg +
(SUV_t - SUV_bg) / 2``; and :func:`oncoqi.pet.segment.transfer_labels` ``fraction`` of the CT
label) errs only in the voxels the surface crosses. Locally the surface is a plane with unit
normal ``n``; take the column of voxels along the axis ``a`` with the largest ``|n_a|``. A plane
cuts a box centrally symmetrically, so the covered fractions of the column's partial voxels come
in pairs ``f, 1 - f`` around the plane, one of each pair is kept, and their error cancels; only
the voxel the plane's mid-height falls in is left, with error at most half a voxel. Per unit area
of surface (a column's footprint ``s_b s_c`` spans ``s_b s_c / |n_a|`` of it) the error is at most
``s_a |n_a| / 2 <= s_max / 2``, so ``|MTV - V| <= S * s_max / 2`` with ``S`` the surface area
(measured by marching cubes on the CT label, an over-estimate, hence a safe bound), up to terms of
order ``s_max**2 / R`` for a surface of curvature radius ``R``.

With blur of standard deviation ``sigma`` (FWHM / 2.3548), the half-contrast surface of a blurred
ball of radius ``R`` moves inward: at ``r = R`` the blurred profile is ``1/2 - sigma / (R
sqrt(2 pi))`` and its slope ``-1 / (sigma sqrt(2 pi))``, so the 50 % contour lies at ``R -
sigma**2 / R``; the tolerance adds ``S * sigma**2 / R`` (``R`` the equivalent-sphere radius).
"""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from scipy import ndimage
from skimage import measure

from benchmarks.bench_pet_indices import make_case
from helpers.pet import TUMOUR_SUV, options, run_cli
from helpers.sr_validator import pixelmed_findings
from oncoqi.dicom import read_volume_file
from oncoqi.image import Image
from oncoqi.pet import (
    SUVType,
    apply_suv,
    compute_indices,
    compute_suv_factors,
    load_pet_series,
)
from oncoqi.pet.segment import (
    ThresholdOptions,
    coverage_fraction,
    subsamples_per_axis,
    threshold_segment,
    transfer_labels,
)
from oncoqi.phantom import make_petct, write_study
from oncoqi.phantom.render import FWHM_TO_SIGMA
from oncoqi.report import read_report

BLURS = (0.0, 6.0)


@pytest.fixture(scope="module")
def studies(tmp_path_factory) -> dict[float, dict]:
    """Per blur: the study written as DICOM, its SUVbw volume read back, the truth, the CT label."""
    out = {}
    for blur in BLURS:
        result = make_petct(options(blur))
        root = tmp_path_factory.mktemp(f"petct_blur{blur:g}")
        write_study(result, root)
        series = load_pet_series(root / "PET")
        factors = compute_suv_factors(series.datasets)
        out[blur] = {
            "root": root,
            "blur": blur,
            "truth": result.truth,
            "factors": factors,
            "suv": apply_suv(series.image, factors, SUVType.BW),
            "ct_label": read_volume_file(root / "truth" / "tumor_label.nrrd"),
            "tumour_fraction": result.pet_tumour_fraction,
        }
    return out


@pytest.fixture(params=BLURS, ids=["sharp", "blur6mm"])
def study(request, studies) -> dict:
    return studies[request.param]


@pytest.fixture
def sharp(studies) -> dict:
    return studies[0.0]


def tumour_truth(study) -> tuple[dict, dict, dict]:
    truth = study["truth"]
    regions = {r["name"]: r for r in truth["pet_regions"]}
    return truth["tumours"][0], regions["tumour_1"], regions["lung"]


def surface_area_mm2(label: Image) -> float:
    """Area of the label's boundary by marching cubes (slightly above the smooth surface's)."""
    padded = np.pad((label.array != 0).astype(np.float32), 1)
    verts, faces, _, _ = measure.marching_cubes(padded, 0.5, spacing=label.spacing[::-1])
    return float(measure.mesh_surface_area(verts, faces))


def volume_tolerance_ml(study) -> float:
    """``S * (s_max / 2 + sigma**2 / R)`` (module docs), in ml."""
    tumour, _, _ = tumour_truth(study)
    s_max = max(study["suv"].spacing)
    sigma = study["blur"] / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    radius = (3.0 * tumour["volume_ml"] * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
    return surface_area_mm2(study["ct_label"]) * (s_max / 2.0 + sigma**2 / radius) / 1000.0


def pet_tumour_label(study) -> Image:
    return transfer_labels(study["ct_label"], study["suv"], "fraction")


def test_suv_factor_matches_the_truth(study):
    expected = study["truth"]["pet"]["suvbw_factor"]
    assert study["factors"].suvbw == pytest.approx(expected, rel=1e-6)
    assert study["suv"].metadata["units"] == "{SUVbw}g/ml"


def test_suv_max_and_mean_inside_the_uniform_sphere(study):
    suv = study["suv"]
    label = pet_tumour_label(study)
    # "inside": voxels deeper than the blur reaches (3 sigma) plus one voxel of partial volume
    sigma = study["blur"] / 2.3548
    depth = ndimage.distance_transform_edt(label.array != 0, sampling=suv.spacing[::-1])
    inside = label.with_array((depth > 3 * sigma + max(suv.spacing)).astype(np.uint8))
    assert inside.array.sum() >= 8
    r = compute_indices(suv, inside, 1)
    assert r.suv_max == pytest.approx(TUMOUR_SUV, rel=0.01)
    assert r.suv_mean == pytest.approx(TUMOUR_SUV, rel=0.01)
    whole = compute_indices(suv, label, 1)
    assert whole.suv_max == pytest.approx(TUMOUR_SUV, rel=0.01)  # the partial voxels are all lower


def test_suv_peak_of_the_sphere_is_its_suv(study):
    r = compute_indices(study["suv"], pet_tumour_label(study), 1)
    assert r.suv_peak == pytest.approx(TUMOUR_SUV, rel=0.01)
    tumour, _, _ = tumour_truth(study)
    # the peak sphere sits in the tumour: within its radius of the centre
    offset = np.linalg.norm(np.array(r.suv_peak_lps_mm) - np.array(tumour["centre_lps_mm"]))
    assert offset < tumour["max_radius_mm"] - 6.2


def test_mtv_of_the_background_adapted_threshold_within_the_partial_volume_tolerance(study):
    suv = study["suv"]
    tumour, region, lung = tumour_truth(study)
    # region: the CT tumour on the PET grid grown by 8 mm, so the segment cannot leak elsewhere
    near = ndimage.distance_transform_edt(pet_tumour_label(study).array == 0, sampling=suv.spacing[::-1]) <= 8.0
    result = threshold_segment(
        suv,
        "background",
        50,
        region=suv.with_array(near.astype(np.uint8)),
        seed_lps=tuple(tumour["centre_lps_mm"]),
        options=ThresholdOptions(background=lung["suvbw"]),
    )
    mtv = result.voxel_count * suv.voxel_volume_ml
    tolerance = volume_tolerance_ml(study)
    assert abs(mtv - region["pet_volume_ml"]) <= tolerance
    assert tolerance < 0.5 * region["pet_volume_ml"]  # the bound still says something


def test_background_adapted_threshold_keeps_exactly_the_voxels_at_half_the_tumours_contrast(study):
    """The 50 % background-adapted threshold, checked voxel by voxel against the phantom's exact
    partial volume ``f`` of the tumour in each PET voxel (its sub-samples, before blur).

    Noise-free, a PET voxel holds ``SUV_bg + g (SUV_t - SUV_bg)`` with ``g = f`` (sharp) or ``g =
    G * f`` (blurred with the phantom's Gaussian), so the threshold ``SUV_bg + 50 % (SUVmax - SUV_bg)``
    keeps exactly the voxels with ``g >= g_max / 2``. Voxels within 0.1 % of that level (ties, DICOM
    rounding) may go either way. In the blurred study a threshold 5 points off (45 % or 55 %) changes
    the segment by more than 10 voxels, so the check tells them apart; in the sharp one ``f`` moves
    in eighths and a 12.5-point error is the smallest it sees."""
    suv = study["suv"]
    tumour, _, lung = tumour_truth(study)
    near = ndimage.distance_transform_edt(pet_tumour_label(study).array == 0, sampling=suv.spacing[::-1]) <= 8.0
    result = threshold_segment(
        suv,
        "background",
        50,
        region=suv.with_array(near.astype(np.uint8)),
        seed_lps=tuple(tumour["centre_lps_mm"]),
        options=ThresholdOptions(background=lung["suvbw"]),
    )
    fraction = study["tumour_fraction"]
    assert fraction.same_grid(suv)
    g = fraction.array.astype(np.float64)
    if study["blur"] > 0:
        g = ndimage.gaussian_filter(g, [study["blur"] * FWHM_TO_SIGMA / s for s in suv.spacing[::-1]])
    level = g / g.max()
    kept = result.mask.array > 0
    surely_in, maybe_in = level > 0.5 + 1e-3, level >= 0.5 - 1e-3
    assert np.array_equal(kept & surely_in, surely_in)  # nothing above half the contrast missed
    assert not (kept & ~maybe_in).any()  # nothing below it kept
    if study["blur"] > 0:
        assert (level >= 0.45 - 1e-3).sum() > kept.sum() + 10
        assert (level > 0.55 + 1e-3).sum() < kept.sum() - 10


def test_ct_label_transferred_to_pet_keeps_its_volume(sharp):
    study = sharp
    tumour, _, _ = tumour_truth(study)
    label = pet_tumour_label(study)
    transferred = np.count_nonzero(label.array) * label.voxel_volume_ml
    tolerance = volume_tolerance_ml(study)
    assert abs(transferred - tumour["volume_ml"]) <= tolerance
    # the coverage fractions themselves add up to the CT volume, up to the sampling error: along
    # each axis the sub-samples that land in the tumour's extent are off by at most one step at
    # its ends (the CT and PET steps are incommensurate), a relative error of step / extent
    covered = coverage_fraction(study["ct_label"], study["suv"]).array.sum() * label.voxel_volume_ml
    steps = np.divide(study["suv"].spacing, subsamples_per_axis(study["ct_label"], study["suv"]))
    inside = study["ct_label"].array != 0
    extents = [np.ptp(np.flatnonzero(inside.any(axis=axes))) + 1 for axes in ((0, 1), (0, 2), (1, 2))]  # i, j, k
    rel = float(np.sum(steps / (np.asarray(extents) * study["ct_label"].spacing)))
    assert covered == pytest.approx(tumour["volume_ml"], rel=rel)
    nearest = transfer_labels(study["ct_label"], study["suv"], "nearest")
    assert abs(np.count_nonzero(nearest.array) * label.voxel_volume_ml - tumour["volume_ml"]) <= tolerance


def test_cli_transfer_and_indices_report_of_the_ct_tumour(sharp, tmp_path):
    root = sharp["root"]
    code, _ = run_cli(
        "pet",
        "transfer",
        "--labels",
        str(root / "truth" / "tumor_label.nrrd"),
        "--pet",
        str(root / "PET"),
        "--out",
        str(tmp_path / "pet_label.nrrd"),
    )
    assert code == 0
    code, text = run_cli(
        "pet",
        "indices",
        "--pet",
        str(root / "PET"),
        "--labels",
        str(tmp_path / "pet_label.nrrd"),
        "--json",
        "--report",
        str(tmp_path / "report"),
    )
    (row,) = json.loads(text)
    assert row["suv_max"] == pytest.approx(TUMOUR_SUV, rel=0.01)
    sr = read_report(tmp_path / "report" / "sr.dcm")
    values = {(r["quantity_code"], r["derivation_code"]): r["value"] for r in sr.rows()}
    assert values[("126401 DCM", "56851009 SCT")] == pytest.approx(row["suv_max"], rel=1e-6)
    assert values[("126401 DCM", "373098007 SCT")] == pytest.approx(row["suv_mean"], rel=1e-6)
    assert values[("126401 DCM", "373099004 SCT")] == pytest.approx(row["median"], rel=1e-6)
    assert values[("126401 DCM", "126031 DCM")] == pytest.approx(row["suv_peak"], rel=1e-6)
    assert values[("126032 DCM", None)] == pytest.approx(row["mtv_ml"], rel=1e-6)
    assert values[("126033 DCM", None)] == pytest.approx(row["tlg"], rel=1e-6)
    assert values[("126037 DCM", None)] == pytest.approx(row["sam"], rel=1e-6)
    assert values[("126038 DCM", None)] == pytest.approx(row["sam_background"], rel=1e-6)
    seg = read_report(tmp_path / "report" / "seg.dcm", str(root / "PET"))
    assert np.count_nonzero(seg.labels[0].array) == row["voxel_count"]
    # The mask came from a label map: the SEG does not claim an algorithm made it (its origin is unknown).
    assert [s.algorithm_type for s in seg.metadata.segments] == ["MANUAL"]
    assert pixelmed_findings(tmp_path / "report" / "sr.dcm") == ([], [])


def test_all_indices_of_a_100ml_lesion_in_a_200x200x300_pet_within_the_time_bar():
    """The bar is 2 s, held as it is: the best of three runs must meet it (a run slowed by another
    process on a loaded CI machine is not the code's time; the benchmark
    ``Testing/benchmarks/bench_pet_indices.py`` prints the times and the naive ratio)."""
    suv, labels = make_case()
    times = []
    for _ in range(3):
        start = time.perf_counter()
        r = compute_indices(suv, labels, 1)
        times.append(time.perf_counter() - start)
        if times[-1] < 2.0:
            break
    assert r.mtv_ml == pytest.approx(100.0, rel=0.02)
    assert r.suv_peak is not None and r.sam is not None
    assert min(times) < 2.0, times
