"""A local NBIA v4 test server for the ``oncoqi.tcia`` tests (127.0.0.1 only; never a real archive).

:class:`NBIATestServer` is a real HTTP server (``ThreadingHTTPServer`` on a free port) answering the
NBIA v4 endpoints the client uses, shaped like the real service (CBIIT/NBIA-TCIA
``software/nbia-api/src/gov/nih/nci/nbia/restAPI/v4``):

* JSON arrays of objects keyed by the API's column names; null values are left out (Jettison);
  "no results" is HTTP 200 with an empty body; unknown query parameters give 400;
* ``getImage`` streams a chunked ZIP (no Content-Length) holding ``LICENSE`` then ``00000001.dcm``...;
  ``getImageWithMD5Hash`` holds the files and ``md5hashes.csv`` (``Filename,MD5Hash``) instead;
* ``getSingleImage`` returns one DICOM object; a series the server does not hold gives 400.

It serves a small synthetic catalogue (:func:`build_catalog`: 16x16 CT and PET slices and an RTSTRUCT
written with pydicom). Faults (:class:`Fault`) are injected per endpoint: error statuses (with
``Retry-After``), a connection dropped mid-transfer, a silent server, a slow stream, a corrupt ZIP, a
wrong MD5, a missing file, a zip-slip entry, a zip bomb. ``rate`` paces every series ZIP (for the
download benchmark's bandwidth-limited mode). The server stops by itself after ``lifetime``
seconds, so a hung test cannot leave it running.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

API_PATH = "/nbia-api/services/v4/"
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
PET_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
COLLECTION = "OncoQI-Phantom"
LICENSE_NAME = "Creative Commons Attribution 4.0 International License"
LICENSE_URI = "https://creativecommons.org/licenses/by/4.0/"
DOI = "https://doi.org/10.0000/oncoqi-phantom"
LICENSE_TEXT = f"{LICENSE_NAME}\n{LICENSE_URI}\n"


def uid(*parts: object) -> str:
    """A deterministic UID (under pydicom's root) from ``parts``."""
    return generate_uid(entropy_srcs=[str(p) for p in parts])


@dataclass
class FakeSeries:
    """One series the server holds: its getSeries row and its files (zip name, bytes, SOPInstanceUID)."""

    row: dict
    files: list[tuple[str, bytes, str]]

    @property
    def uid(self) -> str:
        return self.row["SeriesInstanceUID"]


@dataclass
class Catalog:
    """What the server answers."""

    collections: list[dict]
    descriptions: list[dict]
    patients: list[dict]
    studies: list[dict]
    series: dict[str, FakeSeries]

    def find(self, modality: str, patient: str) -> FakeSeries:
        """The series of ``modality`` of ``patient``."""
        return next(s for s in self.series.values() if s.row["Modality"] == modality and s.row["PatientID"] == patient)


def _write(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def _base(sop_class: str, modality: str, patient: str, study: str, series: str, sop: str, number: int) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop
    ds.PatientID = patient
    ds.PatientName = patient.replace("-", "^")
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.StudyDate = "20010101"
    ds.Modality = modality
    ds.SeriesNumber = number
    return ds


def make_image_series(
    patient: str, study: str, series: str, modality: str, n: int, frame_of_reference: str, seed: int, size: int = 16
) -> list[tuple[bytes, str]]:
    """``n`` ``size`` x ``size`` axial slices (CT or PT) as DICOM bytes with their SOPInstanceUIDs."""
    rng = np.random.default_rng(seed)
    sop_class = CT_STORAGE if modality == "CT" else PET_STORAGE
    out = []
    for k in range(n):
        sop = uid(series, k)
        ds = _base(sop_class, modality, patient, study, series, sop, 2 if modality == "CT" else 3)
        ds.InstanceNumber = k + 1
        ds.FrameOfReferenceUID = frame_of_reference
        ds.ImagePositionPatient = [-8.0, -8.0, 2.5 * k]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [1.0, 1.0]
        ds.SliceThickness = 2.5
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 0
        ds.RescaleIntercept = -1024 if modality == "CT" else 0
        ds.RescaleSlope = 1
        ds.PixelData = rng.integers(0, 3000, (size, size), dtype=np.uint16).tobytes()
        out.append((_write(ds), sop))
    return out


def make_rtstruct(
    patient: str, study: str, series: str, referenced_series: str, frame_of_reference: str
) -> tuple[bytes, str]:
    """A minimal RTSTRUCT referring to ``referenced_series``."""
    sop = uid(series, "rtstruct")
    ds = _base(RTSTRUCT_STORAGE, "RTSTRUCT", patient, study, series, sop, 10)
    ref_series = Dataset()
    ref_series.SeriesInstanceUID = referenced_series
    ref_study = Dataset()
    ref_study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    ref_study.ReferencedSOPInstanceUID = study
    ref_study.RTReferencedSeriesSequence = Sequence([ref_series])
    frame = Dataset()
    frame.FrameOfReferenceUID = frame_of_reference
    frame.RTReferencedStudySequence = Sequence([ref_study])
    ds.ReferencedFrameOfReferenceSequence = Sequence([frame])
    roi = Dataset()
    roi.ROINumber = 1
    roi.ReferencedFrameOfReferenceUID = frame_of_reference
    roi.ROIName = "GTV"
    ds.StructureSetROISequence = Sequence([roi])
    return _write(ds), sop


def _series_row(patient: str, study: str, series: str, modality: str, files: list[bytes], description: str) -> dict:
    return {
        "SeriesInstanceUID": series,
        "StudyInstanceUID": study,
        "Modality": modality,
        "ProtocolName": f"{description} protocol",
        "SeriesDate": "2001-01-01 00:00:00.0",
        "SeriesDescription": description,
        "BodyPartExamined": "CHEST",
        "SeriesNumber": 2,
        "Collection": COLLECTION,
        "PatientID": patient,
        "Manufacturer": "OncoQI",
        "ManufacturerModelName": "Phantom 1",
        "SoftwareVersions": "1.0",
        "ImageCount": len(files),
        "TimeStamp": "2024-05-01 12:00:00.0",
        "LicenseName": LICENSE_NAME,
        "LicenseURI": LICENSE_URI,
        "DataDescriptionURI": DOI,
        "FileSize": sum(len(f) for f in files),
        "DateReleased": "2024-05-01 12:00:00.0",
        "StudyDesc": "PET/CT thorax",
        "StudyDate": "2001-01-01 00:00:00.0",
        "ThirdPartyAnalysis": "NO",
    }


def build_catalog() -> Catalog:
    """Two patients of one collection: PHANTOM-001 with CT and an RTSTRUCT on it, PHANTOM-002 with CT and PT."""
    patients, studies, series = [], [], {}
    plan = {"PHANTOM-001": [("CT", 4), ("RTSTRUCT", 1)], "PHANTOM-002": [("CT", 3), ("PT", 3)]}
    for p_index, (patient, members) in enumerate(plan.items()):
        study = uid(patient, "study")
        frame = uid(patient, "frame")
        patients.append(
            {
                "PatientId": patient,
                "PatientName": patient.replace("-", "^"),
                "PatientSex": "F" if p_index else "M",
                "Collection": COLLECTION,
                "Phantom": "YES",
                "SpeciesCode": "337915000",
                "SpeciesDescription": "Homo sapiens",
            }
        )
        studies.append(
            {
                "StudyInstanceUID": study,
                "StudyDate": "2001-01-01 00:00:00.0",
                "StudyDescription": "PET/CT thorax",
                "StudyID": "1",
                "PatientAge": "060Y",
                "PatientID": patient,
                "PatientName": patient.replace("-", "^"),
                "PatientSex": "F" if p_index else "M",
                "Collection": COLLECTION,
                "SeriesCount": len(members),
            }
        )
        ct_uid = uid(patient, "CT")
        for modality, n in members:
            s_uid = uid(patient, modality)
            if modality == "RTSTRUCT":
                made = [make_rtstruct(patient, study, s_uid, ct_uid, frame)]
            else:
                made = make_image_series(patient, study, s_uid, modality, n, frame, seed=10 * p_index + n)
            files = [(f"{k + 1:08d}.dcm", data, sop) for k, (data, sop) in enumerate(made)]
            row = _series_row(patient, study, s_uid, modality, [f[1] for f in files], f"{modality} phantom")
            series[s_uid] = FakeSeries(row=row, files=files)
    return Catalog(
        collections=[{"Collection": COLLECTION}, {"Collection": "Empty-Collection"}],
        descriptions=[
            {
                "collectionName": COLLECTION,
                "description": "<p>Synthetic <b>PET/CT</b> phantoms for OncoQI tests.</p>",
                "descriptionURI": DOI,
                "id": 1,
            }
        ],
        patients=patients,
        studies=studies,
        series=series,
    )


@lru_cache(maxsize=1)
def shared_catalog() -> Catalog:
    """The default catalogue, built once per test session and shared by every test that serves it."""
    return build_catalog()


def build_bulk_catalog(n_series: int, n_instances: int, size: int) -> Catalog:
    """``n_series`` CT series of ``n_instances`` ``size`` x ``size`` slices, one patient each (for benchmarks)."""
    patients, studies, series = [], [], {}
    for index in range(n_series):
        patient = f"BULK-{index + 1:03d}"
        study = uid(patient, "study")
        s_uid = uid(patient, "CT")
        made = make_image_series(patient, study, s_uid, "CT", n_instances, uid(patient, "frame"), index, size)
        files = [(f"{k + 1:08d}.dcm", data, sop) for k, (data, sop) in enumerate(made)]
        series[s_uid] = FakeSeries(_series_row(patient, study, s_uid, "CT", [f[1] for f in files], "CT bulk"), files)
        patients.append({"PatientId": patient, "Collection": COLLECTION})
        studies.append({"StudyInstanceUID": study, "PatientID": patient, "Collection": COLLECTION, "SeriesCount": 1})
    return Catalog([{"Collection": COLLECTION}], [], patients, studies, series)


@dataclass
class Fault:
    """A failure the server injects into matching requests.

    Attributes
    ----------
    endpoint
        Endpoint name it applies to (``"*"`` for every endpoint).
    kind
        ``status`` (answer ``status`` with ``body`` and ``retry_after``), ``drop`` (close the connection
        after ``after_bytes`` of the body), ``silent`` (say nothing for ``seconds``), ``slow`` (send the
        body in ``chunk``-byte pieces, ``seconds`` apart), ``corrupt`` (flip bytes inside the ZIP),
        ``wrong_md5``, ``missing_file`` (ZIP without the last file and without md5hashes.csv),
        ``zip_slip`` (an entry named ``entry_name``), ``zip_bomb`` (an entry of ``bomb_bytes`` zeros),
        ``garbage`` (an HTML page instead of a ZIP).
    times
        How many requests it affects; -1 for all.
    series_uid, sop_uid
        Only requests for this series (or instance), when given.
    """

    endpoint: str
    kind: str
    times: int = 1
    status: int = 500
    body: str = ""
    retry_after: str | None = None
    after_bytes: int = 2000
    seconds: float = 0.0
    chunk: int = 256
    entry_name: str = "../../evil.dcm"
    bomb_bytes: int = 20 * 1024 * 1024
    series_uid: str | None = None
    sop_uid: str | None = None


@dataclass
class RequestRecord:
    """One request the server received."""

    endpoint: str
    params: dict[str, str]
    headers: dict[str, str]


@dataclass
class _State:
    catalog: Catalog
    faults: list[Fault] = field(default_factory=list)
    requests: list[RequestRecord] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    #: Bytes per second each series ZIP stream is paced at (None: as fast as the socket takes them).
    rate: float | None = None
    #: ZIPs already built for fault-free requests, by (SeriesInstanceUID, md5 variant): deflating a
    #: series again for every request would make the server, not the client, the bottleneck.
    zips: dict[tuple[str, bool], bytes] = field(default_factory=dict)

    def take_fault(self, endpoint: str, params: dict[str, str]) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.endpoint not in ("*", endpoint):
                    continue
                if fault.series_uid and params.get("SeriesInstanceUID") != fault.series_uid:
                    continue
                if fault.sop_uid and params.get("SOPInstanceUID") != fault.sop_uid:
                    continue
                if fault.times > 0:
                    fault.times -= 1
                    if fault.times == 0:
                        self.faults.remove(fault)
                return fault
        return None


ALLOWED = {
    "getCollectionValues": {"format"},
    "getCollectionDescriptions": {"collectionName"},
    "getPatient": {"Collection", "format", "PatientId"},
    "getPatientStudy": {"Collection", "PatientID", "StudyInstanceUID", "format"},
    "getSeries": {
        "Collection",
        "format",
        "PatientID",
        "StudyInstanceUID",
        "Modality",
        "BodyPartExamined",
        "ManufacturerModelName",
        "Manufacturer",
        "SeriesInstanceUID",
    },
    "getSOPInstanceUIDs": {"SeriesInstanceUID", "format"},
    "getImage": {"SeriesInstanceUID", "NewFileNames"},
    "getImageWithMD5Hash": {"SeriesInstanceUID"},
    "getSingleImage": {"SeriesInstanceUID", "SOPInstanceUID"},
}


#: Media type each endpoint produces (JAX-RS @Produces); a request whose Accept excludes it gets 406.
PRODUCES = {"getImage": "application/octet-stream", "getImageWithMD5Hash": "application/octet-stream"}
PRODUCES["getSingleImage"] = "application/dicom"


def accepts(accept: str, produced: str) -> bool:
    """True when an Accept header admits ``produced`` (parameters such as q are ignored)."""
    kind = produced.split("/")[0]
    types = [part.split(";")[0].strip() for part in (accept or "*/*").split(",")]
    return any(t in ("*/*", f"{kind}/*", produced) for t in types)


def _zip(entries: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def series_zip(series: FakeSeries, md5: bool, fault: Fault | None = None) -> bytes:
    """The ZIP the server sends for ``series`` (``md5``: the getImageWithMD5Hash variant), with ``fault`` applied."""
    files = [(name, data) for name, data, _ in series.files]
    kind = fault.kind if fault else ""
    if kind == "missing_file":
        return _zip(files[:-1])
    if kind == "zip_slip":
        return _zip([*files, (fault.entry_name, b"owned")])
    if kind == "zip_bomb":
        return _zip([*files, ("bomb.dcm", bytes(fault.bomb_bytes))])
    if md5:
        sums = [(n, hashlib.md5(d).hexdigest()) for n, d in files]
        if kind == "wrong_md5":
            sums[0] = (sums[0][0], "0" * 32)
        csv = "Filename,MD5Hash\n" + "".join(f"{n},{h}\n" for n, h in reversed(sums))
        data = _zip([*files, ("md5hashes.csv", csv.encode())])
    else:
        data = _zip([("LICENSE", LICENSE_TEXT.encode()), *files])
    if kind == "corrupt":  # flip 16 bytes in the middle of the first DICOM entry's compressed data
        info = zipfile.ZipFile(io.BytesIO(data)).getinfo(files[0][0])
        middle = info.header_offset + 30 + len(info.filename) + info.compress_size // 2
        data = data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 16]) + data[middle + 16 :]
    return data


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        try:
            self._get()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _get(self) -> None:
        state = self.server.state
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        endpoint = parts.path[len(API_PATH) :] if parts.path.startswith(API_PATH) else ""
        with state.lock:
            state.requests.append(RequestRecord(endpoint, params, dict(self.headers.items())))
        if endpoint not in ALLOWED:
            return self._send(404, b"Not Found", "text/plain")
        if not accepts(self.headers.get("Accept", "*/*"), PRODUCES.get(endpoint, "application/json")):
            return self._send(406, b"Not Acceptable", "text/plain")
        extra = sorted(set(params) - ALLOWED[endpoint])
        if extra:
            allowed = sorted(ALLOWED[endpoint])
            msg = f"Invalid query parameter: '{extra[0]}'. Allowed parameters are: {allowed}"
            return self._send(400, msg.encode(), "text/plain")
        fault = state.take_fault(endpoint, params)
        if fault and fault.kind == "status":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return self._send(fault.status, fault.body.encode(), "text/plain", headers)
        if fault and fault.kind == "silent":
            state.stopping.wait(fault.seconds)
            self.close_connection = True
            return None
        status, body, ctype, chunked = self._answer(endpoint, params, fault)
        if chunked:
            return self._send_chunked(body, ctype, fault)
        if fault and fault.kind == "drop":
            return self._send_truncated(body, ctype, fault.after_bytes)
        return self._send(status, body, ctype)

    def _answer(self, endpoint: str, params: dict[str, str], fault: Fault | None) -> tuple[int, bytes, str, bool]:
        cat = self.server.state.catalog

        def rows(items: list[dict], **filters: str) -> tuple[int, bytes, str, bool]:
            wanted = {k: v for k, v in filters.items() if v}
            hits = [r for r in items if all(r.get(k) == v for k, v in wanted.items())]
            return 200, (json.dumps(hits).encode() if hits else b""), "application/json", False

        if endpoint == "getCollectionValues":
            return rows(cat.collections)
        if endpoint == "getCollectionDescriptions":
            return 200, json.dumps(cat.descriptions).encode(), "application/json", False
        if endpoint == "getPatient":
            return rows(cat.patients, Collection=params.get("Collection", ""), PatientId=params.get("PatientId", ""))
        if endpoint == "getPatientStudy":
            keys = ("Collection", "PatientID", "StudyInstanceUID")
            return rows(cat.studies, **{k: params.get(k, "") for k in keys})
        if endpoint == "getSeries":
            keys = ALLOWED["getSeries"] - {"format"}
            return rows([s.row for s in cat.series.values()], **{k: params.get(k, "") for k in keys})
        series = cat.series.get(params.get("SeriesInstanceUID", ""))
        if series is None:
            sid = params.get("SeriesInstanceUID")
            msg = f"The user has not been granted the access to image with given SeriesInstanceUID,{sid}."
            return 400, msg.encode(), "application/json", False
        if endpoint == "getSOPInstanceUIDs":
            sops = [{"SOPInstanceUID": sop} for _, _, sop in series.files]
            return 200, json.dumps(sops).encode(), "application/json", False
        if endpoint == "getSingleImage":
            data = next((d for _, d, sop in series.files if sop == params.get("SOPInstanceUID")), None)
            if data is None:
                return 400, b"no such SOPInstanceUID", "text/plain", False
            return 200, data, "application/dicom", False
        if fault and fault.kind == "garbage":
            return 200, b"<html><body>Service temporarily unavailable</body></html>", "text/html", True
        md5 = endpoint == "getImageWithMD5Hash"
        if fault is not None:
            return 200, series_zip(series, md5, fault), "application/octet-stream", True
        state = self.server.state
        with state.lock:
            data = state.zips.get((series.uid, md5))
        if data is None:
            data = series_zip(series, md5)
            with state.lock:
                state.zips[(series.uid, md5)] = data
        return 200, data, "application/octet-stream", True

    def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _send_truncated(self, body: bytes, ctype: str, after: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:after])
        self.wfile.flush()
        self.close_connection = True

    def _send_chunked(self, body: bytes, ctype: str, fault: Fault | None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Content-Disposition", 'attachment; filename="series.zip"')
        self.end_headers()
        kind = fault.kind if fault else ""
        step = fault.chunk if kind == "slow" else 8192
        rate = self.server.state.rate
        began = time.monotonic()
        sent = 0
        for start in range(0, len(body), step):
            piece = body[start : start + step]
            if kind == "drop" and sent + len(piece) > fault.after_bytes:
                piece = piece[: fault.after_bytes - sent]
                self.wfile.write(f"{len(piece) + 10:X}\r\n".encode() + piece)  # promise more than is sent
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(f"{len(piece):X}\r\n".encode() + piece + b"\r\n")
            self.wfile.flush()
            sent += len(piece)
            if kind == "slow" and self.server.state.stopping.wait(fault.seconds):
                self.close_connection = True
                return
            if rate is not None:  # keep to the schedule: sleep only when ahead of it
                ahead = began + sent / rate - time.monotonic()
                if ahead > 0 and self.server.state.stopping.wait(ahead):
                    self.close_connection = True
                    return
        self.wfile.write(b"0\r\n\r\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State

    def handle_error(self, request, client_address) -> None:  # a client that gave up is not an error here
        pass


class NBIATestServer:
    """The local NBIA v4 test server; use as a context manager.

    Parameters
    ----------
    catalog
        What to serve (:func:`build_catalog` when None).
    lifetime
        Seconds after which the server stops by itself.
    rate
        Bytes per second each series ZIP is sent at, per connection (None: unlimited), to stand for
        a real archive's link in benchmarks.

    Attributes
    ----------
    url
        The API base URL, ``http://127.0.0.1:PORT/nbia-api/services/v4/``.
    """

    def __init__(self, catalog: Catalog | None = None, lifetime: float = 120.0, rate: float | None = None) -> None:
        self.state = _State(catalog if catalog is not None else build_catalog(), rate=rate)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = self.state
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}{API_PATH}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True
        self._stopped = False

    @property
    def catalog(self) -> Catalog:
        return self.state.catalog

    def start(self) -> NBIATestServer:
        self._thread.start()
        self._timer.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        with self.state.lock:
            if self._stopped:
                return
            self._stopped = True
        self.state.stopping.set()
        self._timer.cancel()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> NBIATestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_fault(self, endpoint: str, kind: str, **options: object) -> Fault:
        """Inject a :class:`Fault` into the next matching requests."""
        fault = Fault(endpoint=endpoint, kind=kind, **options)  # type: ignore[arg-type]
        with self.state.lock:
            self.state.faults.append(fault)
        return fault

    def requests_to(self, endpoint: str, series_uid: str | None = None) -> list[RequestRecord]:
        """The requests received for ``endpoint`` (for one series when given)."""
        with self.state.lock:
            return [
                r
                for r in self.state.requests
                if r.endpoint == endpoint and (series_uid is None or r.params.get("SeriesInstanceUID") == series_uid)
            ]
