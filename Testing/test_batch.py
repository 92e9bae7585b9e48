"""``oncoqi batch``: series choice, one study, the cohort (resume, failures, workers, Dask), manifests.

The cohort is 6 small synthetic PET/CT studies made once per module by :mod:`oncoqi.phantom`, one of
them corrupted (a CT slice removed). The mechanics (resume, failures, equal tables in every worker
mode) run on a known-output ONNX model (probability = CT code / 255, see ``helpers.known_models``),
so they need no trained model and assert no model-dependent number; the shipped model is checked
separately (skipped while ``oncoqi/data/lung_unet.onnx`` is absent): GTV-1 must overlap the truth.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

import oncoqi.cli
from helpers.known_models import identity_model
from oncoqi.batch import (
    CohortOptions,
    SelectionError,
    StudyInput,
    StudyOptions,
    choose_series,
    group_studies,
    load_done,
    run_cohort,
)
from oncoqi.batch.cohort import MAX_EXIT_CODE, is_manifest
from oncoqi.batch.selection import lung_slice_count
from oncoqi.batch.study import (
    CT_OUTPUTS,
    DONE_NAME,
    LABELS_NAME,
    LESIONS_NAME,
    LOG_NAME,
    LUNGS_NAME,
    QC_NAME,
    study_folder,
)
from oncoqi.batch.table import RESULT_COLUMNS, read_results_csv
from oncoqi.dicom import read_volume_file, scan_series
from oncoqi.lung.preprocess import PreprocessOptions
from oncoqi.lung.segment import default_model_path
from oncoqi.phantom import PhantomOptions, TumourSpec, make_petct, write_study

pytest.importorskip("onnxruntime", reason="onnxruntime (a core dependency) is not installed")

#: Seeds of the cohort; the last one is corrupted (a CT slice removed).
SEEDS = tuple(range(101, 107))
BROKEN_SEED = SEEDS[-1]
#: Threshold of the known-output model: CT denser than about -150 HU (tumours, vessels, soft tissue).
#: At this threshold the tissue around the lungs makes one large lesion (doubted by its shape and, with
#: the PET, as not FDG-avid) besides the tumour (GTV-1), where 0 HU left it in five to seven pieces,
#: each one more SEG segment and SR group to write in every study.
ID_THRESHOLD = 0.8


def _options(seed: int) -> PhantomOptions:
    return PhantomOptions(
        seed=seed,
        size=80,
        slices=36,
        slice_thickness_mm=5.0,
        pet_size=48,
        noise_hu=0.0,
        pet_noise=0.0,
        tumours=(TumourSpec(volume_ml=15.0, shape="round", location="parenchyma", suv=8.0),),
    )


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """6 PET/CT studies in nested folders (``site/<n>/``); the last one misses a CT slice."""
    root = tmp_path_factory.mktemp("cohort")
    for n, seed in enumerate(SEEDS):
        write_study(make_petct(_options(seed)), root / f"site{n % 2}" / f"case{seed}")
    ct_files = sorted((root / f"site{(len(SEEDS) - 1) % 2}" / f"case{BROKEN_SEED}" / "CT").glob("*.dcm"))
    ct_files[len(ct_files) // 2].unlink()
    return root


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    grid = PreprocessOptions(pixel_mm=4.0, columns=96, rows=96)
    return identity_model(tmp_path_factory.mktemp("model") / "identity.onnx", grid, ID_THRESHOLD)


@pytest.fixture(autouse=True)
def _only_batch(monkeypatch):
    monkeypatch.setattr(oncoqi.cli, "COMMAND_MODULES", ("oncoqi.batch.cli", "oncoqi.demo"))


#: Keeps the known-output model's lesions to a few (it finds every dense structure near the lungs).
MIN_VOLUME = ("--min-volume", "1")


def batch(*argv: str) -> int:
    return oncoqi.cli.main(["batch", *argv, *MIN_VOLUME, "--no-progress"])


def rows_of(out: Path) -> list[tuple[str, ...]]:
    """results.csv as sorted tuples (order of rows does not matter)."""
    return sorted(tuple(r[c] for c in RESULT_COLUMNS) for r in read_results_csv(out / "results.csv"))


#: The worker-mode tests run on ``site1``, half the cohort: three studies, the corrupted one among them,
#: enough for two at a time and a failure, in half the time of the whole cohort.
HALF = "site1"
HALF_SEEDS = SEEDS[1::2]


def half_rows_of(out: Path) -> list[tuple[str, ...]]:
    """:func:`rows_of` for the studies of :data:`HALF` only."""
    patients = {f"OQI-PHANTOM-{seed}" for seed in HALF_SEEDS}
    return [row for row in rows_of(out) if row[0] in patients]


def failures_of(out: Path) -> list[dict[str, str]]:
    with (out / "failures.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def study_inputs(root: Path) -> list[StudyInput]:
    return group_studies(scan_series(root))


# --- series selection ------------------------------------------------------------------------


def _copy_series(src: Path, dest: Path, number: int, **changes) -> Path:
    """Copy a DICOM series with a new SeriesInstanceUID and number, and attributes changed."""
    dest.mkdir(parents=True)
    uid = pydicom.uid.generate_uid()
    for f in sorted(src.glob("*.dcm")):
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID, ds.SeriesNumber = uid, number
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        for key, value in changes.items():
            setattr(ds, key, value)
        ds.save_as(dest / f.name)
    return dest


@pytest.fixture(scope="module")
def one_study(cohort) -> Path:
    return cohort / "site0" / f"case{SEEDS[0]}"


def test_selection_ct_and_its_pet(one_study):
    (study,) = study_inputs(one_study)
    choice = choose_series(study)
    assert choice.ct.modality == "CT" and choice.pet is not None and choice.pet.modality == "PT"
    assert choice.pet.frame_of_reference_uid == choice.ct.frame_of_reference_uid
    assert choice.log[0].startswith("rule: ") and any(
        line.startswith("CT chosen (only candidate)") for line in choice.log
    )
    assert 0 < lung_slice_count(choice.ct) <= choice.ct.number_of_instances


def test_selection_leaves_out_non_axial_and_prefers_most_lung_slices(one_study, tmp_path):
    shutil.copytree(one_study, tmp_path / "s", ignore=shutil.ignore_patterns("truth"))
    _copy_series(one_study / "CT", tmp_path / "s" / "CT_sag", 7, ImageOrientationPatient=[0, 1, 0, 0, 0, -1])
    (study,) = study_inputs(tmp_path / "s")
    choice = choose_series(study)
    assert choice.ct.description == "Thorax phantom CT" and choice.ct.series_number == 2
    assert any("not axial" in line and "#7" in line for line in choice.log)
    # two axial candidates: the one with more lung slices wins even with fewer slices in all
    _copy_series(one_study / "CT", tmp_path / "s" / "CT_b", 9)
    (study,) = study_inputs(tmp_path / "s")
    pick = choose_series(study, lung_slices=lambda s: 100 if s.series_number == 9 else 1)
    assert pick.ct.series_number == 9 and any("CT not chosen" in line for line in pick.log)


def test_run_study_reads_the_chosen_ct_once_among_several_candidates(one_study, tmp_path, monkeypatch):
    """Counting lung slices loads every candidate; the chosen one's volume is kept, not read again."""
    import oncoqi.dicom
    from oncoqi.batch.study import _choose_and_load_ct

    shutil.copytree(one_study, tmp_path / "s", ignore=shutil.ignore_patterns("truth"))
    _copy_series(one_study / "CT", tmp_path / "s" / "CT_b", 9)
    (study,) = study_inputs(tmp_path / "s")
    loads = []
    real = oncoqi.dicom.load_series
    monkeypatch.setattr(oncoqi.dicom, "load_series", lambda series: loads.append(series.series_uid) or real(series))
    copy_uid = next(x.series_uid for x in study.series if x.series_number == 9)
    for override in ((), (copy_uid,)):  # a tie (copies) broken by series number, then --series
        loads.clear()
        choice, ct = _choose_and_load_ct(study, override)
        assert ct.metadata["series_uid"] == choice.ct.series_uid
        assert loads.count(choice.ct.series_uid) == 1 and len(loads) == len(set(loads))  # each read once
    assert choice.ct.series_number == 9


def test_selection_ambiguous_copies_tie_break_on_series_number_and_is_logged(one_study, tmp_path):
    shutil.copytree(one_study, tmp_path / "s", ignore=shutil.ignore_patterns("truth"))
    _copy_series(one_study / "CT", tmp_path / "s" / "CT_copy", 5)
    (study,) = study_inputs(tmp_path / "s")
    choice = choose_series(study)
    assert choice.ct.series_number == 2
    assert any("tie on lung slices and slice count" in line and "#5" in line for line in choice.log)


def test_selection_series_override_and_errors(one_study, tmp_path):
    (study,) = study_inputs(one_study)
    default = choose_series(study)
    pet_uid, ct_uid = default.pet.series_uid, default.ct.series_uid
    forced = choose_series(study, [pet_uid, "1.2.3.4.5.6"])  # a UID of another study is ignored here
    assert forced.pet.series_uid == pet_uid and "PET chosen by --series" in forced.log[-1]
    assert choose_series(study, [ct_uid]).log[1].startswith("CT chosen by --series")
    no_ct = StudyInput(study.patient_id, study.study_uid, tuple(s for s in study.series if s.modality != "CT"))
    with pytest.raises(SelectionError, match=r"no axial chest CT series to segment \(PT #3 .*: not CT\)"):
        choose_series(no_ct)
    few = dataclasses.replace(default.ct, files=default.ct.files[:3])
    with pytest.raises(SelectionError, match="fewer than 10 slices"):
        choose_series(StudyInput(study.patient_id, study.study_uid, (few,)))
    seg_like = dataclasses.replace(default.ct, series_uid="1.2.9", modality="SEG", is_image=False)
    with pytest.raises(SelectionError, match="--series 1.2.9 is SEG .* not a CT or PET image series"):
        choose_series(StudyInput(study.patient_id, study.study_uid, (*study.series, seg_like)), ["1.2.9"])


# --- the cohort ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def first_run(cohort, model, tmp_path_factory) -> tuple[Path, int]:
    out = tmp_path_factory.mktemp("run1") / "out"
    code = batch(str(cohort), "--out", str(out), "--model", str(model))
    return out, code


def test_cohort_outputs_and_failure(first_run, cohort):
    out, code = first_run
    assert code == 1  # exit code = number of failed studies
    failures = failures_of(out)
    assert len(failures) == 1 and failures[0]["patient_id"] == f"OQI-PHANTOM-{BROKEN_SEED}"
    assert "missing slice" in failures[0]["reason"] and "CT series" in failures[0]["reason"]
    broken = out / failures[0]["folder"]
    assert not (broken / DONE_NAME).exists() and "FAILED: " in (broken / LOG_NAME).read_text()
    studies = study_inputs(cohort)
    assert len(studies) == len(SEEDS) == 6
    rows = read_results_csv(out / "results.csv")
    assert list(rows[0]) == list(RESULT_COLUMNS)
    assert {r["patient_id"] for r in rows} == {f"OQI-PHANTOM-{s}" for s in SEEDS[:-1]}
    for study in studies:
        folder = study_folder(out, study)
        if study.patient_id.endswith(str(BROKEN_SEED)):
            continue
        done = load_done(folder)
        assert done is not None and done["pet_series_uid"] and done["ct_series_uid"]
        for name in (QC_NAME, LABELS_NAME, "ct/seg.dcm", "ct/sr.dcm", "pet/seg.dcm", "pet/sr.dcm", "lung_mask.nrrd"):
            assert name in done["files"], name
        log = (folder / LOG_NAME).read_text()
        assert "rule: CT image series" in log and "CT chosen" in log and "PET chosen" in log
        mine = [r for r in rows if r["study_uid"] == study.study_uid]
        assert [r["lesion"] for r in mine][0] == "GTV-1" and all(r["pet_series_uid"] for r in mine)
        gtv = mine[0]
        assert float(gtv["volume_ml"]) > 0 and float(gtv["suv_max"]) > 0 and gtv["thr_method"] == "background 50"
    assert (out / "results.parquet").is_file()
    import pyarrow.parquet as pq

    table = pq.read_table(out / "results.parquet")
    assert table.num_rows == len(rows) and table.column_names == list(RESULT_COLUMNS)
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 2 and "missing slice" in html
    qc_links = [part.split("'")[0] for part in html.split("src='")[1:] if not part.startswith("data:")]
    assert len(qc_links) == len(SEEDS) - 1 and all((out / link).is_file() for link in qc_links)


def test_rerun_skips_complete_studies_redoes_failed_and_force_redoes_all(
    first_run, cohort, model, tmp_path, capsys, monkeypatch
):
    out, _ = first_run
    work = tmp_path / "out"
    shutil.copytree(out, work)
    before = {p: p.stat().st_mtime_ns for p in work.rglob("*") if p.is_file() and "OQI-PHANTOM-" in str(p)}
    capsys.readouterr()
    code = oncoqi.cli.main(["batch", str(cohort), "--out", str(work), "--model", str(model), *MIN_VOLUME])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("skipped ") == len(SEEDS) - 1 and err.count("failed ") == 1  # progress lines, one per study
    after = {p: p.stat().st_mtime_ns for p in before}
    changed = {p.parent.name for p in before if after[p] != before[p]}
    assert len(changed) == 1  # only the failed study's folder (its log) was touched
    assert rows_of(work) == rows_of(out)
    # a changed output invalidates its study
    victim = next(p for p in before if p.name == QC_NAME)
    victim.write_bytes(b"not the picture")
    assert batch(str(cohort), "--out", str(work), "--model", str(model)) == 1
    assert load_done(victim.parent) is not None and victim.read_bytes()[:4] == b"\x89PNG"
    # --force redoes a complete study (one study as input: its folder is found the same way)
    one = next(p for p in cohort.glob("site*/case*") if p.name != f"case{BROKEN_SEED}")
    marker = next(work.glob(f"OQI-PHANTOM-{one.name[4:]}/*/{DONE_NAME}"))
    stamp = marker.stat().st_mtime_ns
    assert batch(str(one), "--out", str(work), "--model", str(model)) == 0 and marker.stat().st_mtime_ns == stamp
    monkeypatch.setattr("oncoqi.batch.cohort.parquet_available", lambda: False)  # and without pyarrow: CSV only
    capsys.readouterr()
    assert batch(str(one), "--out", str(work), "--model", str(model), "--force") == 0
    assert marker.stat().st_mtime_ns != stamp and load_done(marker.parent) is not None
    assert not (work / "results.parquet").exists() and "pyarrow is not installed" in capsys.readouterr().err


def test_half_the_cohort_is_site1_with_the_corrupted_study(cohort, first_run):
    """What the worker-mode tests below rely on: their input holds the failure and two good studies."""
    assert sorted(p.name for p in (cohort / HALF).iterdir()) == [f"case{seed}" for seed in HALF_SEEDS]
    assert BROKEN_SEED in HALF_SEEDS and len(HALF_SEEDS) == 3
    assert {row[0] for row in half_rows_of(first_run[0])} == {f"OQI-PHANTOM-{s}" for s in HALF_SEEDS[:-1]}


def test_same_results_with_two_worker_processes(first_run, cohort, model, tmp_path):
    out, _ = first_run
    code = batch(str(cohort / HALF), "--out", str(tmp_path / "w2"), "--model", str(model), "--workers", "2")
    assert code == 1
    assert rows_of(tmp_path / "w2") == half_rows_of(out)
    assert failures_of(tmp_path / "w2") == failures_of(out)


def test_same_results_on_a_dask_local_cluster(first_run, cohort, model, tmp_path):
    distributed = pytest.importorskip("dask.distributed", reason="dask.distributed (the batch extra) is not installed")
    out, _ = first_run
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        code = batch(
            str(cohort / HALF),
            "--out",
            str(tmp_path / "dask"),
            "--model",
            str(model),
            "--scheduler",
            cluster.scheduler_address,
        )
    assert code == 1
    assert rows_of(tmp_path / "dask") == half_rows_of(out)
    assert failures_of(tmp_path / "dask") == failures_of(out)


def test_scheduler_without_dask_names_the_extra(cohort, model, tmp_path, monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_dask(name, *args, **kwargs):
        if name.startswith(("dask", "distributed")):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    code = batch(
        str(cohort / "site0" / f"case{SEEDS[0]}"),
        "--out",
        str(tmp_path / "o"),
        "--model",
        str(model),
        "--scheduler",
        "tcp://127.0.0.1:1",
    )
    assert code == 2 and "pip install 'oncoqi[batch]'" in capsys.readouterr().err


def test_usage_errors_exit_2(tmp_path, model, capsys, monkeypatch):
    assert batch(str(tmp_path / "absent"), "--out", str(tmp_path / "o"), "--model", str(model)) == 2
    assert "no such folder or manifest file" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert batch(str(tmp_path / "empty"), "--out", str(tmp_path / "o"), "--model", str(model)) == 2
    assert "no DICOM series found" in capsys.readouterr().err
    from oncoqi.lung import segment

    monkeypatch.setattr(segment, "default_model_path", lambda: tmp_path / "absent.onnx")
    assert batch(str(tmp_path / "empty"), "--out", str(tmp_path / "o")) == 2
    assert "no trained model" in capsys.readouterr().err
    assert MAX_EXIT_CODE == 125


# --- manifest input --------------------------------------------------------------------------


def test_manifest_input_downloads_then_processes(server, model, tmp_path, monkeypatch):
    from helpers.tcia_server import shared_catalog

    monkeypatch.setenv("ONCOQI_CACHE_DIR", str(tmp_path / "cache"))
    catalog = shared_catalog()
    ct, pt = catalog.find("CT", "PHANTOM-002"), catalog.find("PT", "PHANTOM-002")
    manifest = tmp_path / "cart.tcia"
    manifest.write_text(
        f"downloadServerUrl=https://example.org/\nmanifestVersion=3.0\nListOfSeriesToDownload=\n{ct.uid}\n{pt.uid}\n"
    )
    assert is_manifest(manifest) and not is_manifest(tmp_path)
    out = tmp_path / "out"
    result = run_cohort(
        manifest, out, StudyOptions(model=str(model)), CohortOptions(api_url=server.url, progress=False)
    )
    # the series landed in OUT/downloads/<patient>/<study>/<series>; the test server's 3-slice CT is too short
    assert (out / "downloads" / "PHANTOM-002").is_dir()
    assert [s.status for s in result.studies] == ["failed"] and result.exit_code == 1
    assert "fewer than 10 slices" in result.failures[0]["reason"] and result.failures[0]["patient_id"] == "PHANTOM-002"
    fetched = len(server.requests_to("getImageWithMD5Hash"))
    run_cohort(manifest, out, StudyOptions(model=str(model)), CohortOptions(api_url=server.url, progress=False))
    assert len(server.requests_to("getImageWithMD5Hash")) == fetched  # complete series are not fetched again


# --- the shipped model -----------------------------------------------------------------------


@pytest.mark.skipif(not default_model_path().is_file(), reason=f"no trained model at {default_model_path()} yet")
def test_shipped_model_finds_each_phantom_tumour_as_gtv1(cohort, tmp_path):
    # two studies of the cohort, one run; onnxruntime may use every core here
    cases = [cohort / f"site{n % 2}" / f"case{seed}" for n, seed in enumerate(SEEDS[:2])]
    for case in cases:
        shutil.copytree(case, tmp_path / "in" / case.name, ignore=shutil.ignore_patterns("truth"))
    result = run_cohort(tmp_path / "in", tmp_path / "out", StudyOptions(threads=None), CohortOptions(progress=False))
    assert [s.status for s in result.studies] == ["done", "done"], [s.error for s in result.studies]
    for case, study in zip(cases, result.studies):
        assert study.patient_id == f"OQI-PHANTOM-{case.name[4:]}"
        labels = read_volume_file(study.folder / LABELS_NAME).array
        truth = read_volume_file(case / "truth" / "tumor_label.nrrd").array
        assert np.logical_and(labels > 0, truth > 0).any(), f"{case.name}: no lesion on the true tumour"
        assert np.logical_and(labels == 1, truth > 0).any(), f"{case.name}: GTV-1 misses the true tumour"
        assert json.loads((study.folder / DONE_NAME).read_text())["rows"][0]["lesion"] == "GTV-1"
    assert os.path.isfile(tmp_path / "out" / "report.html")


# --- the Slicer script -----------------------------------------------------------------------


def _load_script(repo_root: Path):
    import importlib.util

    path = repo_root / "LungTumorSegmentation" / "Scripts" / "batch.py"
    spec = importlib.util.spec_from_file_location("oncoqi_slicer_batch_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_slicer_script_arguments(repo_root):
    script = _load_script(repo_root)
    args = script.parse_args(["Slicer", "--no-main-window", "--", "in", "--out", "o", "--workers", "2", "--no-mrml"])
    assert (args.input, args.out, args.workers, args.no_mrml, args.pet_method) == ("in", "o", 2, True, "background")
    assert script.parse_args(["in", "--out", "o", "--series", "1.2", "--series", "1.3"]).series == ["1.2", "1.3"]


@pytest.mark.slicer
def test_slicer_script_loads_and_measures_each_study_through_the_logics(
    slicer_module_loader, repo_root, cohort, model, tmp_path, capsys
):
    logics = {
        name: getattr(slicer_module_loader.load(name), f"{name}Logic")()
        for name in ("OncoQIQuantitativeReporting", "OncoQIPETIndiC")
    }
    script = _load_script(repo_root)
    study = cohort / "site0" / f"case{SEEDS[0]}"
    out = tmp_path / "out"
    argv = [
        "Slicer",
        "--python-script",
        "batch.py",
        "--",
        str(study),
        "--out",
        str(out),
        "--model",
        str(model),
        *MIN_VOLUME,
        "--no-progress",
    ]
    assert script.main(argv, logics) == 0
    assert slicer_module_loader.requirement_checks[0][1] == "OncoQILungTumorSegmentation batch"
    (folder,) = [p.parent for p in out.rglob(DONE_NAME)]
    saved = {p.name for p in (folder / "slicer").iterdir()}
    assert {"ct.nrrd", "lesions.seg.nrrd", "ct_measurements.tsv", "pet_indices.tsv"} <= saved
    rows = read_results_csv(out / "results.csv")
    with (folder / "slicer" / "pet_indices.tsv").open(newline="") as f:
        table = list(csv.reader(f, delimiter="\t"))
    # one row per lesion segment that covers a PET voxel centre (the header first): only lesions
    # narrower than a PET pixel (thin vessels the known-output model marks) may have none
    pet_pixel = min(float(v) for v in pydicom.dcmread(next((study / "PET").glob("*.dcm"))).PixelSpacing)
    on_pet = {row[0] for row in table[1:]}
    assert on_pet <= {r["lesion"] for r in rows} and "GTV-1" in on_pet
    assert all(float(r["perpendicular_mm"]) < pet_pixel for r in rows if r["lesion"] not in on_pet)
    assert "slicer  OQI-PHANTOM-" in capsys.readouterr().out


def _break_pet(study: Path) -> None:
    """Take the Radiopharmaceutical Information Sequence out of every PET file: no SUV can be computed."""
    for f in (study / "PET").glob("*.dcm"):
        ds = pydicom.dcmread(f)
        del ds.RadiopharmaceuticalInformationSequence
        ds.save_as(f)


def _ct_outputs(folder: Path) -> dict[str, tuple[int, bytes]]:
    """The CT part's outputs of a study folder with their modification times and contents."""
    return {name: ((folder / name).stat().st_mtime_ns, (folder / name).read_bytes()) for name in CT_OUTPUTS}


def test_a_bad_pet_keeps_the_ct_results_and_is_listed_as_a_pet_failure(
    one_study, model, first_run, tmp_path, monkeypatch
):
    """A PET whose SUV cannot be computed (no Radiopharmaceutical Information Sequence) fails only the
    PET part: the CT lesions stay in results.csv, the CT SEG and SR are written, failures.csv names the
    part and the reason, the exit code counts it. A rerun redoes only the PET part: the CT is not
    segmented again; with the PET still bad its outputs are left as they are (the study is listed
    again); with the PET fixed the PET columns are filled and the PET's evidence, which the failed
    run could not use, doubts and numbers the lesions as a run on the good PET does; --force redoes
    the whole study."""
    import oncoqi.lung.segment

    segmented: list[str] = []
    segment_ct = oncoqi.lung.segment.segment_ct

    def counted(ct, *args, **kwargs):
        segmented.append(kwargs.get("name", ""))
        return segment_ct(ct, *args, **kwargs)

    monkeypatch.setattr(oncoqi.lung.segment, "segment_ct", counted)
    study = tmp_path / "in" / "case"
    shutil.copytree(one_study, study, ignore=shutil.ignore_patterns("truth"))
    _break_pet(study)
    out = tmp_path / "out"
    assert batch(str(tmp_path / "in"), "--out", str(out), "--model", str(model)) == 1
    (failure,) = failures_of(out)
    assert failure["part"] == "pet" and "Radiopharmaceutical" in failure["reason"]
    folder = out / failure["folder"]
    assert (folder / "ct" / "seg.dcm").is_file() and (folder / "ct" / "sr.dcm").is_file()
    assert not (folder / "pet").exists() or not any((folder / "pet").iterdir())
    rows = read_results_csv(out / "results.csv")
    assert rows and rows[0]["lesion"] == "GTV-1" and float(rows[0]["volume_ml"]) > 0 and not rows[0]["suv_max"]
    assert "PET part failed" in rows[0]["warnings"]
    done = load_done(folder)
    assert done is not None and done["failed_part"] == "pet" and len(segmented) == 1
    ct_before, csv_before = _ct_outputs(folder), rows_of(out)

    # rerun with the PET still bad: taken up again, the CT part reused, the study listed again
    stamp = (folder / DONE_NAME).stat().st_mtime_ns
    assert batch(str(tmp_path / "in"), "--out", str(out), "--model", str(model)) == 1
    assert (folder / DONE_NAME).stat().st_mtime_ns != stamp  # taken up again, not skipped as complete
    assert len(segmented) == 1 and _ct_outputs(folder) == ct_before
    assert [f["part"] for f in failures_of(out)] == ["pet"] and rows_of(out) == csv_before
    assert "CT part of the earlier run reused" in (folder / LOG_NAME).read_text()

    # --force redoes the whole study, the CT segmentation too
    assert batch(str(tmp_path / "in"), "--out", str(out), "--model", str(model), "--force") == 1
    assert len(segmented) == 2 and [f["part"] for f in failures_of(out)] == ["pet"]
    ct_forced = _ct_outputs(folder)
    assert all(ct_forced[name][0] != ct_before[name][0] for name in CT_OUTPUTS)  # written again
    ct_before = ct_forced

    # the PET fixed: only the PET part runs, and the results are those of a run on the good PET
    shutil.rmtree(study / "PET")
    shutil.copytree(one_study / "PET", study / "PET")
    assert batch(str(tmp_path / "in"), "--out", str(out), "--model", str(model)) == 0
    assert len(segmented) == 2 and _ct_outputs(folder)[LUNGS_NAME] == ct_before[LUNGS_NAME]
    whole_folder = Path(first_run[0]) / folder.relative_to(out)
    for name in (LABELS_NAME, LESIONS_NAME):  # the lesions as the whole run on the good PET has them
        assert (folder / name).read_bytes() == (whole_folder / name).read_bytes(), name
    assert failures_of(out) == [] and load_done(folder)["failed_part"] == ""
    assert (folder / "pet" / "seg.dcm").is_file() and (folder / "pet" / "sr.dcm").is_file()
    rows = read_results_csv(out / "results.csv")
    assert float(rows[0]["suv_max"]) > 0 and rows[0]["thr_method"] == "background 50"
    assert all("PET part failed" not in r["warnings"] for r in rows)
    whole, _ = first_run  # the same study, with its good PET, run whole in the cohort
    assert rows_of(out) == [r for r in rows_of(whole) if r[1] == rows[0]["study_uid"]]
    assert batch(str(tmp_path / "in"), "--out", str(out), "--model", str(model)) == 0  # now complete: skipped
    assert len(segmented) == 2


def test_the_pet_is_evidence_for_gtv1_before_anything_is_written(tmp_path, monkeypatch):
    """A large lesion on tissue without uptake is doubted with the PET; the smaller FDG-avid tumour becomes GTV-1.

    The PET is read once: the PET part that measures the lesions afterwards gets the same reading.
    """
    from types import SimpleNamespace

    import oncoqi.pet
    from oncoqi.batch.study import _pet_evidence, _StudyPet
    from oncoqi.dicom.scan import scan_series
    from oncoqi.lung.measure import measure_lesions

    phantom = make_petct(_options(11))
    write_study(phantom, tmp_path / "study")
    pet_series = next(s for s in scan_series(tmp_path / "study").series if s.modality == "PT")
    tumour = phantom.tumour_label.array == 1
    labels = np.zeros(tumour.shape, np.uint8)
    labels[tumour] = 2
    k = int(np.argwhere(tumour)[:, 0].mean())
    labels[k - 3 : k + 4, 0:12, 0:12] = 1  # a compact block in the air by the body: large, and no uptake
    image = phantom.ct.with_array(labels)
    lesions = measure_lesions(image, phantom.ct)
    assert lesions[0].volume_ml > lesions[1].volume_ml
    seg = SimpleNamespace(labels=image, lesions=lesions)
    said = []
    reads = []
    load = oncoqi.pet.load_pet_series
    monkeypatch.setattr(oncoqi.pet, "load_pet_series", lambda series: reads.append(series) or load(series))
    pet = _StudyPet(pet_series)
    _pet_evidence(seg, pet, said.append)
    assert pet.suv()[0] is pet.suv()[0] and reads == [pet_series]
    assert seg.lesions[0].volume_ml == pytest.approx(lesions[1].volume_ml) and seg.lesions[0].doubts == ()
    assert seg.lesions[1].doubts and seg.lesions[1].doubts[-1].startswith("not FDG-avid (SUVmax ")
    np.testing.assert_array_equal(seg.labels.array == 1, tumour)
    assert any(line.startswith("GTV-1 is now the") and "not FDG-avid (SUVmax" in line for line in said), said
