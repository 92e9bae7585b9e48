"""Every writing command refuses an unusable output path at once, in one line, and changes nothing.

An output that cannot be written is found before the input is read (a lung segmentation takes a
minute, a cohort hours), so each command below is given an input that does not exist: the error
must still be about the output. Two cases per command: the output path is an existing file (or a
folder where a file is wanted), and it lies in a folder that cannot be written (``/sys``, which
even root cannot write, stands for a read-only file system).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from oncoqi.cli import main

#: Each writing command, with ``{out}`` where its output goes and ``{kind}`` the kind it must be.
COMMANDS: dict[str, tuple[list[str], str]] = {
    "lung segment --out": (["lung", "segment", "{missing}", "--out", "{out}"], "folder"),
    "lung segment --report": (["lung", "segment", "{missing}", "--out", "{good}", "--report", "{out}"], "folder"),
    "lung isolate": (["lung", "isolate", "{missing}", "--out", "{out}"], "folder"),
    "lung train": (["lung", "train", "--phantoms", "2", "--out", "{out}"], "folder"),
    "lung ensemble": (["lung", "ensemble", "{missing}", "{missing}", "--out", "{out}"], "file"),
    "lung quantize": (["lung", "quantize", "{missing}", "--out", "{out}"], "file"),
    "batch": (["batch", "{missing}", "--out", "{out}"], "folder"),
    "report write": (
        ["report", "write", "--source", "{missing}", "--labels", "{missing}", "--meta", "{missing}", "--out", "{out}"],
        "folder",
    ),
    "phantom": (["phantom", "ct", "--out", "{out}"], "folder"),
    "demo": (["demo", "--out", "{out}"], "folder"),
    "pet suv --suv-volume": (["pet", "suv", "{missing}", "--suv-volume", "{out}"], "file"),
    "pet indices --report": (
        ["pet", "indices", "--pet", "{missing}", "--labels", "{missing}", "--report", "{out}"],
        "folder",
    ),
    "pet segment": (
        ["pet", "segment", "--pet", "{missing}", "--seed", "0", "0", "0", "--method", "fixed", "--value", "2.5"]
        + ["--out", "{out}"],
        "file",
    ),
    "pet transfer": (["pet", "transfer", "--labels", "{missing}", "--pet", "{missing}", "--out", "{out}"], "file"),
    "tcia download": (["tcia", "download", "--series", "1.2.3", "--out", "{out}"], "folder"),
}


def snapshot(folder: Path) -> dict[str, tuple[int, int] | None]:
    """Every file under ``folder`` with its size and modification time, and every folder (by name: the
    write check creates and removes a probe file in the output folder, which touches its time)."""
    return {
        str(p.relative_to(folder)): None if p.is_dir() else (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
    }


def run(command: str, out: Path, tmp_path: Path, capsys) -> tuple[int, str, float]:
    argv, _ = COMMANDS[command]
    values = {"out": str(out), "missing": str(tmp_path / "no-such-input"), "good": str(tmp_path / "good")}
    start = time.perf_counter()
    code = main([a.format(**values) for a in argv])
    seconds = time.perf_counter() - start
    return code, capsys.readouterr().err, seconds


@pytest.mark.parametrize("command", COMMANDS)
def test_output_of_the_wrong_kind_is_refused_before_any_work(command: str, tmp_path: Path, capsys) -> None:
    kind = COMMANDS[command][1]
    out = tmp_path / "existing"
    if kind == "folder":
        out.write_text("a file that is not a folder\n")
    else:
        out.mkdir()
    before = snapshot(tmp_path)
    code, err, seconds = run(command, out, tmp_path, capsys)
    assert code == 2
    assert err.splitlines()[0] == f"error: {out}: is a {'file' if kind == 'folder' else 'folder'}, not a {kind}"
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert seconds < 2.0
    assert snapshot(tmp_path) == before


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux's /sys, which not even root can write")
@pytest.mark.parametrize("command", COMMANDS)
def test_output_that_cannot_be_written_is_refused_before_any_work(command: str, tmp_path: Path, capsys) -> None:
    out = Path("/sys") / "oncoqi-output" / ("result.nrrd" if COMMANDS[command][1] == "file" else "results")
    before = snapshot(tmp_path)
    code, err, seconds = run(command, out, tmp_path, capsys)
    assert code == 2
    first = err.splitlines()[0]
    shown = out.parent if COMMANDS[command][1] == "file" else out
    assert first.startswith(f"error: {shown}: cannot write there (")
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert seconds < 2.0
    assert snapshot(tmp_path) == before


def test_a_folder_below_a_file_is_refused_naming_the_file(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "report.txt"
    blocker.write_text("x")
    out = blocker / "results"
    code = main(["lung", "isolate", str(tmp_path / "missing"), "--out", str(out)])
    assert code == 2
    assert capsys.readouterr().err.strip() == f"error: {out}: cannot be created: {blocker} is a file, not a folder"


def test_a_full_disk_is_refused_before_any_work(tmp_path: Path) -> None:
    from oncoqi.atomic import check_output_folder
    from oncoqi.errors import OutputError

    with pytest.raises(OutputError, match=r"only \d+ MB free on its disk, the output needs about \d+ MB"):
        check_output_folder(tmp_path / "out", needed_bytes=1 << 62)


def test_an_os_error_during_work_is_one_line_naming_the_file(tmp_path: Path, capsys, monkeypatch) -> None:
    import oncoqi.cli

    def fail(args) -> None:
        raise PermissionError(13, "Permission denied", "/data/study/seg.dcm")

    monkeypatch.setattr(oncoqi.cli, "check_outputs", fail)
    assert main(["demo", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == "error: /data/study/seg.dcm: Permission denied\n"
    with pytest.raises(PermissionError):  # -v: the traceback, for a report
        main(["-v", "demo", "--out", str(tmp_path)])


def test_a_bug_is_one_line_saying_where_to_report_it_and_its_traceback_only_with_v(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    """An unexpected exception is our bug, not the user's input: one line (no traceback) with its type and
    message, how to get the details and where to report it; exit code 1. With -v, the traceback too."""
    import oncoqi.cli

    def bug(args) -> None:
        raise KeyError("a key the code forgot")

    monkeypatch.setattr(oncoqi.cli, "check_outputs", bug)
    assert main(["demo", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err == (
        "internal error: KeyError: 'a key the code forgot'; rerun with -v for the details and report it at "
        f"{oncoqi.cli.ISSUES_URL}\n"
    )
    assert main(["-v", "demo", "--out", str(tmp_path)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "Traceback (most recent call last):" and lines[-2] == "KeyError: 'a key the code forgot'"
    assert any("in bug" in line for line in lines)  # the frame that raised
    assert lines[-1].startswith("internal error: KeyError: 'a key the code forgot'; see the details above and report")


def test_the_issue_address_is_the_projects() -> None:
    """The address a bug report goes to is pyproject.toml's Issues URL (the package metadata is not
    there inside Slicer, so the command line holds a copy)."""
    import tomllib

    import oncoqi.cli
    from conftest import REPO_ROOT

    urls = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["urls"]
    assert oncoqi.cli.ISSUES_URL == urls["Issues"] == urls["Homepage"] + "/issues"


def test_the_temporary_file_cleanup_never_hides_the_write_error(tmp_path: Path, monkeypatch) -> None:
    """A write that fails where the temporary file cannot be removed either (a read-only or vanished
    folder) raises the write's own error, not the cleanup's."""
    from oncoqi.atomic import atomic_path

    def cannot_unlink(self, missing_ok=False) -> None:
        raise OSError(30, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "unlink", cannot_unlink)
    with pytest.raises(ValueError, match="the write failed"), atomic_path(tmp_path / "out.nrrd"):
        raise ValueError("the write failed")


#: Each writing command with the result it finds already there: ``(argv, folder or file planted, name)``.
EXISTING: dict[str, tuple[list[str], str]] = {
    "lung segment --out": (["lung", "segment", "{missing}", "--out", "{out}"], "tumor_label.nrrd"),
    "lung segment --report": (["lung", "segment", "{missing}", "--out", "{good}", "--report", "{out}"], "sr.dcm"),
    "lung isolate": (["lung", "isolate", "{missing}", "--out", "{out}"], "lung_mask.nrrd"),
    "pet indices --report": (
        ["pet", "indices", "--pet", "{missing}", "--labels", "{missing}", "--report", "{out}"],
        "seg.dcm",
    ),
    "phantom": (["phantom", "ct", "--out", "{out}"], "CT"),
    "pet suv --suv-volume": (["pet", "suv", "{missing}", "--suv-volume", "{out}/suv.nrrd"], "suv.nrrd"),
    "pet segment": (
        ["pet", "segment", "--pet", "{missing}", "--seed", "0", "0", "0", "--method", "fixed", "--value", "2.5"]
        + ["--out", "{out}/lesion.nrrd"],
        "lesion.nrrd",
    ),
    "pet transfer": (
        ["pet", "transfer", "--labels", "{missing}", "--pet", "{missing}", "--out", "{out}/l.nrrd"],
        "l.nrrd",
    ),
    "lung ensemble": (["lung", "ensemble", "{missing}", "{missing}", "--out", "{out}/e.onnx"], "e.onnx"),
    "lung quantize": (["lung", "quantize", "{missing}", "--out", "{out}/q.onnx"], "q.onnx"),
}


@pytest.mark.parametrize("command", EXISTING)
def test_an_existing_result_is_not_replaced_without_force(command: str, tmp_path: Path, capsys) -> None:
    argv, name = EXISTING[command]
    out = tmp_path / "results"
    out.mkdir()
    planted = out / name
    if name == "CT":
        planted.mkdir()
        (planted / "1.dcm").write_bytes(b"a study written earlier")
    else:
        planted.write_bytes(b"a result written earlier")
    before = snapshot(tmp_path)
    values = {"out": str(out), "missing": str(tmp_path / "no-such-input"), "good": str(tmp_path / "good")}
    start = time.perf_counter()
    code = main([a.format(**values) for a in argv])
    seconds = time.perf_counter() - start
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"error: {planted}: already exists" if "." in name and "/" in argv[-1] else f"error: {out}: ")
    assert "not replaced" in err and err.rstrip().endswith("on the command line: --force")
    assert seconds < 2.0
    assert snapshot(tmp_path) == before


def test_a_folder_with_another_cases_results_is_refused_naming_them(tmp_path: Path, capsys) -> None:
    from oncoqi.atomic import write_run_record

    out = tmp_path / "case-A"
    out.mkdir()
    write_run_record(out, "lung segment", str(tmp_path / "case-A-ct"))
    before = snapshot(tmp_path)
    code = main(["lung", "isolate", str(tmp_path / "case-B-ct"), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: {out}: holds the results of `oncoqi lung segment` on {tmp_path / 'case-A-ct'} (")
    assert "another input; not replaced" in err
    assert snapshot(tmp_path) == before


def test_force_replaces_the_old_results_as_a_whole(tmp_path: Path) -> None:
    """With --force the old result files go before the work starts: none of them can survive beside
    the new ones, even where the new run writes fewer files."""
    from oncoqi.atomic import check_existing_results, remove_results

    out = tmp_path / "results"
    out.mkdir()
    for name in ("lung_mask.nrrd", "lung_qc.png"):
        (out / name).write_bytes(b"old")
    (out / "notes.txt").write_text("the user's own file")
    replaced = check_existing_results(out, ("lung_mask.nrrd", "lung_qc.png", "lungs.json"), force=True)
    assert sorted(p.name for p in replaced) == ["lung_mask.nrrd", "lung_qc.png"]
    remove_results(replaced)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_batch_into_another_cohorts_folder_is_refused(tmp_path: Path, capsys) -> None:
    from oncoqi.atomic import write_run_record

    out = tmp_path / "cohort-A-results"
    out.mkdir()
    (out / "results.csv").write_text("patient_id,lesion\nA-001,GTV-1\n")
    write_run_record(out, "batch", str(tmp_path / "cohort-A"))
    (tmp_path / "cohort-B").mkdir()
    before = snapshot(tmp_path)
    assert main(["batch", str(tmp_path / "cohort-B"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {out}: holds the results of `oncoqi batch` on {tmp_path / 'cohort-A'} (")
    assert snapshot(tmp_path) == before
