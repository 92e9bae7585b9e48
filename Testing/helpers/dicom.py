"""DICOM helpers of the tests: the external validators (dicom3tools, dcmqi, dcmtk) and the
rotation of an oblique acquisition."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """Path of an external validator, or skip the test saying how to get it."""
    found = shutil.which(name) or (str(BIN / name) if (BIN / name).exists() else None)
    if found is None:
        hint = "pip install dcmqi" if name in ("segimage2itkimage", "itkimage2segimage") else "apt install dicom3tools"
        pytest.skip(f"{name} is not installed ({hint})")
    return found


def rotation(ax: float, ay: float, az: float) -> np.ndarray:
    """Rotation matrix from angles in degrees about x, y, z (an oblique acquisition)."""
    a, b, c = np.radians([ax, ay, az])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx
