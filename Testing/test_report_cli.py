"""``oncoqi report write|read`` end to end on a synthetic thorax CT with a known tumour.

The phantom (:mod:`oncoqi.phantom`) writes a CT series and its tumour label with the exact
volume in ``truth.json``; the command line turns them into ``seg.dcm`` + ``sr.dcm``, reads them
back, exports the labels and metadata, and writes them again from the export.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from helpers.sr_validator import pixelmed_findings
from oncoqi import cli
from oncoqi.atomic import RUN_RECORD, read_run_record
from oncoqi.dicom import read_image
from oncoqi.phantom import PhantomOptions, TumourSpec, make_ct, write_study
from oncoqi.report import read_report

META = {
    "series_description": "Phantom tumour",
    "segments": [
        {
            "label": "GTV",
            "category": "morphologically_abnormal_structure",
            "type": "primary_neoplasm",
            "anatomic_region": "lung",
            "algorithm": {"type": "MANUAL"},
            "tracking_id": "lesion 1",
        }
    ],
}


def run(monkeypatch: pytest.MonkeyPatch, *argv: str) -> tuple[int, str, str]:
    """Run ``oncoqi`` with the report command registered; return (exit code, stdout, stderr)."""
    if "oncoqi.report.cli" not in cli.COMMAND_MODULES:
        monkeypatch.setattr(cli, "COMMAND_MODULES", (*cli.COMMAND_MODULES, "oncoqi.report.cli"))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("report")
    options = PhantomOptions(
        seed=4, size=64, slices=20, slice_thickness_mm=5.0, tumours=(TumourSpec(volume_ml=15, location="parenchyma"),)
    )
    result = make_ct(options)
    write_study(result, root / "study")
    (root / "meta.json").write_text(json.dumps(META), encoding="utf-8")
    return {"root": root, "truth": result.truth, "label": result.tumour_label}


def test_write_then_read_both_files(study, monkeypatch):
    root = study["root"]
    code, out, err = run(
        monkeypatch,
        "report",
        "write",
        "--source",
        str(root / "study" / "CT"),
        "--labels",
        str(root / "study" / "truth" / "tumor_label.nrrd"),
        "--meta",
        str(root / "meta.json"),
        "--out",
        str(root / "out"),
    )
    assert code == 0, err
    assert "seg.dcm\tSEG\t1 segments" in out and "sr.dcm\tSR\t1 measurement groups, 5 measurements" in out
    assert pixelmed_findings(root / "out" / "sr.dcm") == ([], [])  # the TID 1500 templates, checked by pixelmed

    code, out, err = run(monkeypatch, "report", "read", str(root / "out" / "sr.dcm"), "--json")
    assert code == 0, err
    report = json.loads(out)
    volume = next(m for m in report["measurements"] if m["quantity_code"] == "118565006 SCT")
    assert volume["value"] == pytest.approx(study["truth"]["tumours"][0]["volume_ml"], rel=1e-9)
    assert (volume["tracking_id"], volume["finding"], volume["finding_site"]) == (
        "lesion 1",
        "Neoplasm, Primary",
        "Lung",
    )
    mean = next(m for m in report["measurements"] if m["derivation_code"] == "373098007 SCT")
    ct = read_image(root / "study" / "CT")
    assert mean["unit"] == "[hnsf'U]"
    assert mean["value"] == pytest.approx(ct.array[study["label"].array == 1].mean(), rel=1e-12)

    code, out, err = run(monkeypatch, "report", "read", str(root / "out" / "seg.dcm"))
    assert code == 0, err
    number, label, kind, voxels, volume_text = out.strip().split("\t")
    assert (number, label) == ("1", "GTV")
    assert int(voxels.split()[0]) == int((study["label"].array == 1).sum())


def test_tsv_table_of_an_sr(study, monkeypatch):
    code, out, _ = run(monkeypatch, "report", "read", str(study["root"] / "out" / "sr.dcm"))
    assert code == 0
    header, *rows = out.strip().splitlines()
    assert header.split("\t")[0] == "tracking_id" and len(rows) == 5
    assert {r.split("\t")[0] for r in rows} == {"lesion 1"}


def test_exported_labels_and_metadata_write_the_same_seg_again(study, monkeypatch):
    root = study["root"]
    code, _, err = run(
        monkeypatch,
        "report",
        "read",
        str(root / "out" / "seg.dcm"),
        "--source",
        str(root / "study" / "CT"),
        "--export",
        str(root / "export"),
    )
    assert code == 0, err
    exported = json.loads((root / "export" / "meta.json").read_text())
    assert exported["segments"][0]["tracking_id"] == "lesion 1"
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(root / "export" / "labels-0.nrrd")))
    np.testing.assert_array_equal(label == 1, study["label"].array == 1)
    code, _, err = run(
        monkeypatch,
        "report",
        "write",
        "--source",
        str(root / "study" / "CT"),
        "--labels",
        str(root / "export" / "labels-0.nrrd"),
        "--meta",
        str(root / "export" / "meta.json"),
        "--out",
        str(root / "again"),
    )
    assert code == 0, err
    code, first, _ = run(monkeypatch, "report", "read", str(root / "out" / "seg.dcm"), "--json")
    code, second, _ = run(monkeypatch, "report", "read", str(root / "again" / "seg.dcm"), "--json")
    a, b = json.loads(first)["metadata"]["segments"][0], json.loads(second)["metadata"]["segments"][0]
    assert a["voxels"] == b["voxels"] and a["tracking_uid"] == b["tracking_uid"] and a["type"] == b["type"]


def files_under(folder: Path) -> set[Path]:
    """Every file below ``folder`` (hidden temporary files included); empty when it is absent."""
    return {p for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def test_user_errors_exit_2_with_one_message_and_write_nothing(study, monkeypatch, tmp_path):
    root = study["root"]
    empty = sitk.Image(sitk.ReadImage(str(root / "study" / "truth" / "tumor_label.nrrd")) * 0)
    sitk.WriteImage(empty, str(tmp_path / "empty.nrrd"))
    label = str(root / "study" / "truth" / "tumor_label.nrrd")
    shifted = sitk.ReadImage(label)
    shifted.SetOrigin([o + 0.5 * s for o, s in zip(shifted.GetOrigin(), shifted.GetSpacing(), strict=True)])
    sitk.WriteImage(shifted, str(tmp_path / "shifted.nrrd"))
    # a group naming no segment: the SEG builds, the SR does not, and the SEG must not be left behind
    (tmp_path / "bad-groups.json").write_text(json.dumps({"groups": [{"segment": "no such lesion"}]}))
    cases = [
        (
            ["--labels", str(tmp_path / "empty.nrrd"), "--meta", str(root / "meta.json")],
            "empty.nrrd): the label file has no labelled voxel",
        ),
        (["--labels", label, "--meta", str(tmp_path / "none.json")], "no such metadata file"),
        (
            ["--labels", str(tmp_path / "shifted.nrrd"), "--meta", str(root / "meta.json")],
            "the label grid does not match the source series",
        ),
        (
            ["--labels", str(root / "study" / "truth" / "lung_mask.nrrd"), "--meta", str(root / "meta.json")],
            "not described by any segment",
        ),
        (
            ["--labels", label, "--meta", str(root / "meta.json"), "--measurements", str(tmp_path / "bad-groups.json")],
            "matches no segment of the SEG",
        ),
    ]
    ct = str(root / "study" / "CT")
    cases = [(["--source", ct, *extra], message) for extra, message in cases]
    cases.append(
        (
            ["--source", str(root / "study" / "truth"), "--labels", label, "--meta", str(root / "meta.json")],
            "the source must be one image series, found 0",
        )
    )
    for extra, message in cases:
        code, _, err = run(monkeypatch, "report", "write", "--out", str(tmp_path / "out"), *extra)
        assert code == 2 and message in err and err.startswith("error: ") and "Traceback" not in err, err
        assert files_under(tmp_path / "out") == set(), message
    code, _, err = run(monkeypatch, "report", "read", str(root / "study" / "truth" / "truth.json"))
    assert code == 2 and "not a readable DICOM file" in err
    code, _, err = run(monkeypatch, "report", "read", str(root / "out" / "sr.dcm"), "--export", str(tmp_path / "x"))
    assert code == 2 and "this file is an SR" in err
    assert files_under(tmp_path / "x") == set()
    ct_file = next(Path(root / "study" / "CT").iterdir())
    code, _, err = run(monkeypatch, "report", "read", str(ct_file))
    assert code == 2 and "neither a DICOM Segmentation nor a Structured Report" in err


@pytest.mark.parametrize("existing", ["seg.dcm", "sr.dcm"])
def test_existing_output_is_kept_without_force_and_replaced_with_it(study, monkeypatch, tmp_path, existing):
    root = study["root"]
    out = tmp_path / "out"
    out.mkdir()
    (out / existing).write_bytes(b"a reader's earlier report")
    argv = [
        "report",
        "write",
        "--source",
        str(root / "study" / "CT"),
        "--out",
        str(out),
        "--labels",
        str(root / "study" / "truth" / "tumor_label.nrrd"),
        "--meta",
        str(root / "meta.json"),
    ]
    code, _, err = run(monkeypatch, *argv)
    assert code == 2 and f"{out / existing}: already exists" in err and "--force" in err, err
    assert files_under(out) == {out / existing}
    assert (out / existing).read_bytes() == b"a reader's earlier report"

    code, _, err = run(monkeypatch, *argv, "--force")
    assert code == 0, err
    assert files_under(out) == {out / "seg.dcm", out / "sr.dcm", out / RUN_RECORD}  # the record names the run
    assert read_run_record(out)["command"] == "report write"
    assert read_report(out / "seg.dcm").voxel_counts() == {1: int((study["label"].array == 1).sum())}
