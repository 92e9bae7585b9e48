"""How the lung tumour results are named wherever they are shown: tables, SEG segments, Slicer.

One place for the names, so that the SEG written by the report, the batch table and the Slicer
module call the same lesion the same way.
"""

from __future__ import annotations

#: Name credited in the SEG and SR for the automatic lesions.
ALGORITHM_NAME = "OncoQI LungTumorSegmentation"


def lesion_name(label: int) -> str:
    """The segment label shown to readers: ``GTV-1`` for the primary, ``Lesion n`` otherwise."""
    return "GTV-1" if label == 1 else f"Lesion {label}"
