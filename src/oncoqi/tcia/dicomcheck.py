"""Check that a downloaded file is a complete DICOM instance and read the UIDs that place it.

Every file of a download is checked (:func:`oncoqi.tcia.download.verify_series_files`), so the check
must be both real and cheap. Reading the header with pydicom costs about 0.5 ms a file, holding the
GIL, which made it the largest single cost of verifying a series on a fast link; it also accepts a
truncated file without complaint (``dcmread`` of the first 200 bytes of a CT slice succeeds). This
module walks the element structure of the bytes instead, without building a dataset:

* the 128-byte preamble and ``DICM``, and the file meta group with its Transfer Syntax UID;
* every data element, nested sequences and items included, must lie within the file, so a file cut
  short anywhere fails (an element whose value runs past the end, or stray bytes after the last one);
* native Pixel Data (also Float and Double Float Pixel Data) must hold at least
  Rows x Columns x SamplesPerPixel x NumberOfFrames x BitsAllocated bits; encapsulated (compressed)
  Pixel Data must be a Basic Offset Table followed by at least one non-empty fragment and its
  sequence delimiter;
* the SOP Instance, Series Instance and Study Instance UIDs and the Patient ID are read.

Little-endian syntaxes (implicit and explicit VR, and every compressed syntax) are walked; a file
whose first element contradicts its declared implicit/explicit encoding is read the way pydicom
reads it. Big-endian and deflated files, which the walk does not decode, are read fully with
pydicom and get the same Pixel Data check (a cut inside their header may go unnoticed there).
Identity values that are not plain printable ASCII (another character set, several values) are
decoded by pydicom too, so they compare exactly as before.
"""

from __future__ import annotations

import io
import mmap
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError

from oncoqi.dicom.check import expected_pixel_bytes
from oncoqi.errors import OncoQIError

IMPLICIT_VR_LE = "1.2.840.10008.1.2"
EXPLICIT_VR_BE = "1.2.840.10008.1.2.2"
DEFLATED_EXPLICIT_VR_LE = "1.2.840.10008.1.2.1.99"

#: VRs whose explicit encoding has two reserved bytes and a 4-byte length.
_LONG_VRS = frozenset(b"OB OD OF OL OV OW SQ SV UC UN UR UT UV".split())
_SHORT_VRS = frozenset(b"AE AS AT CS DA DS DT FL FD IS LO LT PN SH SL SS ST TM UI UL US".split())
_VRS = _LONG_VRS | _SHORT_VRS
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_PIXEL_TAGS = frozenset((0x7FE00008, 0x7FE00009, 0x7FE00010))
_MAX_DEPTH = 64

SOP_UID, PATIENT_ID, STUDY_UID, SERIES_UID = 0x00080018, 0x00100020, 0x0020000D, 0x0020000E
SAMPLES, FRAMES, ROWS, COLUMNS, BITS = 0x00280002, 0x00280008, 0x00280010, 0x00280011, 0x00280100
_IDENTITY = (SOP_UID, SERIES_UID, STUDY_UID, PATIENT_ID)  # the order of InstanceHeader
_WANTED = frozenset((*_IDENTITY, SAMPLES, FRAMES, ROWS, COLUMNS, BITS))
_KEYWORDS = {SOP_UID: "SOPInstanceUID", PATIENT_ID: "PatientID", STUDY_UID: "StudyInstanceUID"}
_KEYWORDS[SERIES_UID] = "SeriesInstanceUID"

_TAG = struct.Struct("<HH")
_TAG_LENGTH = struct.Struct("<HHL")
_SHORT_LENGTH = struct.Struct("<H")
_LONG_LENGTH = struct.Struct("<L")
_PLAIN = re.compile(rb"[\x20-\x5b\x5d-\x7e]*")  # printable ASCII without the value separator


class DicomCheckError(OncoQIError):
    """The bytes are not a complete DICOM instance."""


class _NotWalked(Exception):
    """The walk does not decode this encoding; pydicom reads the file instead."""


@dataclass(frozen=True)
class InstanceHeader:
    """What places and identifies one instance (empty strings for absent values)."""

    sop_uid: str
    series_uid: str
    study_uid: str
    patient_id: str


def _truncated(what: str, pos: int, need: int, left: int) -> DicomCheckError:
    return DicomCheckError(f"cut short: {what} at byte {pos} needs {need} bytes, {max(left, 0)} remain")


def _element(buf: bytes | mmap.mmap, pos: int, explicit: bool) -> tuple[int, bytes | None, int, int]:
    """Tag, VR (explicit only), value length and value offset of the element at ``pos``."""
    size = len(buf)
    if pos + 8 > size:
        raise _truncated("an element header", pos, 8, size - pos)
    group, elem = _TAG.unpack_from(buf, pos)
    tag = group << 16 | elem
    if not explicit or group == 0xFFFE:
        return tag, None, _LONG_LENGTH.unpack_from(buf, pos + 4)[0], pos + 8
    vr = buf[pos + 4 : pos + 6]
    if vr in _SHORT_VRS:
        return tag, vr, _SHORT_LENGTH.unpack_from(buf, pos + 6)[0], pos + 8
    if vr not in _LONG_VRS:
        raise DicomCheckError(f"element ({group:04X},{elem:04X}) at byte {pos} has no valid VR ({vr!r})")
    if pos + 12 > size:
        raise _truncated("an element header", pos, 12, size - pos)
    return tag, vr, _LONG_LENGTH.unpack_from(buf, pos + 8)[0], pos + 12


def _item_header(buf: bytes | mmap.mmap, pos: int, what: str) -> tuple[int, int, int]:
    """Tag, length and value offset of the item or delimiter (always implicit VR) at ``pos``."""
    if pos + 8 > len(buf):
        raise _truncated(what, pos, 8, len(buf) - pos)
    group, elem, length = _TAG_LENGTH.unpack_from(buf, pos)
    return group << 16 | elem, length, pos + 8


def _items(buf: bytes | mmap.mmap, pos: int, explicit: bool, depth: int) -> int:
    """Skip an undefined-length sequence starting at ``pos``; returns the offset after its delimiter."""
    if depth > _MAX_DEPTH:
        raise DicomCheckError(f"sequences nested more than {_MAX_DEPTH} deep")
    size = len(buf)
    while True:
        tag, length, pos = _item_header(buf, pos, "a sequence item")
        if tag == _SEQUENCE_END:
            return pos
        if tag != _ITEM:
            found = f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
            raise DicomCheckError(f"expected a sequence item at byte {pos - 8}, found {found}")
        if length == _UNDEFINED:
            pos = _walk(buf, pos, explicit, None, depth + 1)
        elif pos + length > size:
            raise _truncated("a sequence item", pos, length, size - pos)
        else:
            pos += length


def _fragments(buf: bytes | mmap.mmap, pos: int) -> tuple[int, int, int]:
    """Walk encapsulated Pixel Data; returns the offset after it, the fragment count and their bytes."""
    size = len(buf)
    count = total = 0
    while True:
        tag, length, pos = _item_header(buf, pos, "a Pixel Data fragment")
        if tag == _SEQUENCE_END:
            return pos, count - 1, total  # the first item is the Basic Offset Table
        if tag != _ITEM or length == _UNDEFINED:
            raise DicomCheckError(f"encapsulated Pixel Data has a bad item at byte {pos - 8}")
        if pos + length > size:
            raise _truncated("a Pixel Data fragment", pos, length, size - pos)
        if count:
            total += length
        count += 1
        pos += length


def _walk(buf: bytes | mmap.mmap, pos: int, explicit: bool, found: dict[int, object] | None, depth: int) -> int:
    """Walk the data elements from ``pos``: to the end of ``buf`` at the top level (``found`` given,
    which receives the wanted values and the Pixel Data description), else to an item delimiter."""
    size = len(buf)
    while pos < size or found is None:
        tag, vr, length, pos = _element(buf, pos, explicit)
        if tag == _ITEM_END and found is None:
            return pos
        if tag >> 16 == 0xFFFE:
            raise DicomCheckError(f"unexpected item tag {tag:08X} at byte {pos - 8}")
        if length == _UNDEFINED:
            if tag in _PIXEL_TAGS and found is not None:
                pos, count, total = _fragments(buf, pos)
                found[tag] = (True, count, total)
            elif vr is None or vr == b"SQ" or vr == b"UN":  # UN of undefined length: implicit VR inside
                pos = _items(buf, pos, explicit and vr == b"SQ", depth)
            else:
                raise DicomCheckError(f"element {tag:08X} ({vr.decode()}) has an undefined length")
            continue
        if pos + length > size:
            raise _truncated(f"element {tag:08X}", pos, length, size - pos)
        if found is not None:
            if tag in _WANTED:
                found[tag] = buf[pos : pos + length]
            elif tag in _PIXEL_TAGS:
                found[tag] = (False, 1, length)
        pos += length
    return pos


def _meta(buf: bytes | mmap.mmap) -> tuple[str, int]:
    """The Transfer Syntax UID and the offset of the dataset after the file meta group."""
    if len(buf) < 132 or buf[128:132] != b"DICM":
        raise DicomCheckError("no DICOM preamble ('DICM' at byte 128)")
    pos = 132
    syntax = None
    size = len(buf)
    while pos + 8 <= size and _TAG.unpack_from(buf, pos)[0] == 0x0002:
        tag, _, length, value = _element(buf, pos, True)
        if length == _UNDEFINED or value + length > size:
            raise _truncated("the file meta information", value, length, size - value)
        if tag == 0x00020010:
            syntax = bytes(buf[value : value + length]).rstrip(b"\0 ").decode("ascii", "replace")
        pos = value + length
    if not syntax:
        raise DicomCheckError("the file meta information has no Transfer Syntax UID")
    return syntax, pos


def _us(found: dict[int, object], tag: int) -> int | None:
    value = found.get(tag)
    if value is None:
        return None
    if not isinstance(value, bytes) or len(value) != 2:
        raise DicomCheckError(f"{tag:08X} is not one unsigned short")
    return _SHORT_LENGTH.unpack(value)[0]


def _check_pixels(
    pixels: tuple[bool, int, int] | None,
    rows: int | None,
    columns: int | None,
    samples: int,
    frames: int,
    bits: int | None,
) -> None:
    """Pixel Data (encapsulated, fragment count, value bytes) against what the image attributes need."""
    if pixels is None:
        return
    encapsulated, count, length = pixels
    if encapsulated:
        if count < 1 or length == 0:
            raise DicomCheckError("encapsulated Pixel Data holds no fragment")
        return
    if rows is None or columns is None or bits is None:
        raise DicomCheckError("Pixel Data without Rows, Columns or BitsAllocated")
    need = expected_pixel_bytes(rows, columns, samples, frames, bits)
    if length < need:
        raise DicomCheckError(
            f"Pixel Data is {length} bytes; {rows} x {columns} x {samples} samples x {frames} frames "
            f"at {bits} bits need {need}"
        )


def _frames(value: object) -> int:
    if value is None:
        return 1
    text = bytes(value).strip(b"\0 ") if isinstance(value, bytes) else str(value).strip()
    if not text:
        return 1
    try:
        return int(text)
    except ValueError:
        raise DicomCheckError(f"NumberOfFrames {text!r} is not an integer") from None


def _pydicom_header(data: bytes, check_pixels: bool) -> InstanceHeader:
    """Read with pydicom (syntaxes the walk does not decode, or values it does not decode)."""
    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=not check_pixels)
        if check_pixels:
            pixels = next((ds[t] for t in sorted(_PIXEL_TAGS) if t in ds), None)
            described = None
            if pixels is not None:  # a compressed value holds its items: only "not empty" is checked
                described = (bool(ds.file_meta.TransferSyntaxUID.is_compressed), 1, len(pixels.value or b""))
            samples = ds.get("SamplesPerPixel", 1) or 1
            _check_pixels(
                described,
                ds.get("Rows"),
                ds.get("Columns"),
                samples,
                _frames(ds.get("NumberOfFrames")),
                ds.get("BitsAllocated"),
            )
        return InstanceHeader(*(str(ds.get(_KEYWORDS[t], "")) for t in _IDENTITY))
    except InvalidDicomError as exc:
        raise DicomCheckError(f"not DICOM ({exc})") from exc
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError, struct.error) as exc:
        raise DicomCheckError(f"unreadable ({exc})") from exc


def inspect_instance(buf: bytes | mmap.mmap) -> InstanceHeader:
    """Check that ``buf`` is one complete DICOM instance (see the module docstring) and read its UIDs.

    Raises
    ------
    DicomCheckError
        Saying what is wrong (not DICOM, cut short, Pixel Data too short, ...).
    """
    syntax, pos = _meta(buf)
    if syntax in (EXPLICIT_VR_BE, DEFLATED_EXPLICIT_VR_LE):
        return _pydicom_header(bytes(buf), check_pixels=True)
    explicit = syntax != IMPLICIT_VR_LE
    if pos + 6 <= len(buf):  # what pydicom does with a file whose encoding contradicts its syntax
        explicit = buf[pos + 4 : pos + 6] in _VRS
    found: dict[int, object] = {}
    try:
        _walk(buf, pos, explicit, found, 0)
    except RecursionError:
        raise DicomCheckError("sequences nested too deep") from None
    pixels = next((found[t] for t in sorted(_PIXEL_TAGS) if t in found), None)
    samples = _us(found, SAMPLES)
    _check_pixels(
        pixels, _us(found, ROWS), _us(found, COLUMNS), samples or 1, _frames(found.get(FRAMES)), _us(found, BITS)
    )  # type: ignore[arg-type]
    values = [found.get(t, b"") for t in _IDENTITY]
    stripped = [bytes(v).rstrip(b"\0 ") for v in values]  # type: ignore[arg-type]
    if not all(_PLAIN.fullmatch(v) for v in stripped):
        return _pydicom_header(bytes(buf), check_pixels=False)
    return InstanceHeader(*(v.decode("ascii") for v in stripped))


#: The outcome of checking one file. A failure is kept, not raised, where the check runs during
#: extraction: it must be reported only after the archive's own checks (MD5, CRC), because a damaged
#: transfer is retried while a file that is not DICOM in an intact archive is not.
InstanceCheck = InstanceHeader | DicomCheckError


def check_instance(buf: bytes | mmap.mmap) -> InstanceCheck:
    """:func:`inspect_instance` of ``buf``, with a failure returned instead of raised."""
    try:
        return inspect_instance(buf)
    except DicomCheckError as exc:
        return exc


def inspect_file(path: Path) -> InstanceHeader:
    """:func:`inspect_instance` of a file, mapped rather than read (only the headers are touched).

    Raises
    ------
    DicomCheckError
        When the file is not a complete DICOM instance.
    OSError
        When it cannot be read.
    """
    with open(path, "rb") as f:
        if f.seek(0, io.SEEK_END) == 0:
            raise DicomCheckError("the file is empty")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return inspect_instance(buf)
