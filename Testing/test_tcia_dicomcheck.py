"""oncoqi.tcia.dicomcheck: the DICOM check every downloaded file goes through (no network)."""

from __future__ import annotations

import io

import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRBigEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit

from helpers.tcia_server import make_image_series
from helpers.tcia_server import shared_catalog as catalog
from oncoqi.tcia.dicomcheck import DicomCheckError, InstanceHeader, check_instance, inspect_file, inspect_instance


def _slice(size: int = 16) -> bytes:
    return make_image_series("P-1", "1.2.3", "1.2.3.4", "CT", 1, "1.2.3.5", seed=0, size=size)[0][0]


def _rewrite(data: bytes, change, syntax: str | None = None) -> bytes:
    """``data`` read with pydicom, changed by ``change(ds)`` and written again (in ``syntax`` if given)."""
    ds = pydicom.dcmread(io.BytesIO(data))
    change(ds)
    options = {"enforce_file_format": True}
    if syntax is not None:
        ds.file_meta.TransferSyntaxUID = syntax
        if syntax == ExplicitVRBigEndian:  # pydicom converts between endiannesses only when forced
            options = {"implicit_vr": False, "little_endian": False, "force_encoding": True}  # keeps the preamble
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, **options)
    return buf.getvalue()


def _pydicom_header(data: bytes) -> InstanceHeader:
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    keywords = ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "PatientID")
    return InstanceHeader(*(str(ds.get(k, "")) for k in keywords))


def test_every_catalogue_file_reads_as_pydicom_reads_it():
    for series in catalog().series.values():  # CT and PT slices, an RTSTRUCT with nested sequences
        for _, data, sop in series.files:
            header = inspect_instance(data)
            assert header == _pydicom_header(data) and header.sop_uid == sop


@pytest.mark.parametrize("cut", [1, 2, 100, 511, 600])
def test_a_file_cut_short_anywhere_is_refused(cut):
    data = _slice()
    with pytest.raises(DicomCheckError, match="cut short"):
        inspect_instance(data[: len(data) - cut])
    assert isinstance(check_instance(data[:-cut]), DicomCheckError)


def test_what_is_not_dicom_is_refused(tmp_path):
    for junk in (b"", b"<html>Service unavailable</html>", bytes(200), b"x" * 128 + b"DICM"):
        with pytest.raises(DicomCheckError):
            inspect_instance(junk)
    (tmp_path / "empty.dcm").write_bytes(b"")
    with pytest.raises(DicomCheckError, match="empty"):
        inspect_file(tmp_path / "empty.dcm")
    (tmp_path / "ok.dcm").write_bytes(_slice())
    assert inspect_file(tmp_path / "ok.dcm").patient_id == "P-1"


def test_pixel_data_shorter_than_the_image_is_refused():
    def shrink(ds: pydicom.Dataset) -> None:
        ds.PixelData = ds.PixelData[:-64]  # a consistent element, but 32 pixels short

    expected = r"Pixel Data is 448 bytes; 16 x 16 x 1 samples x 1 frames at 16 bits need 512"
    with pytest.raises(DicomCheckError, match=expected):
        inspect_instance(_rewrite(_slice(), shrink))

    def frames(ds: pydicom.Dataset) -> None:
        ds.NumberOfFrames = 2  # the same bytes now describe half of what is declared

    with pytest.raises(DicomCheckError, match="need 1024"):
        inspect_instance(_rewrite(_slice(), frames))

    def no_rows(ds: pydicom.Dataset) -> None:
        del ds.Rows

    with pytest.raises(DicomCheckError, match="without Rows"):
        inspect_instance(_rewrite(_slice(), no_rows))


def test_implicit_vr_and_undefined_length_sequences_are_walked():
    def nest(ds: pydicom.Dataset) -> None:
        inner = pydicom.Dataset()
        inner.CodeValue = "T-04000"
        item = pydicom.Dataset()
        item.AnatomicRegionSequence = Sequence([inner])
        ds.ReferencedImageSequence = Sequence([item, pydicom.Dataset()])
        ds["ReferencedImageSequence"].is_undefined_length = True
        item["AnatomicRegionSequence"].is_undefined_length = True
        for it in (item, inner):
            it.is_undefined_length_sequence_item = True

    for syntax in (None, ImplicitVRLittleEndian):
        data = _rewrite(_slice(), nest, syntax)
        assert data.count(b"\xfe\xff\xdd\xe0") == 2 and data.count(b"\xfe\xff\x0d\xe0") == 2  # delimiters
        assert inspect_instance(data) == _pydicom_header(data)
        with pytest.raises(DicomCheckError, match="cut short"):
            inspect_instance(data[:-600])  # in the middle of the header


def test_encapsulated_pixel_data_needs_a_fragment():
    frame = bytes(range(256)) * 4

    def compress(ds: pydicom.Dataset) -> None:
        ds.PixelData = encapsulate([frame])
        ds["PixelData"].VR = "OB"
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7

    data = _rewrite(_slice(), compress, JPEGBaseline8Bit)
    assert inspect_instance(data).patient_id == "P-1"

    def empty(ds: pydicom.Dataset) -> None:
        compress(ds)
        ds.PixelData = b"\xfe\xff\x00\xe0\x00\x00\x00\x00"  # only the offset table (pydicom adds the delimiter)

    with pytest.raises(DicomCheckError, match="no fragment"):
        inspect_instance(_rewrite(_slice(), empty, JPEGBaseline8Bit))
    with pytest.raises(DicomCheckError, match="cut short"):
        inspect_instance(data[:-20])


def test_big_endian_files_are_read_by_pydicom_with_the_same_pixel_check():
    data = _rewrite(_slice(), lambda ds: None, ExplicitVRBigEndian)
    assert inspect_instance(data) == _pydicom_header(data)

    def shrink(ds: pydicom.Dataset) -> None:
        ds.PixelData = ds.PixelData[:-64]

    with pytest.raises(DicomCheckError, match="need 512"):
        inspect_instance(_rewrite(_slice(), shrink, ExplicitVRBigEndian))


def test_identity_values_beyond_plain_ascii_compare_as_pydicom_decodes_them():
    def latin(ds: pydicom.Dataset) -> None:
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.PatientID = "MÜLLER-7 "

    data = _rewrite(_slice(), latin)
    assert inspect_instance(data).patient_id == "MÜLLER-7" == _pydicom_header(data).patient_id
    two = _rewrite(_slice(), lambda ds: setattr(ds, "PatientID", "A\\B"))
    assert inspect_instance(two).patient_id == _pydicom_header(two).patient_id
