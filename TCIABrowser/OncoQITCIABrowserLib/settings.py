"""Where the TCIA browser talks to and where it stores what it downloads.

Both come from the user (or the saved parameter node), so they are checked once, up front, with
messages that say what to fix, instead of failing halfway through a download. The download itself,
and the folder layout inside the download folder, belong to the core (``oncoqi.tcia``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from oncoqi.errors import InputError


@dataclass(frozen=True)
class DownloadSettings:
    """A checked NBIA endpoint and an existing, writable download folder.

    Attributes
    ----------
    api_url
        NBIA REST base URL, ending with ``/`` as ``oncoqi.tcia``'s client joins endpoints to it.
    download_folder
        Absolute folder that receives the downloaded series.
    """

    api_url: str
    download_folder: Path


def download_settings(api_url: str, download_folder: str | os.PathLike[str]) -> DownloadSettings:
    """Check the endpoint URL and create the download folder if needed.

    Parameters
    ----------
    api_url
        An ``https://`` (or ``http://`` for a local mirror) URL with a host; surrounding blanks are
        ignored.
    download_folder
        Absolute path (``~`` is expanded); relative paths are refused because they would depend on
        Slicer's working directory, which the user does not see.

    Returns
    -------
    DownloadSettings
        The URL with one trailing slash and the absolute folder, which now exists.

    Raises
    ------
    InputError
        The URL is not http(s) with a host, the folder is empty or relative, or it cannot be
        created or written to.
    """
    url = api_url.strip()
    parsed = urlparse(url)
    if parsed.scheme not in ("https", "http") or not parsed.netloc:
        raise InputError(f"TCIA API URL '{api_url}' must be an https:// (or http://) URL with a server name")
    if not str(download_folder).strip():
        raise InputError("choose a download folder")
    folder = Path(download_folder).expanduser()
    if not folder.is_absolute():
        raise InputError(f"download folder '{download_folder}' must be an absolute path")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create download folder '{folder}': {exc.strerror}") from exc
    if not os.access(folder, os.W_OK):
        raise InputError(f"download folder '{folder}' is not writable")
    return DownloadSettings(url.rstrip("/") + "/", folder)
