"""Coded concepts and enumerations of DICOM Segmentation objects, and how codes travel as JSON.

Codes are :class:`pydicom.sr.coding.Code` objects throughout (highdicom accepts them as they
are). In JSON a code is written ``{"value": ..., "scheme": ..., "meaning": ...}``; the dcmqi
spelling ``{"CodeValue": ..., "CodingSchemeDesignator": ..., "CodeMeaning": ...}`` is accepted
too, and so is the name of one of the :data:`NAMED_CODES` (``"neoplasm"``, ``"lung"``, ...),
which saves users from copying SNOMED CT numbers for the terms oncology reports use most.

Codes read from files are normalised: retired SNOMED-RT codes (scheme ``SRT``, still written by
older dcmqi and PET-IndiC, e.g. ``R-00317`` "Mean") become their SNOMED CT equivalent (``SCT``
``373098007``) through pydicom's official mapping, so that consumers compare one spelling only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr._snomed_dict import mapping as _SNOMED_MAPPING
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from oncoqi.errors import InputError

#: Segment Algorithm Type (0062,0008) values: AUTOMATIC, SEMIAUTOMATIC, MANUAL.
AlgorithmType = hd.seg.SegmentAlgorithmTypeValues

#: Terms that JSON may name instead of spelling out the code (keys are case-insensitive).
NAMED_CODES: dict[str, Code] = {
    # Segmented Property Category (CID 7150)
    "tissue": codes.SCT.Tissue,
    "anatomical_structure": Code("123037004", "SCT", "Anatomical Structure"),
    "morphologically_abnormal_structure": codes.SCT.MorphologicallyAbnormalStructure,
    # Segmented Property Type / Finding (CID 7151, 7159)
    "neoplasm": codes.SCT.Neoplasm,
    "primary_neoplasm": Code("86049000", "SCT", "Neoplasm, Primary"),
    "secondary_neoplasm": Code("14799000", "SCT", "Neoplasm, Secondary"),
    "mass": codes.SCT.Mass,
    "nodule": Code("27925004", "SCT", "Nodule"),
    "lymph_node": Code("59441001", "SCT", "Lymph node"),
    # Anatomic regions (CID 4)
    "lung": codes.SCT.Lung,
    "liver": Code("10200004", "SCT", "Liver"),
    "thorax": Code("51185008", "SCT", "Thorax"),
    "mediastinum": Code("72410000", "SCT", "Mediastinum"),
    # Laterality (CID 244)
    "left": codes.SCT.Left,
    "right": codes.SCT.Right,
    "bilateral": codes.SCT.Bilateral,
}

#: Algorithm family (CID 7162) written when a version is given without a family, by type.
DEFAULT_ALGORITHM_FAMILY: dict[str, Code] = {
    "AUTOMATIC": codes.DCM.ArtificialIntelligence,
    "SEMIAUTOMATIC": codes.DCM.ManualProcessing,
}

#: Recommended display colours (RGB) given in segment order when the metadata names none.
DEFAULT_COLORS: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
)

_OUR_KEYS = ("value", "scheme", "meaning")
_DCMQI_KEYS = ("CodeValue", "CodingSchemeDesignator", "CodeMeaning")


def normalise_code(code: Code) -> Code:
    """Replace a retired SNOMED-RT code (``SRT``) by its SNOMED CT (``SCT``) equivalent.

    Codes of any other scheme, and SRT codes without an equivalent, are returned unchanged.
    """
    if code.scheme_designator == "SRT":
        sct = _SNOMED_MAPPING["SRT"].get(code.value)
        if sct is not None:
            return Code(sct, "SCT", code.meaning)
    return code


def code_from_json(value: Any, where: str) -> Code:
    """Parse a code written in JSON in any of the accepted spellings.

    Parameters
    ----------
    value
        ``{"value", "scheme", "meaning"}``, the dcmqi ``{"CodeValue", "CodingSchemeDesignator",
        "CodeMeaning"}``, or a key of :data:`NAMED_CODES`.
    where
        What the code is (e.g. ``"segment 2 'GTV' type"``), for the error message.

    Raises
    ------
    InputError
        When the value is none of these, naming ``where`` and the accepted forms.
    """
    if isinstance(value, str):
        named = NAMED_CODES.get(value.strip().lower().replace(" ", "_"))
        if named is None:
            raise InputError(
                f"{where}: {value!r} is not a known code name; give {{value, scheme, meaning}} "
                f"or one of {sorted(NAMED_CODES)}"
            )
        return named
    if isinstance(value, Mapping):
        for keys in (_OUR_KEYS, _DCMQI_KEYS):
            if set(value) == set(keys):
                parts = [str(value[k]).strip() for k in keys]
                if not all(parts):
                    raise InputError(f"{where}: code {dict(value)} has an empty field")
                return normalise_code(Code(*parts))
    raise InputError(
        f'{where}: {value!r} is not a code; write {{"value", "scheme", "meaning"}} '
        f"(or dcmqi's CodeValue/CodingSchemeDesignator/CodeMeaning) or one of {sorted(NAMED_CODES)}"
    )


def code_to_json(code: Code) -> dict[str, str]:
    """The code in our JSON spelling."""
    return {"value": code.value, "scheme": code.scheme_designator, "meaning": code.meaning}


def code_to_dcmqi(code: Code) -> dict[str, str]:
    """The code in dcmqi's JSON spelling."""
    return {"CodeValue": code.value, "CodingSchemeDesignator": code.scheme_designator, "CodeMeaning": code.meaning}


def code_from_item(item: Dataset, where: str) -> Code:
    """Read a code sequence item (normalised), accepting Long/URN code values as well.

    Raises
    ------
    InputError
        When the item has no code value or no scheme designator.
    """
    value = item.get("CodeValue") or item.get("LongCodeValue") or item.get("URNCodeValue")
    scheme = item.get("CodingSchemeDesignator")
    if not value or not scheme:
        raise InputError(f"{where}: code item without CodeValue or CodingSchemeDesignator")
    return normalise_code(Code(str(value), str(scheme), str(item.get("CodeMeaning", ""))))


def first_code(ds: Dataset, keyword: str, where: str) -> Code | None:
    """The first code of sequence ``keyword`` in ``ds``, or None when absent or empty."""
    seq = ds.get(keyword)
    if not seq:
        return None
    return code_from_item(seq[0], f"{where} {keyword}")
