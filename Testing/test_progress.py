"""Progress per stage (:mod:`oncoqi.progress`): the core's reports, ``lung segment``, ``batch`` and ``demo`` on a terminal.

The core reports stages to a reporter and never prints; the command line shows them on stderr only
when it is a terminal and ``--quiet`` is not given. A terminal is faked in two ways: a text stream
whose ``isatty()`` says yes, in this process, and a real pseudo-terminal (``os.openpty``) as the
stderr of ``python -m oncoqi``, which is what a user's shell gives.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import SimpleITK as sitk

import oncoqi.cli
from helpers.lung import small_identity_model
from oncoqi.phantom import PhantomOptions, TumourSpec, make_ct, make_petct, write_study
from oncoqi.progress import STAGES, Relay, Reporter, Terminal, for_terminal, stages_of

#: What ``lung segment`` goes through; the batch adds the PET part and writes again after it.
SEGMENT_STAGES = ["read", "lungs", "network", "lesions", "write"]
STUDY_STAGES = ["read", "lungs", "network", "lesions", "write", "pet", "write"]


class Recorder(Reporter):
    """Every call, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def stage(self, name: str) -> None:
        super().stage(name)
        self.calls.append(("stage", name))

    def fraction(self, value: float) -> None:
        self.calls.append(("fraction", (self.current, value)))

    def stages(self) -> list[str]:
        return [name for kind, name in self.calls if kind == "stage"]


class FakeTTY(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def changes(names: list[str]) -> list[str]:
    """``names`` without repeats in a row (the stages as reported through ``(stage, fraction)`` pairs)."""
    return [name for n, name in enumerate(names) if n == 0 or names[n - 1] != name]


def lines_of(text: str) -> list[str]:
    """What a terminal finally shows: each line as its last ``\\r`` redraw left it."""
    return [line.rsplit("\r", 1)[-1] for line in text.split("\n") if line.strip("\r")]


# --- the reporter -------------------------------------------------------------------------------


def test_terminal_draws_one_line_per_stage_with_its_seconds_and_the_fraction_in_place():
    now = [0.0]
    stream = FakeTTY()
    with Terminal(stream, prefix="  ", clock=lambda: now[0]) as stages:
        stages.stage("read")
        now[0] = 1.3
        stages.stage("network")
        stages(0, 8)  # the network's callback, at once: not redrawn
        now[0] = 1.35
        stages(2, 8)  # within the redraw interval: not redrawn
        now[0] = 2.1
        stages(4, 8)
        now[0] = 2.2
        stages(8, 8)  # the end of a stage is always drawn
        now[0] = 3.5
    text = stream.getvalue()
    assert lines_of(text) == ["  read            1.3 s", "  network         2.2 s"]
    redraws = text.split("\n")[1].split("\r")[1:]
    assert redraws == [
        "  network         0.0 s",
        "  network  50%    0.8 s",
        "  network 100%    0.9 s",
        "  network         2.2 s",
    ]


def test_relay_hands_on_stage_and_fraction_and_update_turns_them_back_into_stages():
    relayed: list[tuple[str, float]] = []
    relay = Relay(lambda stage, fraction: relayed.append((stage, fraction)))
    relay.fraction(0.5)  # before any stage: nothing to say
    relay.stage("lungs")
    relay.stage("network")
    relay(3, 4)
    assert relayed == [("lungs", 0.0), ("network", 0.0), ("network", 0.75)]
    recorder = Recorder()
    for stage, fraction in relayed:
        recorder.update(stage, fraction)
    assert recorder.calls == [("stage", "lungs"), ("stage", "network"), ("fraction", ("network", 0.75))]


def test_only_a_terminal_gets_lines_and_quiet_silences_it():
    assert isinstance(for_terminal(FakeTTY()), Terminal)
    for stream, quiet in ((FakeTTY(), True), (io.StringIO(), False)):
        reporter = for_terminal(stream, quiet=quiet)
        assert type(reporter) is Reporter
        with reporter:
            reporter.stage("read")
            reporter(1, 2)
        assert stream.getvalue() == ""
    callback = [].append
    assert type(stages_of(callback)) is Reporter and stages_of(None) is not stages_of(None)
    assert stages_of(reporter) is reporter


# --- lung segment -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_ct(tmp_path_factory) -> tuple[Path, Path]:
    """The phantom CT of ``oncoqi phantom ct --seed 3 --size 128 --slices 40`` as one file, and the known-output model."""
    folder = tmp_path_factory.mktemp("progress")
    volume = folder / "ct.nrrd"
    sitk.WriteImage(make_ct(PhantomOptions(seed=3, size=128, slices=40, slice_thickness_mm=5.0)).ct.to_sitk(), volume)
    return volume, small_identity_model(folder / "id.onnx")


def test_segment_ct_reports_its_stages_in_order_and_the_network_slices(small_ct):
    from oncoqi.dicom import read_image
    from oncoqi.lung.segment import segment_ct

    volume, model = small_ct
    recorder = Recorder()
    result = segment_ct(read_image(volume), model, threads=1, progress=recorder)
    assert recorder.stages() == ["lungs", "network", "lesions"]
    fractions = [value for kind, value in recorder.calls if kind == "fraction"]
    assert fractions and {stage for stage, _ in fractions} == {"network"}
    shares = [share for _, share in fractions]
    assert shares == sorted(shares) and shares[0] == 0.0 and shares[-1] == 1.0
    assert len(shares) == 1 + -(-len(result.slices_run) // 2)  # progress(0, n), then one per batch of 2 slices


def _segment(small_ct, out: Path, *extra: str) -> list[str]:
    volume, model = small_ct
    return ["lung", "segment", str(volume), "--out", str(out), "--model", str(model), "--threads", "1", *extra]


def test_segment_prints_each_stage_on_a_terminal_and_nothing_when_quiet(small_ct, tmp_path, monkeypatch, capsys):
    tty = FakeTTY()
    monkeypatch.setattr(sys, "stderr", tty)
    assert oncoqi.cli.main(_segment(small_ct, tmp_path / "a")) == 0
    shown = lines_of(tty.getvalue())
    assert [line.split()[0] for line in shown] == SEGMENT_STAGES
    assert all(line.endswith(" s") for line in shown)
    assert " lesion(s)" in capsys.readouterr().out  # the results stay on stdout
    quiet = FakeTTY()
    monkeypatch.setattr(sys, "stderr", quiet)
    assert oncoqi.cli.main(_segment(small_ct, tmp_path / "b", "--quiet")) == 0
    assert quiet.getvalue() == ""
    monkeypatch.undo()
    assert oncoqi.cli.main(_segment(small_ct, tmp_path / "c")) == 0
    assert capsys.readouterr().err == ""  # pytest's stderr is no terminal


def test_segment_on_a_real_pseudo_terminal_and_a_pipe(small_ct, tmp_path):
    """The command as a shell runs it: stage lines on a terminal's stderr, none into a pipe."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(oncoqi.cli.__file__).parents[1]), *sys.path])}
    command = [sys.executable, "-m", "oncoqi", *_segment(small_ct, tmp_path / "tty")]
    primary, secondary = os.openpty()
    try:
        run = subprocess.run(command, stdout=subprocess.PIPE, stderr=secondary, env=env, timeout=300)
        os.close(secondary)
        shown = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # Linux: the terminal's other end is closed, all was read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(primary)
    assert run.returncode == 0 and b" lesion(s)" in run.stdout
    lines = lines_of(shown.decode().replace("\r\n", "\n"))  # the terminal turns "\n" into "\r\n"
    assert [line.split()[0] for line in lines] == SEGMENT_STAGES
    piped = subprocess.run(
        [sys.executable, "-m", "oncoqi", *_segment(small_ct, tmp_path / "pipe")],
        capture_output=True,
        env=env,
        timeout=300,
    )
    assert piped.returncode == 0 and piped.stderr == b""


# --- batch and demo -----------------------------------------------------------------------------


def _petct_options(seed: int) -> PhantomOptions:
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


def _one_lesion_model(path: Path) -> Path:
    """A known-output model that finds one lesion (the whole search region) on the small grid: these tests
    look at the stages, and each further lesion would only add a SEG segment and an SR group to write."""
    from helpers.known_models import constant_model
    from oncoqi.lung.preprocess import PreprocessOptions

    return constant_model(path, PreprocessOptions(pixel_mm=4.0, columns=96, rows=96))


@pytest.fixture(scope="module")
def petct_study(tmp_path_factory) -> tuple[Path, Path]:
    """One small PET/CT study (as ``test_batch``'s) and a one-lesion known-output model on its small grid."""
    folder = tmp_path_factory.mktemp("petct")
    write_study(make_petct(_petct_options(101)), folder / "study")
    return folder / "study", _one_lesion_model(folder / "constant.onnx")


def test_run_cohort_relays_each_study_stage_in_order(petct_study, tmp_path):
    from oncoqi.batch import CohortOptions, StudyOptions, run_cohort

    study, model = petct_study
    seen: list[tuple[str, str, float]] = []
    options = StudyOptions(model=str(model), min_volume_ml=1.0)
    result = run_cohort(study, tmp_path, options, CohortOptions(progress=False), on_stage=lambda *e: seen.append(e))
    (key,) = {key for key, _, _ in seen}
    assert key == result.studies[0].key and result.studies[0].status == "done"
    assert changes([stage for _, stage, _ in seen]) == STUDY_STAGES and set(STUDY_STAGES) == set(STAGES)
    network = [fraction for _, stage, fraction in seen if stage == "network"]
    assert network[0] == 0.0 and network[-1] == 1.0


def test_batch_shows_the_running_study_stage_in_its_bar_on_a_terminal(petct_study, tmp_path, monkeypatch):
    study, model = petct_study
    argv = ["batch", str(study), "--model", str(model), "--min-volume", "1"]
    tty = FakeTTY()
    monkeypatch.setattr(sys, "stderr", tty)
    assert oncoqi.cli.main([*argv, "--out", str(tmp_path / "a")]) == 0
    shown = tty.getvalue()
    for stage in STUDY_STAGES:
        assert f"now=s1: {stage}" in shown
    assert "done    OQI-PHANTOM-101/" in shown  # the study's finish line stays
    for flag in ("--quiet", "--no-progress"):
        quiet = FakeTTY()
        monkeypatch.setattr(sys, "stderr", quiet)
        assert oncoqi.cli.main([*argv, "--out", str(tmp_path / flag), flag]) == 0
        assert quiet.getvalue() == ""


def test_batch_workers_relay_their_stages_through_a_queue(petct_study, tmp_path):
    """Two studies in two worker processes: each one's stages reach this process, in order."""
    from oncoqi.batch import CohortOptions, StudyOptions, run_cohort

    study, model = petct_study
    cohort = tmp_path / "cohort"
    shutil.copytree(study, cohort / "a")
    write_study(make_petct(_petct_options(102)), cohort / "b")
    seen: list[tuple[str, str, float]] = []
    result = run_cohort(
        cohort,
        tmp_path / "out",
        StudyOptions(model=str(model), min_volume_ml=1.0),
        CohortOptions(workers=2, progress=False),
        on_stage=lambda *e: seen.append(e),
    )
    assert [s.status for s in result.studies] == ["done", "done"]
    for s in result.studies:
        assert changes([stage for key, stage, _ in seen if key == s.key]) == STUDY_STAGES


def test_demo_prints_its_stages_on_a_terminal_and_nothing_when_quiet(tmp_path, monkeypatch, capsys):
    model = _one_lesion_model(tmp_path / "constant.onnx")
    tty = FakeTTY()
    monkeypatch.setattr(sys, "stderr", tty)
    assert oncoqi.cli.main(["demo", "--out", str(tmp_path / "demo"), "--model", str(model)]) == 0
    assert [line.split()[0] for line in lines_of(tty.getvalue())] == STUDY_STAGES
    assert "1. oncoqi batch" in capsys.readouterr().out
    quiet = FakeTTY()
    monkeypatch.setattr(sys, "stderr", quiet)
    argv = ["demo", "--out", str(tmp_path / "demo"), "--model", str(model), "--quiet", "--force"]
    assert oncoqi.cli.main(argv) == 0 and ": processed" in capsys.readouterr().out  # the study ran again
    assert quiet.getvalue() == ""
