"""oncoqi.pet SUV factors, SUV volumes and the RWVM object.

Two kinds of tests:

* real public data (QIN-HEADNECK-01-0139 PET, STS_001 PET) against the reference values that
  the QIICR Slicer extensions assert (``../shared/data/README.md``); skipped when absent;
* synthetic headers built with pydicom for every rule of :mod:`oncoqi.pet.suv`, whose expected
  factors are worked out here from the definition ``SUVbw factor = W[g] / (A0 * 2**(-dt/T))``.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from datetime import datetime

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from helpers.datasets import dataset
from helpers.pet import F18_HALF_LIFE, bw_factor, load_qin, load_sts, make_pet, run_cli
from oncoqi.errors import InputError
from oncoqi.image import Image
from oncoqi.pet import (
    SUVType,
    apply_rwvm,
    apply_suv,
    body_surface_area_dubois,
    build_rwvm,
    compute_suv_factors,
    lean_body_mass_janmahasatian,
    read_rwvm_mappings,
    write_rwvm,
)

# --------------------------------------------------------------------------- real data


def test_qin_suvbw_factor_matches_qiicr_reference():
    series = load_qin()
    factors = compute_suv_factors(series.datasets)
    # QIICR PETDICOMExtension test: SUVbw factor '0.000401664' (6 significant digits)
    assert f"{factors.suvbw:.6g}" == "0.000401664"
    assert factors.units == "BQML" and factors.decay_correction == "START"
    assert factors.scan_time_source == "series"
    # decay from 08:45:00 to 10:27:31.687: the fractional seconds are used
    assert factors.decay_time_s == pytest.approx(6151.687, abs=1e-6)
    assert not factors.varies_per_frame(SUVType.BW)
    assert len(factors.frames(SUVType.BW)) == 545


def test_qin_has_no_height_so_sul_and_bsa_are_null_with_reasons():
    factors = compute_suv_factors(load_qin().datasets)
    assert factors.sul is None and factors.suvbsa is None
    assert any("PatientSize (0010,1020)" in w for w in factors.warnings)
    assert any("RadiopharmaceuticalStartDateTime (0018,1078) absent" in w for w in factors.warnings)
    d = factors.to_dict()
    assert d["sul"] is None and d["suvbsa"] is None and "per_frame" not in d
    with pytest.raises(InputError, match=r"SUVlbm\(Janma\) cannot be computed.*PatientSize \(0010,1020\)"):
        apply_suv(load_qin().image, factors, SUVType.SUL)


def test_qin_maximum_suvbw_matches_reference():
    series = load_qin()
    suv = apply_suv(series.image, compute_suv_factors(series.datasets))
    assert float(suv.array.max()) == pytest.approx(89.8588, abs=5e-5)
    assert suv.metadata["units"] == "{SUVbw}g/ml"


def test_sts_gml_is_already_suvbw():
    series = load_sts()
    factors = compute_suv_factors(series.datasets)
    assert factors.units == "GML" and factors.decay_correction == "ADMIN"
    assert factors.suvbw == 1.0
    assert factors.injected_dose_bq is None  # no decay computation for a vendor SUV
    assert any("GML" in w for w in factors.warnings)
    # SUL and SUVbsa follow from the patient's size: 71 kg, 1.63 m, male
    bmi = 71.0 / 1.63**2
    assert factors.sul == pytest.approx(9270.0 / (6680.0 + 216.0 * bmi), rel=1e-12)
    assert factors.suvbsa == pytest.approx(71.84 * 71.0**0.425 * 163.0**0.725 / 71000.0, rel=1e-12)
    suv = apply_suv(series.image, factors, dtype=np.float64)
    np.testing.assert_array_equal(suv.array, series.image.array.astype(np.float64))


def _dciodvfy_errors(path) -> list[str]:
    """dciodvfy's errors and warnings (both count: a warning is a defect another reader sees too)."""
    proc = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=120)
    lines = (proc.stdout + proc.stderr).splitlines()
    errors = [line for line in lines if line.startswith("Error")]
    assert (proc.returncode == 0) == (not errors), lines
    return errors + [line for line in lines if line.startswith("Warning")]


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools dciodvfy not installed")
def test_rwvm_of_the_sample_pet_has_no_dciodvfy_error_or_warning(tmp_path) -> None:
    """Body Part Examined (CHEST) is copied, so the unpaired part's Laterality is absent, not empty."""
    from oncoqi.phantom.sample import extract_sample

    pet = sorted((extract_sample(tmp_path / "sample") / "PET").iterdir())
    datasets = [pydicom.dcmread(f, stop_before_pixels=True) for f in pet]
    path = write_rwvm(tmp_path / "rwvm.dcm", datasets, compute_suv_factors(datasets))
    assert _dciodvfy_errors(path) == []
    rwvm = pydicom.dcmread(path)
    assert rwvm.BodyPartExamined == "CHEST" and "Laterality" not in rwvm


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools dciodvfy not installed")
@pytest.mark.parametrize("loader", [load_qin, load_sts], ids=["qin-bqml", "sts-gml-per-slice-rescale"])
def test_rwvm_passes_dciodvfy_and_reproduces_the_suv_volume(loader, tmp_path):
    series = loader()
    factors = compute_suv_factors(series.datasets)
    path = write_rwvm(tmp_path / "rwvm.dcm", series.datasets, factors)
    # The only findings allowed are the PET's own (e.g. its empty Study ID), which the RWVM copies, and
    # an empty Laterality when the PET does not give one (for an unknown or paired body part it is unknown).
    source = subprocess.run(["dciodvfy", series.datasets[0].filename], capture_output=True, text=True, timeout=120)
    allowed = set((source.stdout + source.stderr).splitlines())
    if not series.datasets[0].get("Laterality"):
        allowed |= {line for line in _dciodvfy_errors(path) if line.endswith("attribute <Laterality>")}
    assert [line for line in _dciodvfy_errors(path) if line not in allowed] == []
    rwvm = pydicom.dcmread(path)
    assert rwvm.Modality == "RWV" and rwvm.SOPClassUID == "1.2.840.10008.5.1.4.1.1.67"
    assert rwvm.StudyInstanceUID == series.datasets[0].StudyInstanceUID
    refs = {r.ReferencedSOPInstanceUID for r in rwvm.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert refs == {d.SOPInstanceUID for d in series.datasets}
    for t in SUVType:
        if factors.frames(t) is None:
            continue
        maps = read_rwvm_mappings(rwvm, t)
        assert set(maps) == refs
        for ds in series.datasets[:5]:  # the mapping folds the frame's rescale slope in
            slope, intercept = maps[ds.SOPInstanceUID]
            assert slope == pytest.approx(float(ds.RescaleSlope) * factors.factor(t), rel=1e-12)
            assert intercept == pytest.approx(float(ds.RescaleIntercept) * factors.factor(t), abs=1e-15)
        direct = apply_suv(series.image, factors, t, dtype=np.float64)
        via_rwvm = apply_rwvm(series.image, rwvm, t, dtype=np.float64)
        np.testing.assert_allclose(via_rwvm.array, direct.array, rtol=1e-6, atol=1e-9)


def test_qin_rwvm_slope_is_rescale_slope_times_factor():
    series = load_qin()
    factors = compute_suv_factors(series.datasets)
    rwvm = build_rwvm(series.datasets, factors)
    (item,) = rwvm.ReferencedImageRealWorldValueMappingSequence  # one rescale slope in the series
    (mapping,) = item.RealWorldValueMappingSequence  # only SUVbw (no height)
    assert mapping.MeasurementUnitsCodeSequence[0].CodeValue == "{SUVbw}g/ml"
    assert mapping.RealWorldValueSlope == pytest.approx(float(series.datasets[0].RescaleSlope) * 0.000401664, rel=1e-6)
    quantities = {q.ConceptCodeSequence[0].CodeValue for q in mapping.QuantityDefinitionSequence}
    assert quantities == {"126401", "126410"}
    assert mapping["RealWorldValueFirstValueMapped"].VR == "SS"  # PixelRepresentation 1
    assert mapping.RealWorldValueFirstValueMapped == -32768 and mapping.RealWorldValueLastValueMapped == 32767


# --------------------------------------------------------------------------- synthetic headers


def test_bqml_start_decays_the_dose_from_injection_to_series_time():
    f = compute_suv_factors(make_pet())
    assert f.suvbw == pytest.approx(bw_factor(80, 370e6, 3600.0), rel=1e-12)
    assert f.decay_time_s == 3600.0
    assert f.injection_datetime == datetime(2024, 1, 1, 9, 0, 0)
    assert f.scan_time_source == "series"


def test_bqml_admin_uses_the_undecayed_dose():
    f = compute_suv_factors(make_pet(decay="ADMIN"))
    assert f.suvbw == pytest.approx(80_000 / 370e6, rel=1e-12)
    assert f.decay_time_s == 0.0
    assert any("ADMIN" in w for w in f.warnings)


def test_decay_correction_none_is_refused_clearly():
    with pytest.raises(InputError, match=r"DecayCorrection \(0054,1102\) is NONE"):
        compute_suv_factors(make_pet(decay="NONE"))


def test_missing_decay_correction_is_named():
    with pytest.raises(InputError, match=r"DecayCorrection \(0054,1102\) is missing"):
        compute_suv_factors(make_pet(decay=None))


@pytest.mark.parametrize("weight", [None, "0"])
def test_missing_weight_is_named_in_the_error(weight):
    with pytest.raises(InputError, match=r"PatientWeight \(0010,1030\)"):
        compute_suv_factors(make_pet(weight=weight))


def test_missing_dose_and_start_times_are_named():
    with pytest.raises(InputError, match=r"RadionuclideTotalDose \(0018,1074\)"):
        compute_suv_factors(make_pet(dose=None))
    both = r"RadiopharmaceuticalStartDateTime \(0018,1078\).*RadiopharmaceuticalStartTime \(0018,1072\)"
    with pytest.raises(InputError, match=both):
        compute_suv_factors(make_pet(start_time=None))
    no_seq = make_pet()
    for ds in no_seq:
        del ds.RadiopharmaceuticalInformationSequence
    with pytest.raises(InputError, match=r"\(0054,0016\)"):
        compute_suv_factors(no_seq)


def test_scan_crossing_midnight_puts_the_injection_on_the_previous_day():
    f = compute_suv_factors(make_pet(series_date="20240102", series_time="003000", start_time="233000"))
    assert f.injection_datetime == datetime(2024, 1, 1, 23, 30)
    assert f.decay_time_s == 3600.0
    assert f.suvbw == pytest.approx(bw_factor(80, 370e6, 3600.0), rel=1e-12)
    assert any("midnight" in w for w in f.warnings)


def test_start_datetime_is_preferred_over_start_time():
    f = compute_suv_factors(make_pet(start_datetime="20240101083000", start_time="090000"))
    assert f.decay_time_s == 5400.0
    assert f.suvbw == pytest.approx(bw_factor(80, 370e6, 5400.0), rel=1e-12)
    assert not any("absent" in w for w in f.warnings)


def test_start_datetime_on_the_previous_day_counts_whole_days():
    f = compute_suv_factors(make_pet(start_datetime="20231231230000.5", series_date="20240101", series_time="010000"))
    assert f.decay_time_s == pytest.approx(7199.5, abs=1e-9)


def test_injection_after_scan_is_refused():
    with pytest.raises(InputError, match="negative"):
        compute_suv_factors(make_pet(start_datetime="20240101110000"))


def test_series_time_after_acquisition_uses_the_earliest_acquisition():
    f = compute_suv_factors(make_pet(series_time="120000", acquisition_times=["100500", "100000", "101000"]))
    assert f.scan_time_source == "earliest_acquisition"
    assert f.suvbw == pytest.approx(bw_factor(80, 370e6, 3600.0), rel=1e-12)
    assert any("earliest Acquisition" in w for w in f.warnings)


def test_ge_private_post_injection_datetime_is_used_when_series_time_was_reset():
    headers = make_pet(series_time="120000", acquisition_times=["100000"] * 3)
    for ds in headers:
        block = ds.private_block(0x0009, "GEMS_PETD_01", create=True)
        block.add_new(0x0D, "DT", "20240101101500")
    f = compute_suv_factors(headers)
    assert f.scan_time_source == "ge_private"
    assert f.decay_time_s == 4500.0
    assert f.suvbw == pytest.approx(bw_factor(80, 370e6, 4500.0), rel=1e-12)
    assert any("(0009,100D)" in w for w in f.warnings)


def test_siemens_frames_back_compute_the_decay_reference_per_frame():
    # each frame: acquisition start, Frame Reference Time (ms, offset of the frame's average-count
    # time from the scan reference) and duration; QIBA: scan = acq + t_avg - FrameReferenceTime
    acq = ["100000", "100300", "100600"]
    headers = make_pet(series_time="130000", acquisition_times=acq)
    lam = math.log(2) / F18_HALF_LIFE
    duration = 180.0
    t_avg = math.log(lam * duration / (1 - math.exp(-lam * duration))) / lam
    reference_offsets = [10.0, 15.0, 20.0]  # s: frame k's reference is 09:59:50+.. -> differs per frame
    for k, ds in enumerate(headers):
        ds.ActualFrameDuration = "180000"
        ds.FrameReferenceTime = f"{(180.0 * k + t_avg + reference_offsets[k]) * 1000.0:.6f}"
    f = compute_suv_factors(headers)
    assert f.scan_time_source == "frame_reference_time"
    expected_dt = [3600.0 - off for off in reference_offsets]
    np.testing.assert_allclose(f.frames(SUVType.BW), [bw_factor(80, 370e6, dt) for dt in expected_dt], rtol=1e-9)
    assert f.varies_per_frame(SUVType.BW) and f.suvbw is None
    assert any("differs between frames" in w for w in f.warnings)
    assert "per_frame" in f.to_dict() and len(f.to_dict()["per_frame"]["suvbw"]) == 3


def _philips(headers: list[Dataset], suv_factor: list[float] | None = None, acsf: list[float] | None = None):
    for k, ds in enumerate(headers):
        block = ds.private_block(0x7053, "Philips PET Private Group", create=True)
        if suv_factor is not None:
            block.add_new(0x00, "DS", str(suv_factor[k]))
        if acsf is not None:
            block.add_new(0x09, "DS", str(acsf[k]))
    return headers


def test_philips_cnts_private_suv_scale_factor_per_frame():
    headers = _philips(make_pet(units="CNTS"), suv_factor=[0.00021, 0.00021, 0.00023])
    f = compute_suv_factors(headers)
    np.testing.assert_array_equal(f.frames(SUVType.BW), [0.00021, 0.00021, 0.00023])
    assert f.suvbw is None and f.to_dict()["per_frame"]["suvbw"][2] == 0.00023
    # the volume gets each slice's own factor when the slice order is known
    pet = Image(np.ones((3, 2, 2)), metadata={"sop_instance_uids": [d.SOPInstanceUID for d in headers]})
    np.testing.assert_allclose(apply_suv(pet, f).array[:, 0, 0], [0.00021, 0.00021, 0.00023], rtol=1e-6)
    with pytest.raises(InputError, match="differs between frames"):
        apply_suv(Image(np.ones((3, 2, 2))), f)


def test_philips_cnts_uniform_suv_scale_factor_is_one_factor():
    f = compute_suv_factors(_philips(make_pet(units="CNTS"), suv_factor=[0.0002] * 3))
    assert f.suvbw == pytest.approx(0.0002, rel=1e-12)


def test_philips_factor_without_its_private_creator_is_used_with_a_warning():
    headers = make_pet(units="CNTS")
    for ds in headers:
        ds.add_new((0x7053, 0x1000), "UN", b"0.0002")  # creator stripped, value left as raw bytes
    f = compute_suv_factors(headers)
    assert f.suvbw == pytest.approx(0.0002, rel=1e-12)
    assert any("(7053,1000) read without its private creator" in w for w in f.warnings)


def test_philips_cnts_activity_concentration_scale_factor_then_bqml():
    f = compute_suv_factors(_philips(make_pet(units="CNTS"), acsf=[2.5] * 3))
    assert f.suvbw == pytest.approx(2.5 * bw_factor(80, 370e6, 3600.0), rel=1e-12)


def test_philips_cnts_without_private_factors_names_both_tags():
    with pytest.raises(InputError, match=r"\(7053,1000\).*\(7053,1009\)"):
        compute_suv_factors(make_pet(units="CNTS"))


def test_unsupported_units_are_named():
    with pytest.raises(InputError, match=r"Units \(0054,1001\) = PROPCPS"):
        compute_suv_factors(make_pet(units="PROPCPS"))


def test_not_attenuation_corrected_is_refused():
    with pytest.raises(InputError, match="lacks ATTN"):
        compute_suv_factors(make_pet(corrected=["DECY"]))
    with pytest.raises(InputError, match="lacks DECY"):
        compute_suv_factors(make_pet(corrected=["ATTN"]))


def test_instances_from_different_series_are_refused():
    headers = make_pet()
    headers[1].PatientWeight = "81"
    with pytest.raises(InputError, match="PatientWeight"):
        compute_suv_factors(headers)


def test_sul_and_bsa_follow_their_published_formulas():
    f = compute_suv_factors(make_pet(weight="70", size="1.70", sex="F"))
    bw = bw_factor(70, 370e6, 3600.0)
    # Janmahasatian (female): LBM = 9270 W / (8780 + 244 BMI), BMI = 70 / 1.7**2
    lbm = 9270 * 70 / (8780 + 244 * (70 / 1.7**2))
    assert f.lbm_kg == pytest.approx(lbm, rel=1e-12)
    assert f.sul == pytest.approx(bw * lbm / 70, rel=1e-12)
    # Du Bois: 70 kg, 170 cm -> 1.81 m2 (the classic table value)
    assert f.bsa_m2 == pytest.approx(1.81, abs=0.005)
    assert f.suvbsa == pytest.approx(bw * f.bsa_m2 * 1e4 / 70_000, rel=1e-12)
    assert body_surface_area_dubois(70, 1.7) == pytest.approx(0.007184 * 70**0.425 * 170**0.725, rel=1e-12)
    assert lean_body_mass_janmahasatian(70, 1.7, "M") == pytest.approx(
        9270 * 70 / (6680 + 216 * 70 / 1.7**2), rel=1e-12
    )


def test_sul_needs_sex_and_height_in_metres():
    f = compute_suv_factors(make_pet(sex="O"))
    assert f.sul is None and f.suvbsa is not None
    assert any("PatientSex (0010,0040)" in w for w in f.warnings)
    cm = compute_suv_factors(make_pet(size="180"))
    assert cm.height_m == pytest.approx(1.8)
    assert any("cm" in w for w in cm.warnings)


def test_gml_without_suv_type_is_assumed_suvbw_with_a_warning():
    f = compute_suv_factors(make_pet(units="GML", decay="ADMIN", dose=None, start_time=None))
    assert f.suvbw == 1.0
    assert any("SUV Type (0054,1006)" in w for w in f.warnings)


def test_gml_bsa_is_converted_back_to_suvbw():
    headers = make_pet(units="GML", dose=None, start_time=None)
    for ds in headers:
        ds.SUVType = "BSA"
    f = compute_suv_factors(headers)
    bsa_cm2 = 1e4 * body_surface_area_dubois(80, 1.8)
    assert f.suvbw == pytest.approx(80_000 / bsa_cm2, rel=1e-12)
    assert f.suvbsa == pytest.approx(1.0, rel=1e-12)


def test_legacy_colon_times_and_fractions_are_parsed():
    f = compute_suv_factors(make_pet(series_time="10:00:00.250", start_time="09:00:00"))
    assert f.decay_time_s == pytest.approx(3600.25, abs=1e-9)


def test_not_pet_is_refused():
    headers = make_pet()
    headers[0].Modality = "CT"
    with pytest.raises(InputError, match="not PT"):
        compute_suv_factors(headers)


# --------------------------------------------------------------------------- command line


def test_cli_suv_json_on_real_pet(tmp_path):
    root = dataset("sts-001-pet-gml")
    code, out = run_cli("pet", "suv", str(root), "--json", "--rwvm", str(tmp_path / "rwvm.dcm"))
    assert code == 0
    d = json.loads(out)
    assert {"suvbw", "sul", "suvbsa", "units", "decay_correction", "warnings"} <= set(d)
    assert d["suvbw"] == 1.0 and d["units"] == "GML" and d["decay_correction"] == "ADMIN"
    assert d["sul"] == pytest.approx(compute_suv_factors(load_sts().datasets).sul, rel=1e-12)
    assert pydicom.dcmread(d["rwvm_file"]).Modality == "RWV"
