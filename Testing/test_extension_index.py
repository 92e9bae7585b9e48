"""The bundle is ready for the Slicer Extensions Index (github.com/Slicer/ExtensionsIndex).

Three groups of checks, all offline:

* the catalog entry ``Docs/extension-index/OncoQI.json`` validates against the JSON schema its
  ``$schema`` names (a copy in ``Testing/data/extension-index/``, provenance in its README);
* the checks of the Index's ``scripts/check_description_files.py`` (ExtensionsIndex commit
  ``43753a55409d6cf9cbd238018c4a721d420ac749``, the last one to change it; the script the Index's
  CI runs on every new entry) that need no network, re-implemented here with the same rules and,
  where the script has one, the same accepted list. The network parts are replaced by offline
  equivalents: ``check_clone_repository`` and ``check_repository_size`` work on this checkout,
  ``check_json_schema`` uses the local schema copy, and the image downloads of
  ``check_cmakelists_content`` become checks that the URL maps to a PNG in this repository.
  ``check_git_repository_topics`` (the GitHub API must list the topic ``3d-slicer-extension``)
  cannot run offline and is not tested;
* the entry's ``dicom_support_rule``, evaluated the way the Slicer ecosystem evaluates it: with the
  `rule-engine <https://pypi.org/project/rule-engine/>`_ library over the series' ``Modality`` and
  ``SOPClassUID`` (Slicer ``Docs/developer_guide/extensions.md``, "dicom_support_rule"; the
  schema's title says the same), and as a Python expression.

Each re-implemented check raises :class:`IndexCheckError` like the script's
``ExtensionCheckError``, and is also run on broken inputs to show that it can fail.
"""

from __future__ import annotations

import ast
import io
import json
import os
import re
import shutil
import struct
import subprocess
import textwrap
import urllib.parse as urlparse
import zipfile
from pathlib import Path

import pydicom
import pytest

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is in the test extra: pip install -e '.[test]'")

REPO_ROOT = Path(__file__).resolve().parents[1]
ENTRY_PATH = REPO_ROOT / "Docs" / "extension-index" / "OncoQI.json"
CMAKE_PATH = REPO_ROOT / "CMakeLists.txt"
SCHEMA_DIR = REPO_ROOT / "Testing" / "data" / "extension-index"
#: The extension's name: the entry's file name, as the script takes it (``os.path.splitext(basename)``).
EXTENSION_NAME = ENTRY_PATH.stem

# --- Lists copied verbatim from check_description_files.py (ExtensionsIndex 43753a55409d) -------------

#: ``ACCEPTED_EXTENSION_CATEGORIES``
ACCEPTED_EXTENSION_CATEGORIES = [
    "Active Learning",
    "Analysis",
    "Auto3dgm",
    "BigImage",
    "Cardiac",
    "Chest Imaging Platform",
    "Conda",
    "Converters",
    "DICOM",
    "DSCI",
    "Developer Tools",
    "Diffusion",
    "Examples",
    "Exporter",
    "FTV Segmentation",
    "Filtering",
    "Filtering.Morphology",
    "Filtering.Vesselness",
    "Holographic Display",
    "Image Synthesis",
    "IGT",
    "Informatics",
    "Netstim",
    "Neuroimaging",
    "Nuclear Medicine",
    "Orthodontics",
    "Osteotomy Planning",
    "Otolaryngology",
    "Photogrammetry",
    "Pipelines",
    "Planning",
    "Printing",
    "Quantification",
    "Radiotherapy",
    "Registration",
    "Remote",
    "Rendering",
    "SPHARM",
    "Segmentation",
    "Sequences",
    "Shape Analysis",
    "Shape Regression",
    "Shape Visualization",
    "Simulation",
    "SlicerCMF",
    "SlicerMorph",
    "Spectral Imaging",
    "Supervisely",
    "Surface Models",
    "SurfaceLearner",
    "Tomographic Reconstruction",
    "Tracking",
    "Tractography",
    "Training",
    "Ultrasound",
    "Utilities",
    "Vascular Modeling Toolkit",
    "Virtual Reality",
    "VisSimTools",
    "Web System Tools",
    "Wizards",
]
#: The allowed repository-name prefixes of ``check_git_repository_name``.
ALLOWED_REPOSITORY_PREFIXES = ["Slicer", "Slicer-", "Slicer_", "SlicerExtension-", "SlicerExtension_"]
#: ``REPOSITORY_NAME_CHECK_EXCEPTIONS``: older extensions only; a new entry cannot join it.
REPOSITORY_NAME_CHECK_EXCEPTIONS = [
    "3DMetricTools",
    "ai-assisted-annotation-client",
    "aigt",
    "AnglePlanes-Extension",
    "AnomalousFiltersExtension",
    "BoneTextureExtension",
    "CarreraSlice",
    "ChangeTrackerPy",
    "CMFreg",
    "CurveMaker",
    "DatabaseInteractorExtension",
    "dcmqi",
    "DSC_Analysis",
    "EasyClip-Extension",
    "ErodeDilateLabel",
    "FilmDosimetryAnalysis",
    "GelDosimetryAnalysis",
    "GyroGuide",
    "iGyne",
    "ImageMaker",
    "IntensitySegmenter",
    "MeshStatisticsExtension",
    "MeshToLabelMap",
    "ModelClip",
    "MONAILabel",
    "mpReview",
    "NeedleFinder",
    "opendose3d",
    "OsteotomyPlanner",
    "PBNRR",
    "PedicleScrewSimulator",
    "PercutaneousApproachAnalysis",
    "PerkTutor",
    "PET-IndiC",
    "PETLiverUptakeMeasurement",
    "PETTumorSegmentation",
    "PickAndPaintExtension",
    "PkModeling",
    "PortPlacement",
    "Q3DCExtension",
    "QuantitativeReporting",
    "ResectionPlanner",
    "ScatteredTransform",
    "Scoliosis",
    "SegmentationAidedRegistration",
    "SegmentationReview",
    "SegmentRegistration",
    "ShapePopulationViewer",
    "ShapeRegressionExtension",
    "ShapeVariationAnalyzer",
    "SkullStripper",
    "SNRMeasurement",
    "SPHARM-PDM",
    "T1Mapping",
    "TCIABrowser",
    "ukftractography",
    "VASSTAlgorithms",
]
#: ``check_license_file``: the names it looks for in the repository root, in its order.
LICENSE_FILE_NAMES = ["LICENSE", "LICENCE", "License.txt", "license.txt", "LICENSE.txt", "COPYING", "COPYING.txt"]
#: ``check_repository_size``: the limit on the checked-out tree, ``.git`` included.
REPOSITORY_SIZE_LIMIT_MB = 100

# --- DICOM identifiers the rule is evaluated on ------------------------------------------------------

PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
ENHANCED_PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.130"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
KEY_OBJECT_SELECTION = "1.2.840.10008.5.1.4.1.1.88.59"
#: The DICOM attributes Slicer's documentation says a rule may use.
RULE_ATTRIBUTES = {"Modality", "SOPClassUID"}


class IndexCheckError(RuntimeError):
    """A failed Extensions Index check (the script's ``ExtensionCheckError``)."""


def load_entry(path: Path = ENTRY_PATH) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def cmake_text() -> str:
    return CMAKE_PATH.read_text(encoding="utf-8", errors="ignore")


# --- Re-implemented checks of check_description_files.py ---------------------------------------------


def require_metadata_key(metadata: dict, key: str) -> None:
    """``require_metadata_key``: the key is present and its value is not None."""
    if key not in metadata:
        raise IndexCheckError(f"{key} key is missing")
    if metadata[key] is None:
        raise IndexCheckError(f"{key} value is not set")


def check_json_file_format(extension_file_path: Path) -> None:
    """``check_json_file_format``: valid JSON, LF-only line endings (no CR, no CRLF)."""
    try:
        json.loads(Path(extension_file_path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise IndexCheckError(f"Invalid JSON format: {exc}") from exc
    content = Path(extension_file_path).read_bytes()
    if b"\r\n" in content or b"\r" in content:
        raise IndexCheckError("File contains non-LF line endings (CR or CRLF).")


def check_json_schema(metadata: dict, schema_dir: Path = SCHEMA_DIR) -> dict:
    """``check_json_schema``, offline: ``$schema`` present and non-empty, the fragment dropped, the schema
    it names (found in ``schema_dir`` by its file name) validates the entry (``jsonschema.validate``).
    Returns the schema."""
    if "$schema" not in metadata:
        raise IndexCheckError("No $schema field found in extension description")
    schema_url = metadata["$schema"]
    if not schema_url:
        raise IndexCheckError("$schema field is empty")
    schema_url = schema_url.split("#")[0]
    local = Path(schema_dir) / Path(urlparse.urlsplit(schema_url).path).name
    if not local.is_file():
        raise IndexCheckError(f"no offline copy of {schema_url} in {schema_dir}")
    schema = json.loads(local.read_text(encoding="utf-8"))
    try:
        jsonschema.validate(metadata, schema)
    except jsonschema.ValidationError as exc:
        raise IndexCheckError(
            f"JSON schema validation failed: {exc.message} at path: {' -> '.join(str(p) for p in exc.absolute_path)}"
        ) from exc
    return schema


def check_extension_name(extension_name: str) -> None:
    """``check_extension_name``: the name does not start with "Slicer" (case-insensitive; the
    ``EXTENSION_NAME_CHECK_EXCEPTIONS`` list holds only names that start with "Slicer" already)."""
    if extension_name.lower().startswith("slicer"):
        raise IndexCheckError(f"extension name *should not* start with 'Slicer' ({extension_name})")


def check_category(metadata: dict) -> None:
    """``check_category``: ``category`` is in ``ACCEPTED_EXTENSION_CATEGORIES``."""
    require_metadata_key(metadata, "category")
    if metadata["category"] not in ACCEPTED_EXTENSION_CATEGORIES:
        raise IndexCheckError(f"Category {metadata['category']!r} is unknown")


def repository_name(scm_url: str) -> str:
    """The repository name as ``check_git_repository_name`` takes it from ``scm_url``."""
    url = scm_url.strip().strip("/")
    return os.path.splitext(urlparse.urlsplit(url).path.split("/")[-1])[0]


def check_git_repository_name(metadata: dict) -> None:
    """``check_git_repository_name``: the repository name in ``scm_url`` starts with "Slicer",
    "Slicer-", "Slicer_", "SlicerExtension-" or "SlicerExtension_", unless it is on
    ``REPOSITORY_NAME_CHECK_EXCEPTIONS``."""
    require_metadata_key(metadata, "scm_url")
    repo_name = repository_name(metadata["scm_url"])
    if not repo_name:
        raise IndexCheckError(f"Failed to determine repository name from scm_url {metadata['scm_url']!r}")
    if repo_name in REPOSITORY_NAME_CHECK_EXCEPTIONS:
        return
    if not any(repo_name.startswith(prefix) for prefix in ALLOWED_REPOSITORY_PREFIXES):
        raise IndexCheckError(
            textwrap.dedent(f"""
            git repository name *should* start with 'Slicer'. The current repository name is '{repo_name}'.
            """).strip()
        )


def check_scm_url_syntax(metadata: dict) -> None:
    """``check_scm_url_syntax``: ``scm_url`` contains "://" and its scheme is git or https."""
    require_metadata_key(metadata, "scm_url")
    if "://" not in metadata["scm_url"]:
        raise IndexCheckError("scm_url do not match scheme://host/path")
    scheme = urlparse.urlsplit(metadata["scm_url"]).scheme
    if scheme not in ("git", "https"):
        raise IndexCheckError(f"scm_url scheme is {scheme!r} but it should by any of ['git', 'https']")


def cmakelists_urls(cmake_content: str) -> tuple[str | None, list[str]]:
    """``EXTENSION_ICONURL`` and ``EXTENSION_SCREENSHOTURLS`` with the script's own regular expressions."""
    icon = re.findall(r'set\s*\(EXTENSION_ICONURL\s*"([^"]+)"[ ]*\)', cmake_content, re.IGNORECASE | re.MULTILINE)
    shots = re.findall(r'set\s*\(EXTENSION_SCREENSHOTURLS\s*"([^"]+)"\)', cmake_content, re.IGNORECASE | re.MULTILINE)
    return (icon[0].strip() if icon else None), ([u.strip() for u in shots[0].split()] if shots else [])


def check_cmakelists_content(extension_name: str, cmake_content: str) -> None:
    """``check_cmakelists_content``, offline part: ``project(<name>)`` (else ``set(EXTENSION_NAME ..)``)
    equals the extension name; ``EXTENSION_ICONURL`` is set; ``EXTENSION_SCREENSHOTURLS`` is set and
    not empty; every URL starts with "http" (``validate_image_url``; the download itself is replaced
    by :func:`repository_file_for_url`). All errors are collected and reported together, as the script does."""
    errors = []
    name = None
    matches = re.findall(r"project\s*\(\s*([^\s\)\n\r]+)", cmake_content, re.IGNORECASE | re.MULTILINE)
    if matches:
        name = matches[0].strip().strip('"').strip("'")
    if not name:
        fallback = re.findall(r"set\(EXTENSION_NAME\s+([^\s\)]+)\)", cmake_content, re.IGNORECASE | re.MULTILINE)
        if fallback:
            name = fallback[0].strip().strip('"').strip("'")
    if name is None:
        errors.append("No project() declaration found in CMakeLists.txt")
    elif name != extension_name:
        errors.append(f"Extension name in CMakeLists.txt project name {name!r} does not match {extension_name!r}")
    icon, screenshots = cmakelists_urls(cmake_content)
    if icon is None:
        errors.append("No EXTENSION_ICONURL found in CMakeLists.txt.")
    elif not icon.startswith("http"):
        errors.append(f"EXTENSION_ICONURL {icon!r} should be a valid URL starting with 'http'")
    if not screenshots:
        errors.append("No EXTENSION_SCREENSHOTURLS found in CMakeLists.txt.")
    errors += [
        f"EXTENSION_SCREENSHOTURLS {u!r} should be a valid URL starting with 'http'"
        for u in screenshots
        if not u.startswith("http")
    ]
    if errors:
        raise IndexCheckError(" ".join(errors))


def check_license_file(repository_folder: Path) -> Path:
    """``check_license_file``: one of ``LICENSE``, ``LICENCE``, ``License.txt``, ``license.txt``,
    ``LICENSE.txt``, ``COPYING``, ``COPYING.txt`` is a file in the repository root (first found wins;
    OncoQI is not on ``LICENSE_CHECK_EXCEPTIONS``). Returns it."""
    for name in LICENSE_FILE_NAMES:
        # os.listdir, not Path.is_file: the clone is case-sensitive (Linux CI) even where this disk is not
        if name in os.listdir(repository_folder) and (Path(repository_folder) / name).is_file():
            return Path(repository_folder) / name
    raise IndexCheckError("No license file found in repository root.")


def check_dependencies(directory: Path) -> None:
    """``check_dependencies``: every non-empty ``build_dependencies`` name of every ``*.json`` entry in
    the index folder is the name of an entry there (an unparsable entry is skipped)."""
    required: dict[str, list[str]] = {}
    available = []
    for path in sorted(Path(directory).iterdir()):
        if not path.is_file() or path.suffix != ".json":
            continue
        try:
            description = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            continue
        available.append(path.stem)
        for dependency in description.get("build_dependencies", []):
            if dependency:
                required.setdefault(dependency, []).append(path.stem)
    errors = [
        f"'{name}' extension is not found. It is required by extension: {', '.join(by)}."
        for name, by in required.items()
        if name not in available
    ]
    if errors:
        raise IndexCheckError("\n".join(errors))


# --- Offline stand-ins for what the Index fetches ----------------------------------------------------


def github_owner_repo(scm_url: str) -> tuple[str, str]:
    parts = urlparse.urlsplit(scm_url)
    assert parts.netloc.lower() == "github.com", f"not a GitHub URL: {scm_url}"
    owner, repo = parts.path.strip("/").split("/")[:2]
    return owner, repo.removesuffix(".git")


def repository_file_for_url(url: str, metadata: dict) -> Path:
    """The file of this checkout that a raw.githubusercontent.com URL serves once pushed: the URL must
    name the entry's repository and its ``scm_revision`` (the branch the Index builds)."""
    parts = urlparse.urlsplit(url)
    if parts.scheme != "https" or parts.netloc != "raw.githubusercontent.com":
        raise IndexCheckError(f"{url} is not a raw.githubusercontent.com URL")
    owner, repo, revision, *path = parts.path.strip("/").split("/")
    if (owner, repo) != github_owner_repo(metadata["scm_url"]):
        raise IndexCheckError(f"{url} is not in the entry's repository {metadata['scm_url']}")
    if revision != metadata.get("scm_revision"):
        raise IndexCheckError(f"{url} is on {revision!r}, the entry builds {metadata.get('scm_revision')!r}")
    if not path:
        raise IndexCheckError(f"{url} names no file")
    return REPO_ROOT.joinpath(*path)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG (signature and IHDR checked), or IndexCheckError."""
    data = Path(path).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise IndexCheckError(f"{path} is not a PNG")
    return struct.unpack(">II", data[16:24])


def git(*args: str) -> str:
    """A read-only git command in the checkout (skips the test where this is no git checkout)."""
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    done = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise IndexCheckError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


# --- (a) the catalog entry and its schema ------------------------------------------------------------


def test_entry_validates_against_the_schema_it_names() -> None:
    entry = load_entry()
    schema = check_json_schema(entry)
    jsonschema.Draft7Validator.check_schema(schema)
    # "$schema" names exactly the schema file kept here: its URL is the schema's own $id, and the file
    # name in the URL is the local copy's name
    assert entry["$schema"] == schema["$id"]
    assert entry["$schema"] == (
        "https://raw.githubusercontent.com/Slicer/Slicer/main/Schemas/"
        "slicer-extension-catalog-entry-schema-v1.0.2.json#"
    )
    assert (SCHEMA_DIR / Path(urlparse.urlsplit(entry["$schema"]).path).name).is_file()
    assert "dicom_support_rule" in schema["properties"], "the rule needs schema v1.0.2 or later"


@pytest.mark.parametrize(
    "change",
    [
        {"$schema": ""},
        {"category": 5},
        {"tier": 6},
        {"scm_type": "svn"},
        {"dicom_support_rule": ["Modality == 'PT'"]},
        {"homepage": "https://example.org"},  # additionalProperties: false
    ],
    ids=["empty-schema", "category-not-string", "tier-too-high", "unknown-scm-type", "rule-not-string", "extra-key"],
)
def test_schema_check_rejects_a_broken_entry(change: dict) -> None:
    with pytest.raises(IndexCheckError):
        check_json_schema({**load_entry(), **change})


def test_schema_check_rejects_an_entry_without_required_keys() -> None:
    for key in ("category", "scm_url"):
        entry = load_entry()
        del entry[key]
        with pytest.raises(IndexCheckError, match="required"):
            check_json_schema(entry)
    with pytest.raises(IndexCheckError, match="No offline copy|no offline copy"):
        check_json_schema({**load_entry(), "$schema": load_entry()["$schema"].replace("v1.0.2", "v9.9.9")})


# --- (b) the offline checks of check_description_files.py --------------------------------------------


def test_entry_file_format_extension_name_category_and_scm_url() -> None:
    entry = load_entry()
    check_json_file_format(ENTRY_PATH)
    check_extension_name(EXTENSION_NAME)
    check_category(entry)
    check_scm_url_syntax(entry)
    # The entry file is what the Index receives: named after the extension, in the Index's folder layout
    assert EXTENSION_NAME == "OncoQI"
    assert entry["scm_url"].removesuffix(".git") == re.search(
        r'^set\(EXTENSION_HOMEPAGE "([^"]+)"\)', cmake_text(), re.M
    ).group(1)


def test_format_name_category_and_scm_checks_can_fail(tmp_path: Path) -> None:
    crlf = tmp_path / "OncoQI.json"
    crlf.write_bytes(ENTRY_PATH.read_bytes().replace(b"\n", b"\r\n"))
    with pytest.raises(IndexCheckError, match="non-LF"):
        check_json_file_format(crlf)
    broken = tmp_path / "Broken.json"
    broken.write_text('{"category": "Quantification",}', encoding="utf-8")
    with pytest.raises(IndexCheckError, match="Invalid JSON"):
        check_json_file_format(broken)
    with pytest.raises(IndexCheckError):
        check_extension_name("SlicerOncoQI")
    with pytest.raises(IndexCheckError, match="unknown"):
        check_category({**load_entry(), "category": "Oncology"})
    with pytest.raises(IndexCheckError, match="missing"):
        check_category({k: v for k, v in load_entry().items() if k != "category"})
    with pytest.raises(IndexCheckError, match="scheme://"):
        check_scm_url_syntax({"scm_url": "github.com/OncoQI/OncoQI.git"})
    with pytest.raises(IndexCheckError, match="scheme is 'http'"):
        check_scm_url_syntax({"scm_url": "http://github.com/OncoQI/OncoQI.git"})


def test_git_repository_name_follows_the_index_rule() -> None:
    """The repository is OncoQI/SlicerOncoQI (the Index wants 'Slicer' first); the extension is OncoQI."""
    check_git_repository_name(load_entry())


def test_git_repository_name_rule() -> None:
    """The re-implemented rule itself, on names the Index accepts and rejects."""
    for url in (
        "https://github.com/OncoQI/SlicerOncoQI.git",
        "https://github.com/x/Slicer-OncoQI",
        "git://github.com/x/SlicerExtension_OncoQI.git/",
        "https://github.com/QIICR/PET-IndiC.git",
    ):
        check_git_repository_name({"scm_url": url})
    for url in ("https://github.com/OncoQI/OncoQI.git", "https://github.com/x/slicerOncoQI.git"):
        with pytest.raises(IndexCheckError, match="should\\* start with 'Slicer'"):
            check_git_repository_name({"scm_url": url})
    assert repository_name(load_entry()["scm_url"]) == "SlicerOncoQI"


def test_cmakelists_content() -> None:
    check_cmakelists_content(EXTENSION_NAME, cmake_text())
    icon, screenshots = cmakelists_urls(cmake_text())
    assert icon and screenshots
    # The Slicer v5.12 extension template (Utilities/Templates/Extensions/Default/CMakeLists.txt)
    text = cmake_text()
    assert text.startswith("cmake_minimum_required(VERSION 3.28.0...3.28.0 FATAL_ERROR)\n")
    assert "# Minimum Slicer version: 5.10" in text
    contributors = re.search(r'^set\(EXTENSION_CONTRIBUTORS "([^"]+)"\)', text, re.M).group(1)
    assert contributors != "OncoQI contributors", "placeholder contributors"
    # the Index lists contributors as "Name (Organisation)", comma-separated
    assert all(re.fullmatch(r"[^(),]+ \([^()]+\)", c.strip()) for c in contributors.split(",")), contributors
    assert re.search(r'^set\(EXTENSION_DESCRIPTION "[^"]{20,}"\)', text, re.M)
    assert re.search(r'^set\(EXTENSION_DEPENDS "NA"\)', text, re.M)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("project(OncoQI)", "project(OncoQIExtension)", "does not match"),
        ("project(OncoQI)", "", "No project"),
        (
            'set(EXTENSION_SCREENSHOTURLS "https',
            'set(EXTENSION_SCREENSHOTURLS "" # "https',
            "No EXTENSION_SCREENSHOTURLS",
        ),
        ("set(EXTENSION_ICONURL", "# set(EXTENSION_ICONURL_", "No EXTENSION_ICONURL"),
        ('set(EXTENSION_ICONURL "https://', 'set(EXTENSION_ICONURL "ftp://', "starting with 'http'"),
    ],
    ids=["wrong-project", "no-project", "empty-screenshots", "no-icon", "icon-not-http"],
)
def test_cmakelists_check_can_fail(old: str, new: str, message: str) -> None:
    text = cmake_text()
    assert old in text
    with pytest.raises(IndexCheckError, match=message):
        check_cmakelists_content(EXTENSION_NAME, text.replace(old, new, 1))


def test_cmakelists_empty_screenshot_list_fails_as_before() -> None:
    """The state this bundle was in: ``set(EXTENSION_SCREENSHOTURLS "")`` does not match the script's regex."""
    text = re.sub(r'set\(EXTENSION_SCREENSHOTURLS "[^"]*"\)', 'set(EXTENSION_SCREENSHOTURLS "")', cmake_text())
    with pytest.raises(IndexCheckError, match="No EXTENSION_SCREENSHOTURLS"):
        check_cmakelists_content(EXTENSION_NAME, text)


def test_license_file(tmp_path: Path) -> None:
    found = check_license_file(REPO_ROOT)
    assert found.name == "LICENSE"
    text = found.read_text(encoding="utf-8")
    # the licence pyproject.toml declares (license = "BSD-3-Clause"), with its three clauses
    assert re.search(r'^license = "BSD-3-Clause"$', (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"), re.M)
    assert text.startswith("BSD 3-Clause License")
    assert "Copyright (c) 2026 The OncoQI contributors" in text
    assert "Neither the name of the copyright holder nor the names of its" in text
    # ... and the check fails on a root without one (or with the wrong case, as on the Index's Linux CI)
    with pytest.raises(IndexCheckError, match="No license file"):
        check_license_file(tmp_path)
    (tmp_path / "Licence.md").write_text(text, encoding="utf-8")
    with pytest.raises(IndexCheckError, match="No license file"):
        check_license_file(tmp_path)


def test_dependencies(tmp_path: Path) -> None:
    """``check_dependencies`` over an index folder holding the entry: nothing it needs is missing, and the
    entry's build dependencies agree with ``EXTENSION_DEPENDS`` (both empty: "NA")."""
    shutil.copy(ENTRY_PATH, tmp_path / ENTRY_PATH.name)
    check_dependencies(tmp_path)
    depends = re.search(r'^set\(EXTENSION_DEPENDS "([^"]*)"\)', cmake_text(), re.M).group(1)
    assert load_entry()["build_dependencies"] == ([] if depends == "NA" else depends.split(";"))
    (tmp_path / ENTRY_PATH.name).write_text(json.dumps({**load_entry(), "build_dependencies": ["SlicerRT"]}))
    with pytest.raises(IndexCheckError, match="'SlicerRT' extension is not found. It is required by extension: OncoQI"):
        check_dependencies(tmp_path)


def test_repository_size_is_under_the_limit(tmp_path: Path) -> None:
    """``check_repository_size`` as the Index runs it: ``git clone`` of the repository (the entry names an
    ``scm_revision``, so the whole history), then every file under the clone, ``.git`` included, at most
    100 MB. The clone is made through git's transport (``--no-local``), which packs the objects once as a
    network clone does; this checkout's own object store can hold the same objects in several packs.

    Work not yet committed would join that clone: each untracked (not ignored) or modified file counts
    twice, once in the tree and once in the pack, an upper bound for what committing it adds."""
    clone = tmp_path / "clone"
    git("clone", "--quiet", "--no-local", REPO_ROOT.as_uri(), str(clone))
    cloned = sum(f.stat().st_size for f in clone.rglob("*") if f.is_file())
    pending = git("ls-files", "-z", "--others", "--modified", "--exclude-standard").split("\0")
    uncommitted = sum((REPO_ROOT / f).stat().st_size for f in pending if f and (REPO_ROOT / f).is_file())
    total_mb = (cloned + 2 * uncommitted) / (1024 * 1024)
    assert total_mb <= REPOSITORY_SIZE_LIMIT_MB, (
        f"{total_mb:.1f} MB > {REPOSITORY_SIZE_LIMIT_MB} MB (clone {cloned / 2**20:.1f} MB, "
        f"uncommitted {uncommitted / 2**20:.1f} MB)"
    )


# --- (c) the icon and the screenshot are PNGs in this repository --------------------------------------


def test_screenshot_and_icon_urls_map_to_pngs_in_the_repository() -> None:
    entry = load_entry()
    icon, screenshots = cmakelists_urls(cmake_text())
    assert repository_file_for_url(icon, entry) == REPO_ROOT / "OncoQI.png"
    assert png_size(REPO_ROOT / "OncoQI.png") == (128, 128)
    assert len(screenshots) >= 1
    for url in screenshots:
        path = repository_file_for_url(url, entry)
        assert path.relative_to(REPO_ROOT).parts[:2] == ("Docs", "images"), path
        assert path.is_file(), f"{url}: no {path.relative_to(REPO_ROOT)} (run scripts/make_screenshot.py)"
        width, height = png_size(path)
        assert width >= 800 and height >= 400, f"{path.name} is {width}x{height}"
        assert path.stat().st_size < 1024 * 1024, f"{path.name} is over 1 MB"
        # it will be committed: git does not ignore it
        ignored = subprocess.run(["git", "-C", str(REPO_ROOT), "check-ignore", "-q", str(path)], check=False)
        assert ignored.returncode == 1, f"{path.relative_to(REPO_ROOT)} is ignored by git"


def test_url_mapping_and_png_checks_can_fail(tmp_path: Path) -> None:
    entry = load_entry()
    _, screenshots = cmakelists_urls(cmake_text())
    url = screenshots[0]
    for bad in (
        url.replace("/OncoQI/SlicerOncoQI/", "/Other/SlicerOncoQI/"),
        url.replace("/main/", "/dev/"),
        url.replace("raw.githubusercontent.com", "example.org"),
    ):
        with pytest.raises(IndexCheckError):
            repository_file_for_url(bad, entry)
    fake = tmp_path / "shot.png"
    fake.write_bytes(b"GIF89a" + bytes(40))
    with pytest.raises(IndexCheckError, match="not a PNG"):
        png_size(fake)


# --- (d) the DICOM support rule ----------------------------------------------------------------------


def sample_headers() -> dict[str, pydicom.Dataset]:
    """One CT and one PET header of the embedded sample study (the files the DICOM plugin examines)."""
    from oncoqi.phantom.sample import sample_path

    out = {}
    with zipfile.ZipFile(sample_path()) as archive:
        for folder in ("CT", "PET"):
            name = next(n for n in sorted(archive.namelist()) if n.startswith(f"{folder}/") and n.endswith(".dcm"))
            out[folder] = pydicom.dcmread(io.BytesIO(archive.read(name)), stop_before_pixels=True)
    return out


def rule_series() -> list[tuple[str, dict[str, str], bool]]:
    """Series attributes and whether OncoQI's plugin offers something for them (``OncoQISlicer.dicom.examine``:
    PET Image Storage gives an SUVbw volume, an SR that may hold TID 1500 a table)."""
    from oncoqi.dicom.sr.reader import SR_SOP_CLASSES

    headers = sample_headers()
    cases = [
        (f"sample {folder}", {"Modality": str(ds.Modality), "SOPClassUID": str(ds.SOPClassUID)}, folder == "PET")
        for folder, ds in headers.items()
    ]
    cases += [
        ("PET", {"Modality": "PT", "SOPClassUID": PET_IMAGE_STORAGE}, True),
        ("Enhanced PET (not loaded)", {"Modality": "PT", "SOPClassUID": ENHANCED_PET_IMAGE_STORAGE}, False),
        ("CT", {"Modality": "CT", "SOPClassUID": CT_IMAGE_STORAGE}, False),
        ("MR", {"Modality": "MR", "SOPClassUID": MR_IMAGE_STORAGE}, False),
        ("SEG (Slicer core loads it)", {"Modality": "SEG", "SOPClassUID": SEGMENTATION_STORAGE}, False),
        ("Key Object Selection", {"Modality": "KO", "SOPClassUID": KEY_OBJECT_SELECTION}, False),
        ("SR with a PET SOP class", {"Modality": "SR", "SOPClassUID": PET_IMAGE_STORAGE}, False),
        ("PT with an SR SOP class", {"Modality": "PT", "SOPClassUID": COMPREHENSIVE_SR}, False),
    ]
    cases += [
        (f"SR {meaning}", {"Modality": "SR", "SOPClassUID": uid}, True) for uid, meaning in SR_SOP_CLASSES.items()
    ]
    return cases


def rule_text() -> str:
    entry = load_entry()
    assert isinstance(entry.get("dicom_support_rule"), str) and entry["dicom_support_rule"].strip()
    return entry["dicom_support_rule"]


def eval_python_rule(rule: str, attributes: dict[str, str]) -> bool:
    """The rule as a Python expression: only names, string constants, ==, !=, in, and, or, not allowed."""
    tree = ast.parse(rule, mode="eval")  # SyntaxError when it is not Python
    allowed = (
        ast.Expression,
        ast.BoolOp,
        ast.And,
        ast.Or,
        ast.UnaryOp,
        ast.Not,
        ast.Compare,
        ast.Eq,
        ast.NotEq,
        ast.In,
        ast.NotIn,
        ast.Name,
        ast.Load,
        ast.Constant,
        ast.List,
        ast.Tuple,
    )
    for node in ast.walk(tree):
        if not isinstance(node, allowed):
            raise ValueError(f"{type(node).__name__} is not allowed in a DICOM support rule")
        if isinstance(node, ast.Name) and node.id not in RULE_ATTRIBUTES:
            raise ValueError(f"unknown attribute {node.id}")
        if isinstance(node, ast.Constant) and not isinstance(node.value, str):
            raise ValueError(f"{node.value!r} is not a string")
    code = compile(tree, "<dicom_support_rule>", "eval")
    return bool(eval(code, {"__builtins__": {}}, dict(attributes)))  # noqa: S307 (checked above)


def test_dicom_support_rule_is_a_python_expression_over_modality_and_sop_class() -> None:
    rule = rule_text()
    names = {n.id for n in ast.walk(ast.parse(rule, mode="eval")) if isinstance(n, ast.Name)}
    assert names == RULE_ATTRIBUTES
    assert "Modality == 'PT'" in rule and "Modality == 'SR'" in rule
    for name, attributes, expected in rule_series():
        assert eval_python_rule(rule, attributes) is expected, name


def test_dicom_support_rule_with_rule_engine() -> None:
    """As the Slicer documentation says it is evaluated: a rule-engine ``Rule`` matched against the
    series' attributes."""
    rule_engine = pytest.importorskip("rule_engine", reason="rule-engine is in the test extra")
    rule = rule_engine.Rule(rule_text())  # raises rule_engine.RuleSyntaxError when it does not parse
    for name, attributes, expected in rule_series():
        assert rule.matches(attributes) is expected, name


def test_dicom_support_rule_matches_the_plugin() -> None:
    """The rule names exactly the SOP classes the plugin's ``examine`` accepts (``OncoQISlicer.dicom_examine``,
    equal to the core's ``PET_IMAGE_STORAGE`` and ``SR_SOP_CLASSES``), so they cannot drift apart."""
    from oncoqi.dicom.sr.reader import SR_SOP_CLASSES
    from oncoqi.dicom.write import PET_IMAGE_STORAGE as CORE_PET

    uids = set(re.findall(r"'(1\.2\.840\.10008[0-9.]*)'", rule_text()))
    assert uids == {CORE_PET} | set(SR_SOP_CLASSES)
    assert CORE_PET == PET_IMAGE_STORAGE
    plugin = (REPO_ROOT / "OncoQISlicer" / "dicom_examine.py").read_text(encoding="utf-8")
    assert set(re.findall(r'"(1\.2\.840\.10008[0-9.]*)"', plugin)) == uids  # what the plugin's examine accepts


@pytest.mark.parametrize(
    "broken",
    [
        "Modality == 'CT'",  # wrong series
        "Modality = 'PT'",  # not Python (and not rule-engine)
        "Modality == 'PT' or",  # truncated
        "__import__('os').system('true')",  # code, not a rule
        "Modality == PT",  # unknown name
    ],
)
def test_dicom_support_rule_checks_can_fail(broken: str) -> None:
    failed = False
    try:
        for _, attributes, expected in rule_series():
            if eval_python_rule(broken, attributes) is not expected:
                failed = True
    except (SyntaxError, ValueError):
        failed = True
    assert failed
    rule_engine = pytest.importorskip("rule_engine")
    try:
        rule = rule_engine.Rule(broken)
        failed = any(rule.matches(a) is not e for _, a, e in rule_series())
    except rule_engine.EngineError:
        failed = True
    assert failed
