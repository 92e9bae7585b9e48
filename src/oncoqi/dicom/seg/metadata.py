"""What a DICOM Segmentation says about its segments, as our JSON and as dcmqi's JSON.

A :class:`SegmentationMetadata` holds the document attributes (series description and number,
content creator, ...) and one :class:`SegmentDescription` per segment: its label, the coded
category/type/modifier and anatomic region, the algorithm that produced it, its display colour
and tracking identifiers, and *where its voxels are*: the index of the label image
(``labels_file``) and the voxel value in it (``label_value``). Several segments may share one
label image (different values) and overlapping segments simply live in different label images.

Two JSON spellings are read:

* ours (``{"segments": [...]}``), the form :meth:`SegmentationMetadata.to_json` writes, e.g.::

    {"series_description": "Lung lesions", "content_creator": "Doe^Jane",
     "segments": [{"label": "GTV", "labels_file": 0, "label_value": 1,
                   "category": "morphologically_abnormal_structure", "type": "neoplasm",
                   "anatomic_region": "lung", "anatomic_region_modifier": "left",
                   "algorithm": {"type": "AUTOMATIC", "name": "OncoQI lung", "version": "0.1"},
                   "color": [230, 25, 75], "tracking_id": "lesion 1"}]}

* dcmqi's ``itkimage2segimage --inputMetadata`` JSON (``{"segmentAttributes": [[...], ...]}``),
  whose outer list is indexed by input file and inner list by label value (``labelID``), so
  that dcmqi users can switch without rewriting their metadata. :meth:`to_dcmqi` writes it back.

Unknown keys are errors in both, as in dcmqi's schema (``additionalProperties: false``): a typo
must not silently drop a code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.coding import Code

from oncoqi.dicom.seg.codes import (
    DEFAULT_COLORS,
    AlgorithmType,
    code_from_json,
    code_to_dcmqi,
    code_to_json,
    first_code,
)
from oncoqi.errors import InputError
from oncoqi.jsonio import load_json_object

_CODE_FIELDS = ("category", "type", "type_modifier", "anatomic_region", "anatomic_region_modifier")
_SEGMENT_KEYS = {
    "label",
    "description",
    "labels_file",
    "label_value",
    "segment_number",
    "algorithm",
    "color",
    "tracking_id",
    "tracking_uid",
    *_CODE_FIELDS,
}
_ALGORITHM_KEYS = {"type", "name", "version", "family"}
_DOCUMENT_KEYS = {
    "segments",
    "series_description",
    "series_number",
    "instance_number",
    "content_label",
    "content_description",
    "content_creator",
    "body_part_examined",
    "clinical_trial_series_id",
    "clinical_trial_time_point_id",
    "clinical_trial_coordinating_center",
    "background",
}

#: dcmqi segment keys and the field of ours each fills (codes handled apart).
_DCMQI_CODE_KEYS = {
    "SegmentedPropertyCategoryCodeSequence": "category",
    "SegmentedPropertyTypeCodeSequence": "type",
    "SegmentedPropertyTypeModifierCodeSequence": "type_modifier",
    "AnatomicRegionSequence": "anatomic_region",
    "AnatomicRegionModifierSequence": "anatomic_region_modifier",
}
_DCMQI_SEGMENT_KEYS = {
    "labelID",
    "SegmentLabel",
    "SegmentDescription",
    "SegmentAlgorithmType",
    "SegmentAlgorithmName",
    "recommendedDisplayRGBValue",
    "RecommendedDisplayCIELabValue",
    "TrackingIdentifier",
    "TrackingUniqueIdentifier",
    "segmentationFileName",
    *_DCMQI_CODE_KEYS,
}
#: dcmqi document keys and the field of ours each fills.
_DCMQI_DOCUMENT_KEYS = {
    "ContentCreatorName": "content_creator",
    "ClinicalTrialSeriesID": "clinical_trial_series_id",
    "ClinicalTrialTimePointID": "clinical_trial_time_point_id",
    "ClinicalTrialCoordinatingCenterName": "clinical_trial_coordinating_center",
    "ContentLabel": "content_label",
    "ContentDescription": "content_description",
    "SeriesDescription": "series_description",
    "SeriesNumber": "series_number",
    "InstanceNumber": "instance_number",
    "BodyPartExamined": "body_part_examined",
}
_DCMQI_IGNORED_KEYS = {"@schema", "segmentAttributesFileMapping"}


def _unknown(given: Mapping[str, Any], known: set[str], where: str) -> None:
    extra = sorted(set(given) - known)
    if extra:
        raise InputError(f"{where}: unknown key(s) {extra}; known keys: {sorted(known)}")


def _int(value: Any, where: str, minimum: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: {value!r} is not an integer") from exc
    if number != value and str(number) != str(value).strip():
        raise InputError(f"{where}: {value!r} is not an integer")
    if number < minimum:
        raise InputError(f"{where}: {number} is below {minimum}")
    return number


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _rgb(value: Any, where: str) -> tuple[int, int, int]:
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise InputError(f"{where}: colour {value!r} must be three integers [r, g, b] in 0-255")
    rgb = tuple(int(round(float(v))) for v in value)
    if any(not 0 <= v <= 255 for v in rgb):
        raise InputError(f"{where}: colour {value!r} has a component outside 0-255")
    return rgb  # type: ignore[return-value]


@dataclass
class SegmentDescription:
    """One segment: what it is, who or what made it, how to show it and where its voxels are.

    Attributes
    ----------
    label
        Segment Label (0062,0005), e.g. ``"GTV"``.
    category, type
        Segmented Property Category (CID 7150) and Type (CID 7151) codes; both required.
    type_modifier, anatomic_region, anatomic_region_modifier
        Optional codes (the region modifier is typically a laterality).
    algorithm_type
        ``"AUTOMATIC"``, ``"SEMIAUTOMATIC"`` or ``"MANUAL"``.
    algorithm_name, algorithm_version, algorithm_family
        The algorithm; its name is required unless MANUAL. With a version, the Segmentation
        Algorithm Identification Sequence is written too (family defaulting by type to
        :data:`~oncoqi.dicom.seg.codes.DEFAULT_ALGORITHM_FAMILY`); without one, only the name is
        written, as dcmqi does.
    description
        Segment Description (0062,0006).
    color
        Recommended display colour, RGB 0-255 (written as CIELab); a default palette colour
        when None.
    tracking_id, tracking_uid
        Tracking ID/UID (0062,0020/0021), carried into the SR measurement groups. The writer
        uses the label as tracking id and generates a UID when they are absent.
    labels_file, label_value
        Which label image (0-based) holds the segment, and with which voxel value.
    segment_number
        Segment Number in a SEG that was read (None before writing).
    """

    label: str
    category: Code
    type: Code
    algorithm_type: str = "MANUAL"
    algorithm_name: str | None = None
    algorithm_version: str | None = None
    algorithm_family: Code | None = None
    type_modifier: Code | None = None
    anatomic_region: Code | None = None
    anatomic_region_modifier: Code | None = None
    description: str | None = None
    color: tuple[int, int, int] | None = None
    tracking_id: str | None = None
    tracking_uid: str | None = None
    labels_file: int = 0
    label_value: int = 1
    segment_number: int | None = None

    def __post_init__(self) -> None:
        where = f"segment {self.label!r}"
        if not self.label or not str(self.label).strip():
            raise InputError("a segment has an empty label")
        try:
            self.algorithm_type = AlgorithmType(str(self.algorithm_type).upper()).value
        except ValueError as exc:
            raise InputError(
                f"{where}: algorithm type {self.algorithm_type!r} is not AUTOMATIC, SEMIAUTOMATIC or MANUAL"
            ) from exc
        if self.algorithm_type != "MANUAL" and not self.algorithm_name:
            raise InputError(f"{where}: an {self.algorithm_type} segment needs the algorithm name")
        for name in ("category", "type"):
            if not isinstance(getattr(self, name), Code):
                raise InputError(f"{where}: the segmented property {name} code is missing")
        if self.color is not None:
            self.color = _rgb(self.color, where)
        if self.label_value < 1 or self.labels_file < 0:
            raise InputError(f"{where}: label value must be >= 1 and labels file index >= 0")

    # -- our JSON -----------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """This segment in our JSON spelling (absent fields left out)."""
        out: dict[str, Any] = {"label": self.label}
        if self.segment_number is not None:
            out["segment_number"] = self.segment_number
        out["labels_file"] = self.labels_file
        out["label_value"] = self.label_value
        for name in _CODE_FIELDS:
            code = getattr(self, name)
            if code is not None:
                out[name] = code_to_json(code)
        algorithm: dict[str, Any] = {"type": self.algorithm_type}
        if self.algorithm_name:
            algorithm["name"] = self.algorithm_name
        if self.algorithm_version:
            algorithm["version"] = self.algorithm_version
        if self.algorithm_family is not None:
            algorithm["family"] = code_to_json(self.algorithm_family)
        out["algorithm"] = algorithm
        for name in ("description", "tracking_id", "tracking_uid"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        if self.color is not None:
            out["color"] = list(self.color)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> SegmentDescription:
        """Parse one segment of our JSON.

        Raises
        ------
        InputError
            For unknown keys, missing or malformed codes, a non-MANUAL segment without an
            algorithm name, or a malformed colour; the message names the segment.
        """
        if not isinstance(data, Mapping):
            raise InputError(f"{where}: a segment must be a JSON object, got {type(data).__name__}")
        label = _text(data.get("label"))
        where = f"{where} ({label!r})" if label else where
        if not label:
            raise InputError(f"{where}: the segment has no 'label'")
        _unknown(data, _SEGMENT_KEYS, where)
        for required in ("category", "type"):
            if required not in data:
                raise InputError(f"{where}: missing the '{required}' code (segmented property {required})")
        codes = {n: code_from_json(data[n], f"{where} {n}") for n in _CODE_FIELDS if data.get(n) is not None}
        algorithm = data.get("algorithm", {"type": "MANUAL"})
        if not isinstance(algorithm, Mapping):
            raise InputError(f"{where}: 'algorithm' must be an object with type/name/version/family")
        _unknown(algorithm, _ALGORITHM_KEYS, f"{where} algorithm")
        family = algorithm.get("family")
        return cls(
            label=label,
            algorithm_type=str(algorithm.get("type", "MANUAL")),
            algorithm_name=_text(algorithm.get("name")),
            algorithm_version=_text(algorithm.get("version")),
            algorithm_family=code_from_json(family, f"{where} algorithm family") if family else None,
            description=_text(data.get("description")),
            color=_rgb(data["color"], where) if data.get("color") is not None else None,
            tracking_id=_text(data.get("tracking_id")),
            tracking_uid=_text(data.get("tracking_uid")),
            labels_file=_int(data.get("labels_file", 0), f"{where} labels_file", 0),
            label_value=_int(data.get("label_value", 1), f"{where} label_value", 1),
            segment_number=(
                _int(data["segment_number"], f"{where} segment_number", 1) if "segment_number" in data else None
            ),
            **codes,
        )

    # -- dcmqi JSON ---------------------------------------------------------------------------
    def to_dcmqi(self) -> dict[str, Any]:
        """This segment as an item of dcmqi's ``segmentAttributes`` inner lists."""
        out: dict[str, Any] = {"labelID": self.label_value, "SegmentLabel": self.label}
        if self.description:
            out["SegmentDescription"] = self.description
        for key, name in _DCMQI_CODE_KEYS.items():
            code = getattr(self, name)
            if code is not None:
                out[key] = code_to_dcmqi(code)
        out["SegmentAlgorithmType"] = self.algorithm_type
        if self.algorithm_name:
            out["SegmentAlgorithmName"] = self.algorithm_name
        if self.color is not None:
            out["recommendedDisplayRGBValue"] = list(self.color)
        if self.tracking_id:
            out["TrackingIdentifier"] = self.tracking_id
        if self.tracking_uid:
            out["TrackingUniqueIdentifier"] = self.tracking_uid
        return out

    @classmethod
    def from_dcmqi(cls, data: Mapping[str, Any], labels_file: int, where: str) -> SegmentDescription:
        """Parse one item of dcmqi's ``segmentAttributes[labels_file]``.

        A missing ``SegmentLabel`` becomes the type's meaning, as DICOM needs a label.

        Raises
        ------
        InputError
            As :meth:`from_json`, with dcmqi's key names in the message.
        """
        if not isinstance(data, Mapping):
            raise InputError(f"{where}: a segment must be a JSON object, got {type(data).__name__}")
        _unknown(data, _DCMQI_SEGMENT_KEYS, where)
        for key in ("labelID", "SegmentedPropertyCategoryCodeSequence", "SegmentedPropertyTypeCodeSequence"):
            if key not in data:
                raise InputError(f"{where}: missing {key} (required by dcmqi's schema)")
        codes = {
            name: code_from_json(data[key], f"{where} {key}")
            for key, name in _DCMQI_CODE_KEYS.items()
            if data.get(key) is not None
        }
        color = data.get("recommendedDisplayRGBValue")
        if color is None and data.get("RecommendedDisplayCIELabValue") is not None:
            color = list(hd.color.CIELabColor.from_dicom_value(data["RecommendedDisplayCIELabValue"]).to_rgb(clip=True))
        return cls(
            label=_text(data.get("SegmentLabel")) or codes["type"].meaning,
            description=_text(data.get("SegmentDescription")),
            algorithm_type=str(data.get("SegmentAlgorithmType", "SEMIAUTOMATIC")),
            algorithm_name=_text(data.get("SegmentAlgorithmName")),
            color=_rgb(color, where) if color is not None else None,
            tracking_id=_text(data.get("TrackingIdentifier")),
            tracking_uid=_text(data.get("TrackingUniqueIdentifier")),
            labels_file=labels_file,
            label_value=_int(data["labelID"], f"{where} labelID", 1),
            **codes,
        )

    # -- DICOM --------------------------------------------------------------------------------
    @classmethod
    def from_dataset(cls, item: Dataset, where: str) -> SegmentDescription:
        """Read one item of a SEG's Segment Sequence (0062,0002).

        Tolerant of what other writers leave out: a missing label becomes ``"Segment N"``, a
        missing algorithm name on a non-MANUAL segment becomes ``"unknown"``.

        Raises
        ------
        InputError
            When the item lacks its Segment Number or category/type codes.
        """
        if "SegmentNumber" not in item:
            raise InputError(f"{where}: Segment Sequence item without Segment Number (0062,0004)")
        number = int(item.SegmentNumber)
        where = f"{where} segment {number}"
        category = first_code(item, "SegmentedPropertyCategoryCodeSequence", where)
        prop_type = first_code(item, "SegmentedPropertyTypeCodeSequence", where)
        if category is None or prop_type is None:
            raise InputError(f"{where}: missing Segmented Property Category or Type Code Sequence")
        type_modifier = first_code(
            item.SegmentedPropertyTypeCodeSequence[0], "SegmentedPropertyTypeModifierCodeSequence", where
        )
        region_item = item.get("AnatomicRegionSequence")
        region = first_code(item, "AnatomicRegionSequence", where)
        region_modifier = first_code(region_item[0], "AnatomicRegionModifierSequence", where) if region_item else None
        algorithm_type = str(item.get("SegmentAlgorithmType", "MANUAL") or "MANUAL")
        ident = item.get("SegmentationAlgorithmIdentificationSequence")
        version = family = None
        name = _text(item.get("SegmentAlgorithmName"))
        if ident:
            version = _text(ident[0].get("AlgorithmVersion"))
            family = first_code(ident[0], "AlgorithmFamilyCodeSequence", where)
            name = name or _text(ident[0].get("AlgorithmName"))
        if algorithm_type != "MANUAL" and not name:
            name = "unknown"
        lab = item.get("RecommendedDisplayCIELabValue")
        return cls(
            label=_text(item.get("SegmentLabel")) or f"Segment {number}",
            description=_text(item.get("SegmentDescription")),
            category=category,
            type=prop_type,
            type_modifier=type_modifier,
            anatomic_region=region,
            anatomic_region_modifier=region_modifier,
            algorithm_type=algorithm_type,
            algorithm_name=name,
            algorithm_version=version,
            algorithm_family=family,
            color=hd.color.CIELabColor.from_dicom_value(list(lab)).to_rgb(clip=True) if lab else None,
            tracking_id=_text(item.get("TrackingID")),
            tracking_uid=_text(item.get("TrackingUID")),
            label_value=number,  # until the reader packs the segments into label images
            segment_number=number,
        )


@dataclass
class SegmentationMetadata:
    """The segments of one SEG and its document attributes.

    Attributes
    ----------
    segments
        In segment-number order (segment ``n`` is ``segments[n - 1]`` when writing).
    series_description, series_number, instance_number
        General Series / General Image attributes of the SEG.
    content_label, content_description, content_creator
        Content Identification (content label is a CS: upper case, at most 16 characters).
    body_part_examined
        Copied into the SEG when given.
    clinical_trial_series_id, clinical_trial_time_point_id, clinical_trial_coordinating_center
        Clinical Trial Series/Study attributes that dcmqi writes; written when given.
    background
        A label-map SEG's segment 0, the background, as its Segment Label (and ": " and its
        Segment Description when it has one). Read so that nothing the SEG says is lost; not written.
    """

    segments: list[SegmentDescription]
    series_description: str = "Segmentation"
    series_number: int = 300
    instance_number: int = 1
    content_label: str = "SEGMENTATION"
    content_description: str | None = None
    content_creator: str | None = None
    body_part_examined: str | None = None
    clinical_trial_series_id: str | None = None
    clinical_trial_time_point_id: str | None = None
    clinical_trial_coordinating_center: str | None = None
    background: str | None = None

    def __post_init__(self) -> None:
        if not self.segments:
            raise InputError("the segmentation metadata describes no segment")
        seen: dict[tuple[int, int], str] = {}
        for seg in self.segments:
            key = (seg.labels_file, seg.label_value)
            if key in seen:
                raise InputError(
                    f"segments {seen[key]!r} and {seg.label!r} both claim label value {key[1]} of labels file {key[0]}"
                )
            seen[key] = seg.label
        label = self.content_label.strip().upper().replace(" ", "_")
        if not label or len(label) > 16:
            raise InputError(f"content label {self.content_label!r} must be 1-16 characters (DICOM CS)")
        self.content_label = label

    @property
    def number_of_label_files(self) -> int:
        """How many label images the segments refer to (highest ``labels_file`` + 1)."""
        return max(s.labels_file for s in self.segments) + 1

    def with_defaults(self) -> SegmentationMetadata:
        """A copy where every segment has a colour, a tracking id and a tracking UID.

        The tracking id defaults to the label and the UID is generated, so that the SEG and
        the SR written from it carry the same identifiers.
        """
        segments = [
            replace(
                seg,
                color=seg.color or DEFAULT_COLORS[n % len(DEFAULT_COLORS)],
                tracking_id=seg.tracking_id or seg.label,
                tracking_uid=seg.tracking_uid or hd.UID(),
            )
            for n, seg in enumerate(self.segments)
        ]
        return replace(self, segments=segments)

    # -- our JSON -----------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The metadata in our JSON spelling."""
        out: dict[str, Any] = {
            "series_description": self.series_description,
            "series_number": self.series_number,
            "instance_number": self.instance_number,
            "content_label": self.content_label,
        }
        for name in (
            "content_description",
            "content_creator",
            "body_part_examined",
            "clinical_trial_series_id",
            "clinical_trial_time_point_id",
            "clinical_trial_coordinating_center",
            "background",
        ):
            if getattr(self, name):
                out[name] = getattr(self, name)
        out["segments"] = [s.to_json() for s in self.segments]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SegmentationMetadata:
        """Parse our JSON (``{"segments": [...], ...}``).

        Raises
        ------
        InputError
            For unknown keys or any malformed segment.
        """
        _unknown(data, _DOCUMENT_KEYS, "segmentation metadata")
        segments = data.get("segments")
        if not isinstance(segments, list) or not segments:
            raise InputError("segmentation metadata: 'segments' must be a non-empty list")
        parsed = [SegmentDescription.from_json(s, f"segments[{n}]") for n, s in enumerate(segments)]
        return cls(segments=parsed, **_document_fields(data, {k: k for k in _DOCUMENT_KEYS - {"segments"}}))

    # -- dcmqi JSON ---------------------------------------------------------------------------
    def to_dcmqi(self) -> dict[str, Any]:
        """The metadata as dcmqi's ``itkimage2segimage --inputMetadata`` JSON."""
        out: dict[str, Any] = {
            "SeriesDescription": self.series_description,
            "SeriesNumber": str(self.series_number),
            "InstanceNumber": str(self.instance_number),
            "ContentLabel": self.content_label,
        }
        for key, name in _DCMQI_DOCUMENT_KEYS.items():
            value = getattr(self, name)
            if value and key not in out:
                out[key] = str(value)
        files: list[list[dict[str, Any]]] = [[] for _ in range(self.number_of_label_files)]
        for seg in self.segments:
            files[seg.labels_file].append(seg.to_dcmqi())
        out["segmentAttributes"] = files
        return out

    @classmethod
    def from_dcmqi(cls, data: Mapping[str, Any]) -> SegmentationMetadata:
        """Parse dcmqi's segmentation JSON (``segmentAttributes`` is a list per label file).

        Raises
        ------
        InputError
            For unknown keys, a ``segmentAttributes`` that is not a list of lists, or any
            malformed segment.
        """
        _unknown(data, set(_DCMQI_DOCUMENT_KEYS) | _DCMQI_IGNORED_KEYS | {"segmentAttributes"}, "dcmqi metadata")
        files = data.get("segmentAttributes")
        if not isinstance(files, list) or not files or not all(isinstance(f, list) for f in files):
            raise InputError(
                "dcmqi metadata: 'segmentAttributes' must be a list (one per label file) of lists "
                "(one per label value) of segments"
            )
        segments = [
            SegmentDescription.from_dcmqi(s, n, f"segmentAttributes[{n}][{m}]")
            for n, per_file in enumerate(files)
            for m, s in enumerate(per_file)
        ]
        return cls(segments=segments, **_document_fields(data, _DCMQI_DOCUMENT_KEYS))

    # -- DICOM --------------------------------------------------------------------------------
    @classmethod
    def from_dataset(cls, ds: Dataset, where: str) -> SegmentationMetadata:
        """Read the segment descriptions and document attributes of a SEG dataset.

        Raises
        ------
        InputError
            When the Segment Sequence is missing or empty, or an item is unusable.
        """
        items = ds.get("SegmentSequence")
        if not items:
            raise InputError(f"{where}: no Segment Sequence (0062,0002); not a usable segmentation")
        segments = [
            SegmentDescription.from_dataset(item, where) for item in items if int(item.get("SegmentNumber", 1)) > 0
        ]
        background = None  # label-map SEGs may describe the background as segment 0
        for item in items:
            if int(item.get("SegmentNumber", 1)) == 0:
                label, description = _text(item.get("SegmentLabel")), _text(item.get("SegmentDescription"))
                background = ": ".join(part for part in (label or "background", description) if part)
        creator = ds.get("ContentCreatorName")
        fields = {
            "series_description": _text(ds.get("SeriesDescription")) or "Segmentation",
            "series_number": int(ds.get("SeriesNumber") or 0),
            "instance_number": int(ds.get("InstanceNumber") or 1),
            "content_label": (_text(ds.get("ContentLabel")) or "SEGMENTATION")[:16],
            "content_description": _text(ds.get("ContentDescription")),
            "content_creator": str(creator) if creator else None,
            "body_part_examined": _text(ds.get("BodyPartExamined")),
            "clinical_trial_series_id": _text(ds.get("ClinicalTrialSeriesID")),
            "clinical_trial_time_point_id": _text(ds.get("ClinicalTrialTimePointID")),
            "clinical_trial_coordinating_center": _text(ds.get("ClinicalTrialCoordinatingCenterName")),
            "background": background,
        }
        return cls(segments=segments, **fields)


def _document_fields(data: Mapping[str, Any], keys: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, name in keys.items():
        value = _text(data.get(key))
        if value is None:
            continue
        out[name] = _int(value, key, 0) if name in ("series_number", "instance_number") else value
    return out


def load_metadata(source: str | os.PathLike | Mapping[str, Any]) -> SegmentationMetadata:
    """Read segmentation metadata in our JSON or dcmqi's, telling them apart by their keys.

    Parameters
    ----------
    source
        A JSON file path, or the already-parsed object.

    Returns
    -------
    SegmentationMetadata
        With ``labels_file``/``label_value`` of every segment as the file says.

    Raises
    ------
    InputError
        When the file is missing or not JSON, or the object is neither spelling (the message
        says which keys each needs), or any segment is malformed.
    """
    data, name = load_json_object(source, "metadata")
    try:
        if "segmentAttributes" in data:
            return SegmentationMetadata.from_dcmqi(data)
        if "segments" in data:
            return SegmentationMetadata.from_json(data)
    except InputError as exc:
        raise InputError(f"{name}: {exc}") from exc
    raise InputError(
        f"{name}: neither OncoQI segmentation metadata (a 'segments' list) nor dcmqi metadata "
        "(a 'segmentAttributes' list of lists)"
    )


__all__ = ["SegmentDescription", "SegmentationMetadata", "load_metadata"]
