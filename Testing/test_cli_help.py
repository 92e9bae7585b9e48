"""Every ``oncoqi ... --help`` is plain text with a one-line description and working examples.

The parser tree is walked as ``oncoqi.cli.build_parser`` builds it, so a new sub-command is
checked without being listed here. For every parser: no reST/Sphinx markup in the help (a user
reads it in a terminal, where double backticks, Sphinx roles and link markup are noise), a
one-line first paragraph that says what it does, lines that fit an 80-column terminal, and at
least one example of its own command. Each example is parsed by the real parser, so an example that names a removed
option or a wrong type fails here instead of failing a user. ``report write --help`` documents
the ``--meta`` format; its minimal example is read by the real reader and written into a SEG.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from oncoqi import cli
from oncoqi.dicom.seg import load_metadata
from oncoqi.dicom.seg.codes import NAMED_CODES

#: What reST and Sphinx leave in a help text, with what it is.
MARKUP = (
    (re.compile(r"`"), "a backtick (``literal``, `x`, `x`_ or a role)"),
    (re.compile(r":(mod|func|class|meth|attr|data|obj|exc|ref|doc|py:\w+):"), "a Sphinx role"),
    (re.compile(r"^\s*\.\. \w[\w-]*::", re.MULTILINE), "a reST directive"),
    (re.compile(r"\w::\s*$", re.MULTILINE), "a reST literal-block marker"),
    (re.compile(r"^\s*\*\*|\*\*\s*$", re.MULTILINE), "reST bold"),
)

#: Widest description or epilog line: they are shown as written, in an 80-column terminal.
MAX_WIDTH = 79


def walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser under ``parser``, with its command words (``("oncoqi", "lung", "segment")``)."""
    yield path, parser
    for sub in subparser_actions(parser):
        for name, child in sub.choices.items():
            yield from walk(child, (*path, name))


def subparser_actions(parser: argparse.ArgumentParser) -> list[argparse._SubParsersAction]:
    """The sub-command groups of ``parser`` (none for a leaf command)."""
    return [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]


PARSERS = dict(walk(cli.build_parser(), ("oncoqi",)))
IDS = [" ".join(path) for path in PARSERS]


def examples(epilog: str | None) -> list[str]:
    """The command lines of an epilog's ``Example:``/``Examples:`` block (continuations joined).

    The block is the indented lines after the heading, up to a blank or unindented line.
    """
    lines = (epilog or "").splitlines()
    found: list[str] = []
    for n, line in enumerate(lines):
        if not re.fullmatch(r"Examples?:", line.strip()):
            continue
        command = ""
        for text in lines[n + 1 :]:
            if not text.strip() or not text.startswith(" "):
                break
            command += " " + text.strip()
            if command.endswith("\\"):
                command = command[:-1]
                continue
            found.append(" ".join(command.split()))
            command = ""
    return found


def squashed(text: str) -> str:
    """``text`` without whitespace: argparse rewraps one-liners (even at hyphens)."""
    return "".join(text.split())


@pytest.mark.parametrize("path", PARSERS, ids=IDS)
def test_help_is_plain_text(path):
    text = PARSERS[path].format_help()
    for pattern, what in MARKUP:
        found = pattern.search(text)
        assert found is None, f"{' '.join(path)} --help holds {what}: {text[max(0, found.start() - 40) :][:80]!r}"


@pytest.mark.parametrize("path", PARSERS, ids=IDS)
def test_help_has_a_one_line_description_and_fits_the_terminal(path):
    parser = PARSERS[path]
    description = parser.description or ""
    first = description.strip().split("\n\n")[0]
    assert first, f"{' '.join(path)} has no description"
    assert "\n" not in first, f"{' '.join(path)}: the first paragraph of the description is not one line: {first!r}"
    assert first[0].isupper() and len(first) <= MAX_WIDTH, f"{' '.join(path)}: first line {first!r}"
    # what a sub-command does: its own words, not the module docstring written for developers
    assert not first.startswith(("oncoqi", "``")), f"{' '.join(path)}: {first!r}"
    for line in (description + (parser.epilog or "")).splitlines():
        assert len(line) <= MAX_WIDTH, f"{' '.join(path)} --help: {len(line)} columns: {line!r}"


@pytest.mark.parametrize("path", PARSERS, ids=IDS)
def test_help_shows_examples_of_its_own_command_as_written(path):
    parser = PARSERS[path]
    found = examples(parser.epilog)
    command = " ".join(path)
    assert any(e == command or e.startswith(command + " ") for e in found), f"{command} --help: no example of it"
    help_lines = parser.format_help().splitlines()
    example_lines = [line for line in (parser.epilog or "").splitlines() if line.strip().startswith("oncoqi ")]
    for line in example_lines:  # kept on their own lines, not rewrapped into a paragraph
        assert line in help_lines, f"{command} --help rewrapped the example line {line!r}"


@pytest.mark.parametrize("path", PARSERS, ids=IDS)
def test_examples_parse(path):
    for example in examples(PARSERS[path].epilog):
        words = shlex.split(example)
        assert words[0] == "oncoqi"
        try:
            args = cli.build_parser().parse_args(words[1:])
        except SystemExit as exc:  # argparse's answer to a bad command line
            pytest.fail(f"the example {example!r} of {' '.join(path)} --help does not parse (exit {exc.code})")
        assert callable(getattr(args, "func", None)), f"{example!r} names no complete command"


@pytest.mark.parametrize("path", [p for p in PARSERS if subparser_actions(PARSERS[p])], ids=lambda p: " ".join(p))
def test_a_parent_lists_every_sub_command_with_its_one_liner(path):
    parser = PARSERS[path]
    text = squashed(parser.format_help())
    for sub in subparser_actions(parser):
        listed = {a.dest: a.help for a in sub._choices_actions}
        assert set(listed) == set(sub.choices), f"{' '.join(path)} --help leaves out {set(sub.choices) - set(listed)}"
        for name, one_liner in listed.items():
            assert one_liner and "\n" not in one_liner, f"{' '.join(path)} {name}: no one-line help"
            assert squashed(name + one_liner) in text, f"{' '.join(path)} --help does not list {name}"


def test_the_walk_reaches_every_command():
    # the parser tree the tests above cover; a sub-command missing here would go unchecked
    expected = {
        "oncoqi dicom ls",
        "oncoqi dicom check",
        "oncoqi phantom",
        "oncoqi lung isolate",
        "oncoqi lung evaluate",
        "oncoqi lung segment",
        "oncoqi lung train",
        "oncoqi lung tune",
        "oncoqi lung ensemble",
        "oncoqi pet suv",
        "oncoqi pet indices",
        "oncoqi pet segment",
        "oncoqi pet transfer",
        "oncoqi tcia collections",
        "oncoqi tcia patients",
        "oncoqi tcia studies",
        "oncoqi tcia series",
        "oncoqi tcia download",
        "oncoqi report write",
        "oncoqi report read",
        "oncoqi batch",
        "oncoqi demo",
    }
    assert expected <= set(IDS)


def test_examples_reader_joins_continuations_and_stops_at_the_block_end():
    epilog = "Output:\n  oncoqi not an example\n\nExamples:\n  oncoqi a --b \\\n      c\n  oncoqi d\n\nText\n"
    assert examples(epilog) == ["oncoqi a --b c", "oncoqi d"]


def meta_example() -> dict:
    """The minimal ``--meta`` JSON shown by ``oncoqi report write --help``."""
    epilog = PARSERS[("oncoqi", "report", "write")].epilog or ""
    block = re.search(r"^  \{.*?\}\]\}$", epilog, re.MULTILINE | re.DOTALL)
    assert block, "report write --help shows no --meta example"
    return json.loads(block.group(0))


def test_report_write_help_documents_the_meta_format():
    text = PARSERS[("oncoqi", "report", "write")].format_help()
    data = meta_example()
    assert list(data) == ["segments"] and len(data["segments"]) == 1
    segment = data["segments"][0]
    assert {"label", "category", "type"} <= set(segment)  # what SegmentDescription.from_json requires
    metadata = load_metadata(data)  # the reader the command uses: codes resolved, nothing unknown
    assert metadata.segments[0].label == "GTV" and metadata.segments[0].label_value == 1
    for name in NAMED_CODES:  # the list of code names in the help is the reader's list
        assert re.search(rf"\b{name}\b", text), f"report write --help does not name the code {name!r}"


def test_report_write_runs_with_the_meta_example(tmp_path: Path, capsys):
    from oncoqi.phantom import PhantomOptions, TumourSpec, make_ct, write_study
    from oncoqi.report import read_report

    options = PhantomOptions(
        seed=4, size=64, slices=20, slice_thickness_mm=5.0, tumours=(TumourSpec(volume_ml=15, location="parenchyma"),)
    )
    write_study(make_ct(options), tmp_path / "study")
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps(meta_example()), encoding="utf-8")
    argv = ["report", "write", "--source", str(tmp_path / "study" / "CT")]
    argv += ["--labels", str(tmp_path / "study" / "truth" / "tumor_label.nrrd"), "--meta", str(meta)]
    code = cli.main([*argv, "--out", str(tmp_path / "report")])
    assert code == 0, capsys.readouterr().err
    seg = read_report(tmp_path / "report" / "seg.dcm")
    assert [s.label for s in seg.metadata.segments] == ["GTV"]
    assert seg.metadata.segments[0].type.meaning == NAMED_CODES["neoplasm"].meaning
