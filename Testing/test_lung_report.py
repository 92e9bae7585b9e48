"""Lung lesions to DICOM SEG + SR: codes, measurements read back, dciodvfy clean."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from oncoqi.dicom import read_image
from oncoqi.dicom.seg import read_segmentation
from oncoqi.dicom.sr import read_measurement_report
from oncoqi.errors import InputError
from oncoqi.lung.measure import measure_lesions
from oncoqi.phantom import PhantomOptions, TumourSpec, make_ct, write_study
from oncoqi.report.lung import write_lesion_report


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("lungreport")
    opts = PhantomOptions(
        seed=5,
        size=96,
        slices=30,
        slice_thickness_mm=5.0,
        tumours=(TumourSpec(volume_ml=15.0), TumourSpec(volume_ml=3.0)),
    )
    write_study(make_ct(opts), out)
    return out


def test_lesion_report_codes_and_values(study, tmp_path):
    ct = read_image(study / "CT")
    labels = read_image(study / "truth" / "tumor_label.nrrd")
    lesions = measure_lesions(labels, ct)
    written = write_lesion_report(study / "CT", labels, lesions, tmp_path)
    seg = read_segmentation(written.seg_path)
    names = [s.label for s in seg.metadata.segments]
    assert names == ["GTV-1", "Lesion 2"]
    assert seg.metadata.segments[0].type.value == "86049000"
    assert seg.metadata.segments[1].anatomic_region.value == "39607008"
    assert [s.algorithm_type for s in seg.metadata.segments] == ["AUTOMATIC", "AUTOMATIC"]
    rows = read_measurement_report(written.sr_path).rows()
    long_axis = [r for r in rows if r["quantity_code"] == "103339001 SCT"]
    assert len(long_axis) == 2
    assert long_axis[0]["value"] == pytest.approx(lesions[0].recist_mm, rel=1e-6)
    volumes = [r["value"] for r in rows if r["quantity_code"] == "118565006 SCT"]
    assert volumes == pytest.approx([lesions[0].volume_ml, lesions[1].volume_ml], rel=1e-6)
    assert {r["tracking_id"] for r in rows} == {"GTV-1", "Lesion 2"}
    assert any(r["unit"] == "[hnsf'U]" for r in rows)  # CT statistics computed from the source
    if shutil.which("dciodvfy"):
        for path in (written.seg_path, written.sr_path):
            out = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True).stderr
            assert not [line for line in out.splitlines() if line.startswith("Error")], out
    with pytest.raises(InputError, match="seg.dcm"):
        write_lesion_report(study / "CT", labels, lesions, tmp_path)


def test_empty_result_is_refused(study, tmp_path):
    labels = read_image(study / "truth" / "tumor_label.nrrd")
    with pytest.raises(InputError, match="no lesion"):
        write_lesion_report(study / "CT", labels, [], tmp_path)
    assert not any(tmp_path.iterdir())


def test_a_lesion_added_at_a_point_is_semiautomatic_in_the_seg(study, tmp_path):
    from dataclasses import replace

    labels = read_image(study / "truth" / "tumor_label.nrrd")
    lesions = measure_lesions(labels, read_image(study / "CT"))
    lesions[1] = replace(lesions[1], source="point")
    seg = read_segmentation(write_lesion_report(study / "CT", labels, lesions, tmp_path).seg_path)
    assert [s.algorithm_type for s in seg.metadata.segments] == ["AUTOMATIC", "SEMIAUTOMATIC"]
