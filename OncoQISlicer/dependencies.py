"""Make sure the third-party packages of the ``oncoqi`` core are installed in Slicer's Python.

The core itself ships inside the extension (the top-level ``CMakeLists.txt`` installs ``src/oncoqi``
beside the modules); what it imports from PyPI (numpy, SimpleITK, pydicom, highdicom, tqdm,
onnxruntime, ...) is listed once, in ``requirements.txt`` next to this file, with lower bounds.

Slicer's rules for Python dependencies: never install at import time or in a module constructor,
ask the user first, install nothing in ``--testing`` mode. On top of them:

* **Slicer 5.10 is the minimum.** The core needs Python 3.10; Slicer 5.8 embeds 3.9, so there the
  first action of a module ends with one message naming the minimum version.
* **5.10 has no** ``slicer.packaging`` (it first shipped in 5.11): there the user is asked with
  ``slicer.util.confirmOkCancelDisplay`` and ``slicer.util.pip_install`` installs; from 5.11 on,
  ``slicer.packaging.pip_ensure`` does both.
* **Headless runs never prompt.** Under ``--no-main-window`` (``Slicer --python-script``) there is
  nobody to click a dialog, which would wait for ever: the missing packages are installed without
  asking and each is logged. In ``--testing`` mode nothing is installed and the error names what
  is missing.

Only ``packaging`` and the standard library are used to check versions (both are bundled with
every Slicer), so this module imports safely before anything is installed.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import sys
from pathlib import Path

#: The core's third-party requirements, shared by the four modules.
REQUIREMENTS_FILE = Path(__file__).with_name("requirements.txt")
#: The oldest Slicer the bundle supports, and the Python it embeds (the core's floor).
MINIMUM_SLICER = "5.10"
MINIMUM_PYTHON = (3, 10)


class DependencyError(RuntimeError):
    """The core cannot be made importable (old Slicer, testing mode, declined or failed install)."""


def read_requirements(path: Path | None = None) -> list[str]:
    """Requirement lines of a ``requirements.txt`` (default :data:`REQUIREMENTS_FILE`; comments,
    blank lines and pip options skipped)."""
    path = REQUIREMENTS_FILE if path is None else path
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def missing_requirements(requirements: list[str]) -> list[str]:
    """The requirements whose distribution is absent or outside the requested range."""
    from packaging.requirements import Requirement

    missing = []
    for line in requirements:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            installed = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(line)
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            missing.append(line)
    return missing


def _application_mode() -> tuple[bool, bool]:
    """``(testing, headless)`` of the running Slicer (both False outside the application)."""
    import slicer

    app = getattr(slicer, "app", None)
    if app is None:
        return False, False
    testing = bool(app.testingEnabled())
    headless = bool(app.commandOptions().noMainWindow)
    return testing, headless


def _has_slicer_packaging() -> bool:
    try:
        importlib.import_module("slicer.packaging")
    except ImportError:
        return False
    return True


def ensure_requirements(requirements: list[str], requester: str) -> None:
    """Install what is missing of ``requirements``; ask first only when a user can answer.

    Parameters
    ----------
    requirements
        pip requirement strings (``"name>=1.2"``).
    requester
        Module name shown in the confirmation dialog and in the log.

    Raises
    ------
    DependencyError
        Python older than the core needs (Slicer < 5.10), testing mode with packages missing, or
        the user declined; the message names the packages or the version.
    subprocess.CalledProcessError
        When pip fails (Slicer shows pip's output).
    """
    if sys.version_info < MINIMUM_PYTHON:
        found = ".".join(map(str, sys.version_info[:2]))
        raise DependencyError(
            f"{requester} needs 3D Slicer {MINIMUM_SLICER} or later: this Slicer runs Python {found}, "
            f"the OncoQI core needs Python {'.'.join(map(str, MINIMUM_PYTHON))} or later."
        )
    missing = missing_requirements(requirements)
    if not missing:
        return
    import slicer

    testing, headless = _application_mode()
    if testing:
        raise DependencyError(
            f"{requester} needs these Python packages, which testing mode does not install: "
            f"{', '.join(missing)} (install them with PythonSlicer -m pip install first)."
        )
    prompt = not headless
    if headless:
        logging.warning(
            "%s: installing missing Python packages without asking (no main window): %s", requester, ", ".join(missing)
        )
    if _has_slicer_packaging():
        import slicer.packaging

        slicer.packaging.pip_ensure(
            missing, requester=requester, prompt_install=prompt, prompt_restart=prompt, show_progress=prompt
        )
        return
    if prompt and not slicer.util.confirmOkCancelDisplay(
        f"{requester} needs these Python packages, which will be downloaded and installed now:\n\n"
        + "\n".join(missing),
        windowTitle=requester,
    ):
        raise DependencyError(f"{requester}: installation of {', '.join(missing)} declined.")
    slicer.util.pip_install(missing)


def ensure_core(requester: str) -> None:
    """Make the bundled ``oncoqi`` core importable: its requirements, installed if missing.

    Call it right before the first ``import oncoqi`` of an action (Apply, a Logic method), not at
    import: Slicer must be able to load the module, and show it, before anything is installed.
    See :func:`ensure_requirements` for the errors.
    """
    ensure_requirements(read_requirements(), requester)
