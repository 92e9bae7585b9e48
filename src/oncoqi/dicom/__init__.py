"""DICOM input for OncoQI: find series in folder trees, load them with exact geometry, check them.

Main entry points
-----------------
:func:`scan_series`
    Walk a folder tree and group DICOM files into :class:`SeriesInfo` records.
:func:`load_series` / :func:`read_image`
    Load one series (or an NRRD/NIfTI/MetaImage file) into an :class:`oncoqi.Image`.
:func:`check_series`
    Report every geometry and file defect of a series.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Where each public name lives. The package imports a sub-module only when one of its names is
#: first used, so that ``oncoqi.dicom.codes`` (the SUV codes the PET family's enums take) loads
#: nothing else: the DICOM plugin reads SUV factors in Slicer's DICOM browser with only what Slicer
#: bundles (numpy, pydicom, SimpleITK), before the core's other requirements are installed.
_LOCATIONS = {
    "SeriesCheck": "check",
    "check_series": "check",
    "SeriesGeometry": "geometry",
    "SliceHeader": "geometry",
    "analyse_slices": "geometry",
    "load_series": "load",
    "read_image": "load",
    "read_label_file": "load",
    "read_volume_file": "load",
    "ScanResult": "scan",
    "SeriesInfo": "scan",
    "scan_series": "scan",
    "series_from_files": "scan",
}


def __getattr__(name: str) -> Any:
    if name not in _LOCATIONS:
        raise AttributeError(f"module 'oncoqi.dicom' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"oncoqi.dicom.{_LOCATIONS[name]}"), name)
    globals()[name] = value
    return value


__all__ = [
    "ScanResult",
    "SeriesCheck",
    "SeriesGeometry",
    "SeriesInfo",
    "SliceHeader",
    "analyse_slices",
    "check_series",
    "load_series",
    "read_image",
    "read_label_file",
    "read_volume_file",
    "scan_series",
    "series_from_files",
]
