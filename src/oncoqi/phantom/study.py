"""Make a synthetic thorax CT or PET/CT study with exact ground truth.

:func:`make_ct` and :func:`make_petct` return a :class:`PhantomResult` (images, label maps,
DICOM study facts and the truth dictionary); :func:`oncoqi.phantom.output.write_study` writes it.
Every random choice comes from ``options.seed`` through independent streams (patient, anatomy,
tumours, trees, CT noise, PET noise), so that changing, say, the tumours keeps the anatomy.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from oncoqi.dicom.write import F18_HALF_LIFE_S, PetInfo, StudyInfo, ds_str, uid_from
from oncoqi.image import Image
from oncoqi.phantom.anatomy import Anatomy
from oncoqi.phantom.grid import Grid
from oncoqi.phantom.options import PhantomOptions, TumourSpec
from oncoqi.phantom.render import PET_SUPERSAMPLING, CtScanOptions, LungTrees, PetRegion, render_ct, render_pet
from oncoqi.phantom.tissues import LUNG, SUV, Tissue, enhanced_hu, members
from oncoqi.phantom.tumours import (
    LOCATIONS,
    SHAPES,
    PlacedTumour,
    TumourPlacementError,
    TumourPlacer,
    TumourShape,
)
from oncoqi.phantom.vessels import TubeTree, grow_tree, sample_points

#: Version of the phantom model; part of truth.json so that a change of model is visible.
MODEL_VERSION = 1


@dataclass(frozen=True)
class Patient:
    """Drawn patient and acquisition facts, rounded as they are written to DICOM."""

    sex: str
    weight_kg: float
    height_m: float
    age_years: int
    dose_bq: float
    injection: datetime
    ct_time: datetime
    pet_time: datetime
    scale: float


@dataclass
class PhantomResult:
    """A generated study.

    Attributes
    ----------
    ct
        CT numbers (int16 HU) exactly as written to DICOM.
    tissue
        Tissue classes (:class:`~oncoqi.phantom.tissues.Tissue`) on the CT grid.
    tumour_label
        0 background, 1..n tumours, on the CT grid.
    lung_mask
        0 outside, 1 right lung, 2 left lung (vessels, airways and tumours in the lung included).
    pet
        Activity concentration (Bq/ml, float32) on the PET grid, or ``None`` for a CT study.
    truth
        The content of ``truth.json``.
    pet_tumour_fraction
        Share (0-1) of each PET voxel inside a tumour, before blur (exact partial volume; not
        written to disk), or ``None`` for a CT study.
    """

    options: PhantomOptions
    ct: Image
    tissue: Image
    tumour_label: Image
    lung_mask: Image
    pet: Image | None
    study: StudyInfo
    pet_info: PetInfo | None
    ct_series_uid: str
    pet_series_uid: str | None
    ct_datetime: datetime
    pet_datetime: datetime | None
    truth: dict[str, Any]
    pet_tumour_fraction: Image | None = None


def make_ct(options: PhantomOptions) -> PhantomResult:
    """A CT-only study (see :func:`make_petct`)."""
    return _make(options, with_pet=False)


def make_petct(options: PhantomOptions) -> PhantomResult:
    """A PET/CT study: CT and PET share patient, study and frame of reference.

    Raises
    ------
    oncoqi.phantom.tumours.TumourPlacementError
        When a requested tumour does not fit the phantom's lungs.
    """
    return _make(options, with_pet=True)


def _make(options: PhantomOptions, with_pet: bool) -> PhantomResult:
    """The study of :func:`make_ct` (``with_pet`` false) or :func:`make_petct` (true)."""
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(options.seed).spawn(6)]
    patient_rng, anatomy_rng, tumour_rng, tree_rng, ct_rng, pet_rng = streams
    patient = _draw_patient(patient_rng, options)
    anatomy = Anatomy.draw(anatomy_rng, patient.scale)
    ct_grid = _ct_grid(options, anatomy)
    tissue = anatomy.labels(ct_grid)
    tumours, suvs, tumour_label = _place_tumours(tissue, ct_grid, anatomy, options, tumour_rng)
    vessels, airways = _grow_trees(tissue, ct_grid, anatomy, tree_rng)
    hu, final = render_ct(
        tissue,
        ct_grid,
        anatomy,
        tumour_label,
        LungTrees(vessels, airways),
        CtScanOptions(noise_hu=options.noise_hu, blur_mm=options.blur_mm, contrast_hu=options.contrast_hu),
        ct_rng,
        _ground_glass(tumours, options.tumours, tumour_label, ct_grid),
    )
    lung_mask = _lung_mask(final, ct_grid, anatomy)

    digest = hashlib.sha256(json.dumps([options.to_dict(), with_pet], sort_keys=True).encode()).hexdigest()
    study = _study_info(options, patient, digest, with_pet)
    ct_image = ct_grid.image(hu, modality="CT", units="HU")
    pet_image = pet_info = pet_uid = pet_fraction = None
    regions: list[PetRegion] = []
    factor = _suv_factor(patient)
    if with_pet:
        pet_info = PetInfo(injected_dose_bq=patient.dose_bq, injection_datetime=patient.injection)
        pet_image, regions, pet_fraction = _make_pet(options, anatomy, ct_grid, tumours, suvs, factor, pet_rng)
        pet_uid = uid_from("oncoqi-phantom", digest, "pet-series")
    ct_uid = uid_from("oncoqi-phantom", digest, "ct-series")
    result = PhantomResult(
        options=options,
        ct=ct_image,
        tissue=ct_grid.image(final),
        tumour_label=ct_grid.image(tumour_label),
        lung_mask=ct_grid.image(lung_mask),
        pet=pet_image,
        study=study,
        pet_info=pet_info,
        ct_series_uid=ct_uid,
        pet_series_uid=pet_uid,
        ct_datetime=patient.ct_time,
        pet_datetime=patient.pet_time if with_pet else None,
        truth={},
        pet_tumour_fraction=pet_fraction,
    )
    result.truth = _truth(result, patient, tumours, suvs, regions, factor)
    return result


def _ct_grid(options: PhantomOptions, anatomy: Anatomy) -> Grid:
    """The CT grid of the options, centred on the lungs so that the slices cover them first."""
    lung_lo, lung_hi = anatomy.lung_z_range
    pixel = options.fov_mm / options.size
    return Grid.centred(
        (options.size, options.size, options.slices),
        (pixel, pixel, options.slice_thickness_mm),
        (0.0, 0.0, round((lung_lo + lung_hi) / 2.0, 1)),
    )


def _lung_mask(final: np.ndarray, grid: Grid, anatomy: Anatomy) -> np.ndarray:
    """The truth's lung mask: lung classes (trees and tumours included), 1 right and 2 left of the midline."""
    x, _, _ = grid.axes()
    in_lung = np.isin(final, members(LUNG))
    return np.where(in_lung, np.where(x[None, None, :] > anatomy.x_mid, 2, 1), 0).astype(np.uint8)


def _study_info(options: PhantomOptions, patient: Patient, digest: str, with_pet: bool) -> StudyInfo:
    """Patient and study modules shared by the CT and PET series, with UIDs derived from the options."""
    return StudyInfo(
        study_instance_uid=uid_from("oncoqi-phantom", digest, "study"),
        frame_of_reference_uid=uid_from("oncoqi-phantom", digest, "frame-of-reference"),
        study_datetime=patient.ct_time,
        patient_name=f"PHANTOM^SEED{options.seed}",
        patient_id=f"OQI-PHANTOM-{options.seed}",
        patient_birth_date=f"{patient.ct_time.year - patient.age_years}0101",
        patient_sex=patient.sex,
        patient_age=f"{patient.age_years:03d}Y",
        patient_weight_kg=patient.weight_kg,
        patient_size_m=patient.height_m,
        study_id=str(options.seed % 10**6),
        accession_number=f"PH{options.seed % 10**10}",
        study_description="Synthetic thorax " + ("PET/CT" if with_pet else "CT"),
        manufacturer="OncoQI",
        manufacturer_model_name="oncoqi phantom",
    )


def _make_pet(
    options: PhantomOptions,
    anatomy: Anatomy,
    ct_grid: Grid,
    tumours: list[PlacedTumour],
    suvs: dict[int, float],
    factor: float,
    rng: np.random.Generator,
) -> tuple[Image, list[PetRegion], Image]:
    """The PET image (Bq/ml) over the CT's z range, its regions (activities set from the true SUVs)
    and the tumours' share of each PET voxel."""
    pet_grid = _pet_grid(options, ct_grid)
    class_activity = {t: SUV[t] / factor for t in Tissue}
    class_activity[Tissue.MYOCARDIUM] = float(rng.uniform(2.0, 8.0)) / factor
    rendering = render_pet(
        anatomy,
        pet_grid,
        tumours,
        class_activity,
        {t.label: suvs[t.label] / factor for t in tumours},
        options.pet_blur_mm,
        options.pet_noise,
        rng,
    )
    return (
        pet_grid.image(rendering.activity, modality="PT", units="BQML"),
        rendering.regions,
        pet_grid.image(rendering.tumour_fraction),
    )


def _draw_patient(rng: np.random.Generator, options: PhantomOptions) -> Patient:
    """Patient, dose and times; every number is drawn, then replaced by the given options."""
    sex = str(rng.choice(["M", "F"]))
    weight = rng.uniform(60.0, 100.0) if sex == "M" else rng.uniform(50.0, 88.0)
    height = rng.uniform(1.65, 1.92) if sex == "M" else rng.uniform(1.55, 1.80)
    age = int(rng.integers(35, 81))
    uptake_s = int(rng.integers(55 * 60, 70 * 60))
    start = datetime(2021, 3, 1, 7, 30, 0) + timedelta(days=options.seed % 365, seconds=int(rng.integers(0, 5 * 3600)))
    jitter = rng.uniform(0.97, 1.03)
    sex = options.sex or sex
    weight = round(options.weight_kg if options.weight_kg is not None else weight, 1)
    height = round(options.height_m if options.height_m is not None else height, 2)
    dose = float(round(options.dose_mbq * 1e6 if options.dose_mbq is not None else 3.5e6 * weight, -4))
    if options.uptake_min is not None:
        uptake_s = int(round(options.uptake_min * 60))
    bmi = weight / height**2
    scale = float(np.clip(np.sqrt(bmi / 24.0) * jitter, 0.85, 1.15))
    pet_time = start + timedelta(seconds=uptake_s)
    return Patient(sex, weight, height, age, dose, start, pet_time - timedelta(minutes=4), pet_time, scale)


def _suv_factor(patient: Patient) -> float:
    """SUVbw per Bq/ml from the values exactly as the DICOM headers state them."""
    weight_g = float(ds_str(patient.weight_kg)) * 1000.0
    dose = float(ds_str(patient.dose_bq))
    elapsed = (patient.pet_time - patient.injection).total_seconds()
    return weight_g / (dose * 2.0 ** (-elapsed / float(ds_str(F18_HALF_LIFE_S))))


def _pet_grid(options: PhantomOptions, ct_grid: Grid) -> Grid:
    n = options.pet_matrix
    pixel = options.pet_fov / n
    ct_extent = ct_grid.size[2] * ct_grid.spacing[2]
    slices = max(1, int(round(ct_extent / options.pet_slice_thickness_mm)))
    centre_z = ct_grid.origin[2] + (ct_grid.size[2] - 1) * ct_grid.spacing[2] / 2.0
    return Grid.centred((n, n, slices), (pixel, pixel, options.pet_slice_thickness_mm), (0.0, 0.0, centre_z))


def _place_tumours(
    tissue: np.ndarray, grid: Grid, anatomy: Anatomy, options: PhantomOptions, rng: np.random.Generator
) -> tuple[list[PlacedTumour], dict[int, float], np.ndarray]:
    """Place the requested tumours; returns them, their SUVs and the label map on the CT grid."""
    placer = TumourPlacer(tissue, grid, anatomy.x_mid)
    suvs: dict[int, float] = {}
    for spec in options.tumours:
        # draw everything first so that a given option does not shift later random numbers
        location = str(rng.choice(LOCATIONS))
        small, large = (1.0, 30.0) if location == "parenchyma" else (2.0, 60.0)
        volume = float(np.exp(rng.uniform(np.log(small), np.log(large))))
        kind = str(rng.choice(SHAPES))
        suv = float(rng.uniform(3.0, 12.0))
        shape = TumourShape.draw(spec.shape or kind, rng)
        volume = spec.volume_ml if spec.volume_ml is not None else volume
        # a location left to chance may move to another class when the first has no room
        choices = [spec.location] if spec.location else [location] + [c for c in LOCATIONS if c != location]
        for n, choice in enumerate(choices, start=1):
            try:
                placed = placer.place(shape, volume, choice, rng)
                break
            except TumourPlacementError:
                if n == len(choices):
                    raise
        suvs[placed.label] = spec.suv if spec.suv is not None else round(suv, 2)
    return placer.placed, suvs, placer.label


def _ground_glass(
    tumours: list[PlacedTumour], specs: tuple[TumourSpec, ...], label: np.ndarray, grid: Grid
) -> np.ndarray | None:
    """Tumour voxels outside each tumour's solid core (``TumourSpec.solid_fraction``), or None
    when every tumour is solid."""
    hazy = [(tumour, spec.solid_fraction) for tumour, spec in zip(tumours, specs) if spec.solid_fraction < 1.0]
    if not hazy:
        return None
    out = np.zeros(label.shape, dtype=bool)
    for tumour, solid_fraction in hazy:
        window = tumour.shape.window(grid)
        if window is not None:
            rim = tumour.shape.relative_radius(grid, window) > solid_fraction
            out[window] |= rim & (label[window] == tumour.label)
    return out


def _grow_trees(
    tissue: np.ndarray, grid: Grid, anatomy: Anatomy, rng: np.random.Generator
) -> tuple[list[TubeTree], list[TubeTree]]:
    """Two vessel trees (arterial from the hilum, venous from the left atrium) and one bronchial tree per lung."""
    x, _, _ = grid.axes()
    lung = tissue == Tissue.LUNG
    vessels, airways = [], []
    for hilum, vein_root, side in (
        (anatomy.hilum_right, anatomy.atrium[0], x < anatomy.x_mid),
        (anatomy.hilum_left, anatomy.atrium[1], x > anatomy.x_mid),
    ):
        mask = lung & side[None, None, :]
        root = np.asarray(hilum)
        vessels.append(grow_tree(root, sample_points(mask, grid, 500, rng), 6.5, rng, 0.45))
        vessels.append(grow_tree(np.asarray(vein_root), sample_points(mask, grid, 500, rng), 6.0, rng, 0.45))
        airways.append(grow_tree(root, sample_points(mask, grid, 48, rng), 4.5, rng, 0.9))
    return vessels, airways


def _truth(
    result: PhantomResult,
    patient: Patient,
    tumours: list[PlacedTumour],
    suvs: dict[int, float],
    regions: list[PetRegion],
    factor: float,
) -> dict[str, Any]:
    """The ground-truth dictionary written as truth.json."""
    ct = result.ct
    truth: dict[str, Any] = {
        "generator": "oncoqi.phantom",
        "model_version": MODEL_VERSION,
        "seed": result.options.seed,
        "kind": "petct" if result.pet is not None else "ct",
        "options": result.options.to_dict(),
        "study_instance_uid": result.study.study_instance_uid,
        "frame_of_reference_uid": result.study.frame_of_reference_uid,
        "patient": {
            "sex": patient.sex,
            "weight_kg": patient.weight_kg,
            "height_m": patient.height_m,
            "age_years": patient.age_years,
        },
        "ct": {
            "series_instance_uid": result.ct_series_uid,
            "series_datetime": result.ct_datetime.isoformat(),
            **_geometry(ct),
        },
        "files": {
            "tumor_label": "truth/tumor_label.nrrd: 0 background, 1..n tumours (CT grid)",
            "lung_mask": "truth/lung_mask.nrrd: 0 outside, 1 right lung, 2 left lung (CT grid)",
            "tissue_label": "truth/tissue_label.nrrd: tissue classes listed under tissue_classes (CT grid)",
        },
        "lung_labels": {"1": "right", "2": "left"},
        "tissue_classes": {str(int(t)): t.name.lower() for t in Tissue},
        "ct_hu": {t.name.lower(): hu for t, hu in enhanced_hu(result.options.contrast_hu).items()},
        "lung_volume_ml": {
            side: float((result.lung_mask.array == value).sum()) * ct.voxel_volume_ml
            for side, value in (("right", 1), ("left", 2))
        },
        "tumours": _tumour_truth(result, tumours, suvs, regions, factor),
    }
    if result.pet is not None:
        truth["pet"] = _pet_truth(result, patient, factor)
        truth["pet_regions"] = _pet_region_truth(result.pet, regions, factor)
    return truth


def _tumour_truth(
    result: PhantomResult,
    tumours: list[PlacedTumour],
    suvs: dict[int, float],
    regions: list[PetRegion],
    factor: float,
) -> list[dict[str, Any]]:
    """One truth entry per tumour: as placed, as labelled on the CT grid and, in a PET/CT, its true SUV."""
    ct = result.ct
    label = result.tumour_label.array
    tumour_truth = []
    region_by_name = {r.name: r for r in regions}
    for t in tumours:
        k, j, i = np.nonzero(label == t.label)
        centroid = ct.index_to_lps(np.array([i.mean(), j.mean(), k.mean()])) if k.size else None
        entry: dict[str, Any] = {
            "label": t.label,
            "location": t.location,
            "shape": t.shape.kind,
            "side": t.side,
            "touches": list(t.touches),
            "requested_volume_ml": t.requested_volume_ml,
            "volume_ml": float(k.size) * ct.voxel_volume_ml,
            "shape_volume_ml": t.shape.volume_ml,
            "centre_lps_mm": [round(float(c), 4) for c in t.shape.centre],
            "centroid_lps_mm": None if centroid is None else [round(float(c), 4) for c in centroid],
            "max_radius_mm": round(t.shape.extent, 3),
        }
        if result.pet is not None:
            region = region_by_name.get(f"tumour_{t.label}")
            entry["suvbw"] = suvs[t.label]
            entry["activity_bq_per_ml"] = suvs[t.label] / factor
            entry["pet_volume_ml"] = region.pet_volume_ml if region else 0.0
        tumour_truth.append(entry)
    return tumour_truth


def _pet_truth(result: PhantomResult, patient: Patient, factor: float) -> dict[str, Any]:
    """The PET series' facts: what its SUVs are computed from, and how the image was degraded."""
    assert result.pet is not None and result.pet_info is not None and result.pet_datetime is not None
    return {
        "series_instance_uid": result.pet_series_uid,
        "series_datetime": result.pet_datetime.isoformat(),
        "injection_datetime": result.pet_info.injection_datetime.isoformat(),
        "injected_dose_bq": result.pet_info.injected_dose_bq,
        "half_life_s": result.pet_info.half_life_s,
        "patient_weight_kg": patient.weight_kg,
        "suvbw_factor": factor,
        "supersampling": PET_SUPERSAMPLING,
        "blur_fwhm_mm": result.options.pet_blur_mm,
        "noise": result.options.pet_noise,
        **_geometry(result.pet),
    }


def _pet_region_truth(pet: Image, regions: list[PetRegion], factor: float) -> list[dict[str, Any]]:
    """Every region of uniform true activity, with the interior point where its true value can be read back."""
    return [
        {
            "name": r.name,
            "activity_bq_per_ml": r.activity_bq_per_ml,
            "suvbw": r.activity_bq_per_ml * factor,
            "suvbw_factor": factor,
            "pet_volume_ml": r.pet_volume_ml,
            "interior_index_ijk": None if r.interior_index is None else list(r.interior_index),
            "interior_point_lps_mm": None
            if r.interior_index is None
            else [round(float(c), 4) for c in pet.index_to_lps(np.array(r.interior_index, dtype=float))],
            "interior_depth_mm": r.interior_depth_mm,
        }
        for r in regions
    ]


def _geometry(image: Image) -> dict[str, Any]:
    return {
        "size": list(image.size),
        "spacing_mm": list(image.spacing),
        "origin_lps_mm": list(image.origin),
        "direction": image.direction.ravel().tolist(),
    }
