"""The benchmarks' ``--markdown FILE`` option, which writes the pages of ``Docs/validation/``.

Each script's ``markdown`` function is run on a small made-up result (no measurement), and one
script, ``bench_metrics.py``, is run end to end through its command line on one small case, so that
neither the tables nor the option can break without a test failing. About 2 s in all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import (
    bench_lung_click,
    bench_lung_fresh,
    bench_lung_isolation,
    bench_lung_segmentation,
    bench_metrics,
    bench_pet_indices,
    bench_seg_export,
)
from oncoqi.atomic import write_text


def tables(text: str) -> list[list[str]]:
    """The Markdown tables of ``text`` (runs of lines starting with ``|``), each checked to be well formed."""
    found: list[list[str]] = []
    previous_in_table = False
    for line in text.splitlines():
        in_table = line.startswith("|")
        if in_table and not previous_in_table:
            found.append([])
        if in_table:
            found[-1].append(line)
        previous_in_table = in_table
    for table in found:
        assert len(table) >= 3, f"a table needs a header, a separator and a row: {table}"
        assert set(table[1].replace("|", "")) == {"-"}, f"second line is not a separator: {table[1]}"
        widths = {line.count("|") for line in table}
        assert len(widths) == 1, f"rows with different numbers of cells: {table}"
    return found


def check_page(text: str, script: str, argv: list[str]) -> list[list[str]]:
    """What every generated page holds: the title, the provenance with the exact command, tables."""
    assert text.startswith("# ") and text.endswith("\n")
    assert f"`Testing/benchmarks/{script} --markdown`" in text
    assert "CPUs available" in text and " UTC on " in text
    assert f"Testing/benchmarks/{script} {' '.join(argv)}".rstrip() in text
    return tables(text)


def test_lung_isolation_page(tmp_path: Path) -> None:
    argv = ["--seeds", "1", "--markdown", "x.md"]
    row = {
        "size": [256, 256, 100],
        "dice": 0.9712,
        "dice_right": 0.97,
        "dice_left": 0.9721,
        "volume_ml": 4012.5,
        "truth_volume_ml": 4020.1,
        "seconds": 1.234,
    }
    rows = [dict(row, case="phantom-1000"), dict(row, case="phantom-512", size=[512, 512, 150], seconds=5.5)]
    summary = {
        "phantoms": 1,
        "phantom_dice_min": 0.9712,
        "phantom_dice_median": 0.9712,
        "phantom_seconds_median": 1.23,
        "full_size_seconds": {"phantom-512": 5.5},
        "lung1_dice": None,
        "threads": 1,
    }
    text = bench_lung_isolation.markdown(
        rows, summary, bench_lung_isolation.provenance(bench_lung_isolation.__file__, argv)
    )
    written = write_text(text, tmp_path / "validation" / "lung-isolation.md").read_text(encoding="utf-8")
    assert written == text
    measures, cases = check_page(text, "bench_lung_isolation.py", argv)
    assert "| phantom-512 time (512 x 512) | 5.50 s | < 15 s |" in measures
    assert "| LUNG1-001 Dice | - | >= 0.95 |" in measures
    assert [line.split("|")[1].strip() for line in cases[2:]] == ["phantom-1000", "phantom-512"]
    assert "**All bars met.**" in text and "LUNG1-001 was skipped" in text
    rows[0]["dice"], summary["full_size_seconds"]["phantom-512"] = 0.9, 15.0
    failed = bench_lung_isolation.markdown(rows, summary, ["run info"])
    assert "**Bars missed: Dice below 0.95: phantom-1000; 15 s or more: phantom-512.**" in failed


def test_pet_indices_page() -> None:
    out = {
        "shape_kji": [300, 200, 200],
        "spacing_ijk_mm": [3.5, 3.5, 3.0],
        "lesion_voxels": 2721,
        "lesion_ml": 100.0,
        "ours_cold_s": 0.1,
        "ours_s": 0.07,
        "naive_s": 0.63,
        "naive_over_ours": 9.0,
        "load_nrrd_s": 0.05,
        "max_abs_difference": 1.1e-12,
    }
    indices = [
        {"index": "suv_mean", "ours": 7.5, "naive": 7.5, "abs_diff": 0.0},
        {"index": "tlg", "ours": 750.25, "naive": 750.25, "abs_diff": 1.1e-12},
    ]
    text = bench_pet_indices.markdown(
        out, indices, 1, bench_pet_indices.provenance(bench_pet_indices.__file__, ["--repeat", "1"])
    )
    timing, values = check_page(text, "bench_pet_indices.py", ["--repeat", "1"])
    assert "| OncoQI `compute_indices` | 0.070 s | 9.0 | < 2 s |" in timing
    assert len(values) == 2 + len(indices) and "| tlg | 750.25 | 750.25 | 1.1e-12 |" in values
    assert "200 x 200 x 300 SUV volume" in text and "**Bar met.**" in text


@pytest.mark.parametrize("with_dcmqi", [True, False])
def test_seg_export_page(with_dcmqi: bool) -> None:
    result: dict[str, object] = {
        "shape_kji": [200, 512, 512],
        "segments": 3,
        "oncoqi_first_write_s": 1.5,
        "oncoqi_write_median_s": 0.8,
        "oncoqi_read_median_s": 2.5,
        "oncoqi_read_without_source_median_s": 0.15,
        "oncoqi_frames": 163,
        "oncoqi_bytes": 1_100_000,
        "read_back_identical": True,
    }
    if with_dcmqi:
        result.update(
            dcmqi_write_median_s=0.9,
            dcmqi_read_median_s=0.33,
            dcmqi_frames=163,
            dcmqi_bytes=1_200_000,
            write_ratio_dcmqi_over_oncoqi=1.12,
            read_ratio_dcmqi_over_oncoqi=0.13,
            identical_masks=True,
        )
    else:
        result["dcmqi"] = "itkimage2segimage/segimage2itkimage not found (pip install dcmqi)"
    text = bench_seg_export.markdown(result, 3, 2.0, bench_seg_export.provenance(bench_seg_export.__file__, []))
    timing, checks = check_page(text, "bench_seg_export.py", [])
    write = next(line for line in timing if line.startswith("| write |"))
    theirs = "0.900 s | 1.12" if with_dcmqi else "- | -"
    assert write == f"| write | 0.800 s | {theirs} | <= 2 s |"
    assert "**Above the 2 s bar.**" in text  # the read median, 2.5 s
    assert ("both SEGs hold the same masks" in text) == with_dcmqi
    assert ("dcmqi was not run" in text) != with_dcmqi
    assert "| frames | 163 |" in checks[2]


def test_metrics_markdown_option_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``bench_metrics.py --markdown`` on one 1 ml case, best of 1: the page is written, atomically."""
    pytest.importorskip("surface_distance")
    page = tmp_path / "validation" / "metrics.md"
    argv = ["--volumes", "1", "--repeat", "1", "--markdown", str(page)]
    bench_metrics.main(argv)
    assert "DM/ours" in capsys.readouterr().out  # the console table is still printed
    text = page.read_text(encoding="utf-8")
    (table,) = check_page(text, "bench_metrics.py", argv)
    assert len(table) == 3
    cells = [c.strip() for c in table[2].split("|")[1:-1]]
    assert cells[0] == "1" and all(cells[n].endswith(" s") for n in (1, 2, 4))  # OncoQI, DeepMind, whole case
    assert float(cells[6]) < 1e-6 and float(cells[8]) < 1e-6  # HD95, surface Dice: DeepMind's definitions
    assert 0.0 < float(cells[9]) < 1.0  # the DSC of a shifted, 5 % larger sphere and a blob
    assert [p.name for p in page.parent.iterdir()] == ["metrics.md"]  # no temporary file left


def test_lung_segmentation_page_names_each_false_lesion() -> None:
    summary = {
        "cases": 2,
        "cases_with_tumour": 1,
        "dsc_median": 0.9,
        "hd95_median_mm": 3.0,
        "surface_dice_median": 0.8,
        "sensitivity": 1.0,
        "specificity": 0.5,
        "auc": 0.75,
        "true_positives": 1,
        "false_positives": 1,
        "false_negatives": 0,
        "true_negatives": 1,
        "lung_dice_median": 0.99,
        "lung_dice_min": 0.98,
    }
    case = {
        "case": "phantom-1000-0",
        "slices": 40,
        "slice_mm": 2.5,
        "truth_ml": 5.0,
        "predicted_ml": 5.5,
        "lesions": 1,
        "dsc": 0.9,
        "hd95_mm": 3.0,
        "lung_dice": 0.99,
        "seconds": 4.0,
    }
    false = [{"ml": 2.51, "mean_hu": 35.0, "confidence": 0.81, "slices": 3, "in_lung": 0.12}]
    results = {
        "model": "m.onnx",
        "date": "2026-11-25",
        "machine": "2 CPUs",
        "set_seed": 1000,
        "synthetic": {"summary": summary, "cases": [case]},
        "ctchest4": {"lesions": 1, "lesion_ml": [2.51], "false": false, "seconds": 3.0},
    }
    text = bench_lung_segmentation.markdown(results)
    assert "2.51 ml, 35.0 HU, confidence 0.81, 3 slices, 12% in the lungs" in text
    assert [len(t) for t in tables(text)] == [2 + 7, 2 + 1]
    assert bench_lung_segmentation.missed_bars(results) == ["specificity"]
    assert "part-solid" not in text
    assert "20% of tumours part-solid or ground glass" in bench_lung_segmentation.markdown(dict(results, subsolid=0.2))
    assert "60-300 ml" not in text
    assert "40% of tumours drawn 60-300 ml" in bench_lung_segmentation.markdown(dict(results, large=0.4))


def test_fresh_set_markdown_and_missed_bars():
    summary = {
        "cases": 40,
        "cases_with_tumour": 33,
        "dsc_median": 0.86,
        "hd95_median_mm": 7.5,
        "sensitivity": 0.9,
        "specificity": 0.97,
        "gtv1_true": 0.97,
        "clicks": 3,
        "clicks_meeting_bar": 2,
        "click_dsc_median": 0.85,
        "click_dsc_min": 0.41,
    }
    checks = [
        {"study": "phantom ct --seed 3", "lesions": 1, "gtv1_on_tumour": False, "gtv1_ml": 2.1, "gtv1_doubts": []}
    ]
    results = {
        "provenance": ["Run on a test machine."],
        "model": "m.onnx",
        "fresh": {"summary": summary},
        "checks": checks,
    }
    text = bench_lung_fresh.markdown(results)
    summary_table, checks_table = tables(text)
    assert "| GTV-1 on a true tumour | 0.970 | >= 0.95 |" in summary_table
    assert "| one click per missed tumour: DSC >= 0.8 | 2 of 3; median 0.850 (min 0.410) | all |" in summary_table
    assert checks_table[2] == "| `oncoqi phantom ct --seed 3` | 1 | False | 2.1 | - |"
    missed = bench_lung_fresh.missed_bars(summary)
    assert missed == [
        "hd95_median_mm 7.500 (bar 5.0)",
        "sensitivity 0.900 (bar 0.95)",
        "clicks with DSC >= 0.8: 2 of 3",
    ]


def test_click_page_summarises_each_mode_and_click_and_lists_every_click() -> None:
    argv = ["--groups", "hard", "--markdown", "x.md"]
    row = {
        "case": "hard-778-0",
        "tumour": 1,
        "mode": "missed",
        "click": "centre",
        "truth_ml": 10.07,
        "added_ml": 11.2,
        "where": "mediastinum",
        "shape": "spiculated",
        "method": "ct",
        "dsc": 0.9,
        "seconds": 0.21,
    }
    rows = [
        row,
        dict(row, click="off", dsc=0.5, seconds=0.4),
        dict(row, mode="blind", dsc=0.85),
        dict(row, mode="blind", case="hard-778-2", dsc=0.75),
    ]
    text = bench_lung_click.markdown(rows, bench_lung_click.provenance(bench_lung_click.__file__, argv))
    summary, clicks = check_page(text, "bench_lung_click.py", argv)
    assert summary[2] == "| missed | centre | 1 | 0.900 | 1 | hard-778-0 tumour 1 (mediastinum): 0.900 | 0.21 |"
    assert summary[4] == "| blind | centre | 2 | 0.800 | 1 | hard-778-2 tumour 1 (mediastinum): 0.750 | 0.21 |"
    assert len(clicks) == 2 + len(rows)
    assert len(tables(bench_lung_click.markdown(rows, [], every_click=False))) == 1
