"""Client of the NBIA v4 REST API, which serves TCIA's radiology data (and NLST on its own host).

Since 2025 the v4 API needs no login. The base URL is configurable and spelled as the service
spells it (``.../nbia-api/services/v4/``); endpoint names are appended. Answers are JSON arrays of
objects whose keys are the API's column names (``PatientId`` in ``getPatient`` but ``PatientID``
elsewhere; keys with null values are left out), and "no results" is an empty body.

Series download either as one ZIP (``getImage``, or ``getImageWithMD5Hash`` whose ZIP adds an
``md5hashes.csv``) or instance by instance (``getSOPInstanceUIDs`` then ``getSingleImage``), which is
slower but resumable after an interruption.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from collections.abc import Callable, Mapping
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import pydicom
from pydicom.errors import InvalidDicomError

from oncoqi.errors import CancelToken, InputError
from oncoqi.tcia.archive import (
    CorruptArchiveError,
    StreamingExtractor,
    UnsafeArchiveError,
    extract_series_zip,
    verify_md5,
)
from oncoqi.tcia.cache import MetadataCache
from oncoqi.tcia.http import HttpClient, TransferError, build_url
from oncoqi.tcia.models import Collection, Instance, Patient, Series, Study, is_valid_uid
from oncoqi.tcia.source import (
    BytesCallback,
    FetchResult,
    FileOpener,
    FileRecord,
    ImagingSource,
    Listing,
    cached_listing,
    file_record,
    referenced_series_uids,
    remove_tree_quietly,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

NBIA_API_URL = "https://services.cancerimagingarchive.net/nbia-api/services/v4/"
NLST_API_URL = "https://nlst.cancerimagingarchive.net/nbia-api/services/v4/"

#: Default age limit of cached metadata, in seconds.
DEFAULT_MAX_AGE = 24 * 3600.0

#: A series ZIP may expand to at most this multiple of the series' declared size (plus slack).
ZIP_SIZE_FACTOR = 2.0
ZIP_SIZE_SLACK = 1024 * 1024
#: Without a declared size, a ZIP may expand to at most this multiple of its own size (sparse SEG
#: frames compress very well, ordinary DICOM 2-5x).
ZIP_RATIO_LIMIT = 100


class DownloadMode(str, Enum):
    """How :meth:`NBIAClient.fetch_series` downloads a series."""

    #: One ZIP per series: fastest; an interrupted series restarts from the beginning.
    ZIP = "zip"
    #: One request per instance: slower; an interrupted series continues where it stopped.
    INSTANCES = "instances"


def _text(row: Mapping[str, Any], *keys: str) -> str:
    for key in keys:
        value = row.get(key)
        if value not in (None, ""):
            return str(value).strip()
    return ""


def _int(row: Mapping[str, Any], key: str) -> int | None:
    value = row.get(key)
    if value in (None, ""):
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def _date(value: str) -> str:
    """``YYYY-MM-DD`` from NBIA's timestamps (``2000-01-01 00:00:00.0``); other text unchanged."""
    if len(value) >= 10 and value[4] == "-" and value[7] == "-" and value[:4].isdigit():
        return value[:10]
    return value


def _rows(payload: Any) -> list[Mapping[str, Any]]:
    if isinstance(payload, dict):
        payload = [payload]
    if not isinstance(payload, list):
        raise TransferError(f"unexpected answer from NBIA: a JSON {type(payload).__name__}, not a list")
    return [row for row in payload if isinstance(row, dict)]


def parse_collections(names: Any, descriptions: Any) -> list[Collection]:
    """Collections from ``getCollectionValues`` joined with ``getCollectionDescriptions``."""
    desc = {_text(r, "collectionName"): r for r in _rows(descriptions)}
    out = []
    for row in _rows(names):
        name = _text(row, "Collection")
        if name:
            d = desc.get(name, {})
            out.append(Collection(name=name, description=_text(d, "description"), url=_text(d, "descriptionURI")))
    return sorted(out, key=lambda c: c.name.lower())


def parse_patients(payload: Any) -> list[Patient]:
    """Patients from ``getPatient`` (whose key is ``PatientId``)."""
    return [
        Patient(
            patient_id=_text(r, "PatientId", "PatientID"),
            collection=_text(r, "Collection"),
            name=_text(r, "PatientName"),
            sex=_text(r, "PatientSex"),
            ethnic_group=_text(r, "EthnicGroup"),
            species=_text(r, "SpeciesDescription"),
        )
        for r in _rows(payload)
        if _text(r, "PatientId", "PatientID")
    ]


def parse_studies(payload: Any) -> list[Study]:
    """Studies from ``getPatientStudy``."""
    return [
        Study(
            study_uid=_text(r, "StudyInstanceUID"),
            patient_id=_text(r, "PatientID"),
            collection=_text(r, "Collection"),
            date=_date(_text(r, "StudyDate")),
            description=_text(r, "StudyDescription"),
            series_count=_int(r, "SeriesCount"),
            patient_age=_text(r, "PatientAge"),
        )
        for r in _rows(payload)
        if _text(r, "StudyInstanceUID")
    ]


def parse_series(payload: Any) -> list[Series]:
    """Series from ``getSeries`` (v4 calls the DOI ``DataDescriptionURI``, older versions ``CollectionURI``)."""
    return [
        Series(
            series_uid=_text(r, "SeriesInstanceUID"),
            study_uid=_text(r, "StudyInstanceUID"),
            patient_id=_text(r, "PatientID"),
            collection=_text(r, "Collection"),
            modality=_text(r, "Modality"),
            description=_text(r, "SeriesDescription"),
            body_part=_text(r, "BodyPartExamined"),
            series_number=_int(r, "SeriesNumber"),
            image_count=_int(r, "ImageCount"),
            file_size=_int(r, "FileSize"),
            manufacturer=_text(r, "Manufacturer"),
            manufacturer_model=_text(r, "ManufacturerModelName"),
            license_name=_text(r, "LicenseName"),
            license_uri=_text(r, "LicenseURI"),
            collection_uri=_text(r, "DataDescriptionURI", "CollectionURI"),
            series_date=_date(_text(r, "SeriesDate")),
            study_date=_date(_text(r, "StudyDate")),
            study_description=_text(r, "StudyDesc", "StudyDescription"),
            protocol_name=_text(r, "ProtocolName"),
            date_released=_date(_text(r, "DateReleased")),
        )
        for r in _rows(payload)
        if _text(r, "SeriesInstanceUID")
    ]


class NBIAClient(ImagingSource):
    """TCIA (or NLST) through the NBIA v4 REST API.

    Parameters
    ----------
    api_url
        Base URL ending in ``/nbia-api/services/v4/``; :data:`NLST_API_URL` for NLST.
    http
        The HTTP client (timeouts, retries); a default :class:`HttpClient` when None.
    cache
        Metadata cache, or None to always ask the server.
    max_age
        Seconds a cached answer is used without asking the server.
    download_mode
        :class:`DownloadMode` (ZIP, or instance by instance).
    md5
        In ZIP mode, ask for the variant with MD5 sums and check every file against them.
    """

    name = "nbia"

    def __init__(
        self,
        api_url: str = NBIA_API_URL,
        *,
        http: HttpClient | None = None,
        cache: MetadataCache | None = None,
        max_age: float = DEFAULT_MAX_AGE,
        download_mode: DownloadMode = DownloadMode.ZIP,
        md5: bool = True,
    ) -> None:
        if not api_url.startswith(("http://", "https://")):
            raise InputError(f"{api_url}: the NBIA API URL must start with http:// or https://")
        self.api_url = api_url if api_url.endswith("/") else api_url + "/"
        self.http = http if http is not None else HttpClient()
        self.cache = cache
        self.max_age = max_age
        self.download_mode = DownloadMode(download_mode)
        self.md5 = md5

    @property
    def location(self) -> str:
        """The API base URL."""
        return self.api_url

    @property
    def resumable(self) -> bool:
        """True in instance mode, where files already fetched are kept."""
        return self.download_mode is DownloadMode.INSTANCES

    def _listing(
        self, endpoint: str, params: Mapping[str, str | None], parse: Callable[[Any], list[T]], refresh: bool
    ) -> Listing[T]:
        query = build_url("", endpoint, {k: v for k, v in sorted(params.items()) if v})
        url = build_url(self.api_url, endpoint, {k: v for k, v in params.items() if v})
        return cached_listing(
            self.cache,
            f"{self.name} {self.api_url}",
            query.lstrip("/"),
            lambda: self.http.get_json(url),
            parse,
            self.max_age,
            refresh,
        )

    def collections(self, refresh: bool = False) -> Listing[Collection]:
        """Every collection; descriptions are added when the server has them (NLST has none)."""
        names = self._listing("getCollectionValues", {}, lambda p: p, refresh)
        try:
            descriptions = self._listing("getCollectionDescriptions", {}, lambda p: p, refresh).items
        except TransferError as exc:
            log.warning("collection descriptions unavailable: %s", exc)
            descriptions = []
        return Listing(
            parse_collections(names.items, descriptions),
            fetched_at=names.fetched_at,
            from_cache=names.from_cache,
            offline=names.offline,
        )

    def patients(self, collection: str, refresh: bool = False) -> Listing[Patient]:
        """The patients of ``collection``."""
        return self._listing("getPatient", {"Collection": collection}, parse_patients, refresh)

    def studies(self, collection: str, patient_id: str | None = None, refresh: bool = False) -> Listing[Study]:
        """The studies of ``collection`` (of one patient when ``patient_id`` is given)."""
        params = {"Collection": collection, "PatientID": patient_id}
        return self._listing("getPatientStudy", params, parse_studies, refresh)

    def series(
        self,
        collection: str | None = None,
        patient_id: str | None = None,
        study_uid: str | None = None,
        modality: str | None = None,
        series_uid: str | None = None,
        refresh: bool = False,
    ) -> Listing[Series]:
        """The series matching every filter given.

        Raises
        ------
        InputError
            When no filter is given (that would list every series of the archive).
        """
        params = {
            "Collection": collection,
            "PatientID": patient_id,
            "StudyInstanceUID": study_uid,
            "Modality": modality,
            "SeriesInstanceUID": series_uid,
        }
        if not any(params.values()):
            raise InputError("give a collection, patient, study, modality or series UID to list series")
        return self._listing("getSeries", params, parse_series, refresh)

    def instances(self, series_uid: str, refresh: bool = False) -> Listing[Instance]:
        """The SOP instances of one series."""

        def parse(payload: Any) -> list[Instance]:
            uids = (_text(r, "SOPInstanceUID") for r in _rows(payload))
            return [Instance(sop_instance_uid=u, series_uid=series_uid) for u in uids if u]

        return self._listing("getSOPInstanceUIDs", {"SeriesInstanceUID": series_uid}, parse, refresh)

    def referenced_series(self, series: Series) -> list[str]:
        """The series a SEG or RTSTRUCT refers to, read from its first instance (``getSingleImage``).

        Raises
        ------
        TransferError
            When the instance cannot be fetched or is not DICOM.
        """
        if not series.is_segmentation:
            return []
        instances = self.instances(series.series_uid)
        if not instances.items:
            return []
        sop = instances[0].sop_instance_uid
        url = build_url(self.api_url, "getSingleImage", {"SeriesInstanceUID": series.series_uid, "SOPInstanceUID": sop})
        data = self.http.get_bytes(url)
        try:
            ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError) as exc:
            raise TransferError(f"{url}: the instance is not readable DICOM ({exc})", url) from exc
        return referenced_series_uids(ds)

    def fetch_series(
        self,
        series: Series,
        staging: Path,
        *,
        on_bytes: BytesCallback,
        cancel: CancelToken | None,
        opener: FileOpener,
    ) -> FetchResult:
        """Download ``series`` into ``staging`` as configured (see :class:`DownloadMode`)."""
        if self.download_mode is DownloadMode.INSTANCES:
            return self._fetch_instances(series, staging, on_bytes, cancel, opener)
        return self._fetch_zip(series, staging, on_bytes, cancel, opener)

    def _fetch_zip(
        self, series: Series, staging: Path, on_bytes: BytesCallback, cancel: CancelToken | None, opener: FileOpener
    ) -> FetchResult:
        endpoint = "getImageWithMD5Hash" if self.md5 else "getImage"
        url = build_url(self.api_url, endpoint, {"SeriesInstanceUID": series.series_uid})
        zip_path = staging.parent / f"{staging.name}.zip"
        declared = series.file_size

        def attempt() -> FetchResult:
            remove_tree_quietly(staging)
            staging.mkdir(parents=True)
            received = 0
            on_bytes(0)
            stream_limit = int(declared * ZIP_SIZE_FACTOR) + ZIP_SIZE_SLACK if declared else None
            # with a declared size the limit is known from the start, so entries are extracted as they
            # arrive; without one it depends on the ZIP's size, so extraction waits for the end
            extractor = (
                StreamingExtractor(
                    staging, max_total_bytes=stream_limit, opener=opener, cancel=cancel, crc_files=not self.md5
                )
                if stream_limit is not None
                else None
            )
            try:
                with self.http.open(url) as response, opener(zip_path) as out:
                    for chunk in response.chunks(cancel):
                        out.write(chunk)
                        received += len(chunk)
                        on_bytes(received)
                        if stream_limit is not None and received > stream_limit:
                            raise UnsafeArchiveError(
                                f"{url}: the server sent more than {stream_limit} bytes for a series declared "
                                f"as {declared} bytes",
                                url,
                            )
                        if extractor is not None:
                            extractor.feed(chunk)
            finally:
                if extractor is not None:
                    extractor.close()
            if extractor is not None:
                extracted = extractor.finish(zip_path)
            else:
                limit = ZIP_RATIO_LIMIT * received + ZIP_SIZE_SLACK
                extracted = extract_series_zip(zip_path, staging, max_total_bytes=limit, opener=opener, cancel=cancel)
            if self.md5:
                if extracted.md5_sums is None:
                    raise CorruptArchiveError(f"{url}: the ZIP has no md5hashes.csv (the stream ended early)", url)
                verify_md5(extracted.files, extracted.md5_sums)
            if series.image_count is not None and len(extracted.files) != series.image_count:
                raise CorruptArchiveError(
                    f"{url}: the ZIP holds {len(extracted.files)} files but the series has {series.image_count} images",
                    url,
                )
            return FetchResult(files=extracted.files, md5_verified=self.md5, checks=extracted.checks)

        try:
            return self.http.retrying(attempt, cancel)
        finally:
            zip_path.unlink(missing_ok=True)

    def _fetch_instances(
        self, series: Series, staging: Path, on_bytes: BytesCallback, cancel: CancelToken | None, opener: FileOpener
    ) -> FetchResult:
        sops = [i.sop_instance_uid for i in self.instances(series.series_uid, refresh=True)]
        bad = [u for u in sops if not is_valid_uid(u)]
        if bad:
            raise TransferError(f"{self.api_url}: series {series.series_uid} lists invalid SOPInstanceUID {bad[0]!r}")
        if series.image_count is not None and len(sops) != series.image_count:
            raise CorruptArchiveError(
                f"series {series.series_uid}: the server lists {len(sops)} instances but {series.image_count} images"
            )
        staging.mkdir(parents=True, exist_ok=True)
        wanted = {f"{u}.dcm" for u in sops}
        for leftover in staging.iterdir():
            if leftover.name not in wanted:  # partial files of an interrupted transfer, strays
                leftover.unlink()
        files = {p.name: file_record(p) for p in staging.iterdir()}
        done = sum(r.size for r in files.values())
        on_bytes(done)
        for sop in sops:
            name = f"{sop}.dcm"
            if name in files:
                continue
            url = build_url(
                self.api_url, "getSingleImage", {"SeriesInstanceUID": series.series_uid, "SOPInstanceUID": sop}
            )
            part = staging / f"{name}.part"

            def attempt(url: str = url, part: Path = part, base: int = done) -> FileRecord:
                digest = hashlib.md5()
                size = 0
                with self.http.open(url) as response, opener(part) as out:
                    for chunk in response.chunks(cancel):
                        out.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                        on_bytes(base + size)
                return FileRecord(size=size, md5=digest.hexdigest())

            files[name] = self.http.retrying(attempt, cancel)
            os.replace(part, staging / name)
            done += files[name].size
        return FetchResult(files=files)
