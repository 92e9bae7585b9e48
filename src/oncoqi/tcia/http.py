"""HTTP GET with timeouts, retries and backoff, for the archive clients.

Public archives rate-limit (HTTP 429 with ``Retry-After``), have bad minutes (5xx) and drop long
transfers; a user must not see a traceback for any of that, and must see at once when the request
itself is wrong (other 4xx). :class:`HttpClient` therefore

* sends every request with a timeout and a ``User-Agent`` naming OncoQI and its version;
* retries connection failures, timeouts, dropped transfers, 429 and 5xx with exponential backoff,
  honouring ``Retry-After``; any :class:`TransferError` whose ``transient`` is true is retried the
  same way, so a caller can retry a whole transfer (e.g. a truncated ZIP) through :meth:`HttpClient.retrying`;
* raises :class:`HTTPStatusError` at once for other 4xx, with the URL and the server's message;
* checks a cancel token (:class:`oncoqi.errors.CancelToken`) between attempts, while waiting, and between chunks.

Only :mod:`urllib.request` is used (proxies from the environment are honoured).
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar

from oncoqi import __version__
from oncoqi.errors import CancelToken, OncoQIError, check_cancel

log = logging.getLogger(__name__)

T = TypeVar("T")

#: HTTP statuses that mean "try again later" rather than "your request is wrong".
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

#: Bytes read per chunk of a streamed body; also how often cancellation is checked.
CHUNK_SIZE = 64 * 1024

USER_AGENT = f"OncoQI/{__version__} (oncoqi.tcia; Python-urllib/{sys.version_info[0]}.{sys.version_info[1]})"


class TransferError(OncoQIError):
    """A request or transfer failed.

    Attributes
    ----------
    url
        The URL concerned.
    transient
        True when trying again may succeed (the retry loop retries only these).
    attempts
        How many attempts were made before giving up (set by the retry loop).
    """

    transient = False

    def __init__(self, message: str, url: str = "") -> None:
        super().__init__(message)
        self.url = url
        self.attempts = 1

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} (gave up after {self.attempts} attempts)" if self.attempts > 1 else text


class NetworkError(TransferError):
    """The server could not be reached, did not answer in time, or dropped the connection."""

    transient = True


class HTTPStatusError(TransferError):
    """The server answered with an error status.

    Attributes
    ----------
    status
        The HTTP status code.
    retry_after
        Seconds the server asked us to wait (``Retry-After``), or None.
    """

    def __init__(self, message: str, url: str, status: int, retry_after: float | None = None) -> None:
        super().__init__(message, url)
        self.status = status
        self.retry_after = retry_after
        self.transient = status in RETRY_STATUSES


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry.

    Attributes
    ----------
    retries
        Retries after the first attempt (so ``retries + 1`` attempts in all).
    backoff
        Wait before the first retry in seconds; doubled for each further retry.
    max_delay
        Upper bound of any single wait, ``Retry-After`` included, so a server cannot stall us for hours.
    """

    retries: int = 4
    backoff: float = 1.0
    max_delay: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        wanted = retry_after if retry_after is not None else self.backoff * (2**attempt)
        return max(0.0, min(wanted, self.max_delay))


def build_url(base: str, endpoint: str, params: Mapping[str, str] | None = None) -> str:
    """``base`` + ``endpoint`` + the query string (parameters with empty values are left out)."""
    url = base if base.endswith("/") else base + "/"
    url += endpoint
    query = {k: v for k, v in (params or {}).items() if v not in (None, "")}
    return f"{url}?{urllib.parse.urlencode(query)}" if query else url


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _network_error(url: str, exc: BaseException) -> NetworkError:
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return NetworkError(f"{url}: no answer within the timeout ({exc})", url)
    if isinstance(exc, http.client.IncompleteRead):
        return NetworkError(f"{url}: connection dropped after {len(exc.partial)} bytes of the answer", url)
    reason = getattr(exc, "reason", exc)
    return NetworkError(f"{url}: cannot reach the server ({reason})", url)


#: Exceptions that mean the network, not our code or the local disk, failed.
_NETWORK_EXCEPTIONS = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, socket.timeout)


#: Read buffer of an answer's socket. ``http.client`` reads through an 8 KiB buffer, i.e. one system
#: call (and one release and retake of the GIL) per 8 KiB chunk of a streamed ZIP; with 256 KiB one
#: call brings many chunks. Measured on 110 MB of series ZIPs over loopback: 0.06 s of CPU instead of
#: 0.14 s, and half as many reads for the caller.
READ_BUFFER = 256 * 1024


class _BufferedResponse(http.client.HTTPResponse):
    """An answer read through a :data:`READ_BUFFER`-byte buffer (nothing has been read when it is replaced)."""

    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        self.fp.close()
        self.fp = sock.makefile("rb", buffering=READ_BUFFER)


class _HTTPConnection(http.client.HTTPConnection):
    response_class = _BufferedResponse


class _HTTPSConnection(http.client.HTTPSConnection):
    response_class = _BufferedResponse


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_HTTPConnection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_HTTPSConnection, req, context=self._context)


class Response:
    """An open HTTP answer whose body is read in chunks.

    Use as a context manager; reading errors are raised as :class:`NetworkError`.
    """

    def __init__(self, url: str, raw: http.client.HTTPResponse) -> None:
        self.url = url
        self._raw = raw
        length = raw.headers.get("Content-Length")
        #: Declared body size in bytes, or None (NBIA streams ZIPs without one).
        self.content_length: int | None = int(length) if length and length.isdigit() else None

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self._raw.close()

    def chunks(self, cancel: CancelToken | None = None) -> Iterator[bytes]:
        """Yield the body in chunks of at most :data:`CHUNK_SIZE` bytes, checking ``cancel`` before each.

        A body shorter than its Content-Length is a :class:`NetworkError` (``http.client`` reports
        that only when reading everything at once). Chunks are what has arrived (``read1``), not
        full :data:`CHUNK_SIZE` blocks: ``read(n)`` of a chunked answer waits for ``n`` bytes, so on a
        slow server progress would stall and a cancel would wait for the next 64 KiB.
        """
        received = 0
        while True:
            check_cancel(cancel)
            try:
                chunk = self._raw.read1(CHUNK_SIZE)
            except _NETWORK_EXCEPTIONS as exc:
                raise _network_error(self.url, exc) from exc
            if not chunk:
                if self.content_length is not None and received < self.content_length:
                    raise NetworkError(
                        f"{self.url}: connection dropped after {received} of {self.content_length} bytes", self.url
                    )
                return
            received += len(chunk)
            yield chunk

    def read(self, cancel: CancelToken | None = None) -> bytes:
        """The whole body."""
        return b"".join(self.chunks(cancel))


class HttpClient:
    """GET requests with timeout, retries and a User-Agent.

    Parameters
    ----------
    timeout
        Seconds to wait for the connection and for each read; a silent server fails after this.
    retry
        The retry policy for transient failures.
    user_agent
        Sent with every request; defaults to :data:`USER_AGENT` (OncoQI and its version).
    """

    def __init__(self, timeout: float = 60.0, retry: RetryPolicy | None = None, user_agent: str = USER_AGENT) -> None:
        self.timeout = timeout
        self.retry = retry if retry is not None else RetryPolicy()
        self.user_agent = user_agent
        self._opener = urllib.request.build_opener(_HTTPHandler, _HTTPSHandler)

    def open(self, url: str, accept: str = "*/*") -> Response:
        """One GET attempt; the caller reads the body from the returned :class:`Response`.

        ``accept`` must include what the endpoint produces (NBIA's JAX-RS answers 406 otherwise:
        ``getImage`` produces ``application/octet-stream``, not ``application/zip``).

        Raises
        ------
        HTTPStatusError
            For any status other than 2xx (``transient`` for 408, 429 and 5xx).
        NetworkError
            When the server cannot be reached or does not answer in time.
        """
        request = urllib.request.Request(url, headers={"User-Agent": self.user_agent, "Accept": accept})
        log.debug("GET %s", url)
        try:
            raw = self._opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            raise self._status_error(url, exc) from exc
        except _NETWORK_EXCEPTIONS as exc:
            raise _network_error(url, exc) from exc
        return Response(url, raw)

    @staticmethod
    def _status_error(url: str, exc: urllib.error.HTTPError) -> HTTPStatusError:
        try:
            body = exc.read(500).decode("utf-8", "replace").strip()
        except (*_NETWORK_EXCEPTIONS, OSError):
            body = ""
        finally:
            exc.close()
        detail = f": {' '.join(body.split())[:300]}" if body else ""
        retry_after = parse_retry_after(exc.headers.get("Retry-After") if exc.headers else None)
        if exc.code == 429:
            what = "the server is rate-limiting requests"
        elif exc.code >= 500:
            what = "server error"
        elif exc.code == 404:
            what = "not found (check the API URL)"
        else:
            what = "request refused"
        return HTTPStatusError(f"{url}: HTTP {exc.code}, {what}{detail}", url, exc.code, retry_after)

    def retrying(self, attempt: Callable[[], T], cancel: CancelToken | None = None) -> T:
        """Run ``attempt()`` until it succeeds, retrying transient :class:`TransferError` with backoff.

        Raises
        ------
        TransferError
            The last error, once it is not transient or the retries are spent (``attempts`` set).
        oncoqi.errors.Cancelled
            When ``cancel`` is set before an attempt or during a wait.
        """
        n = 0
        while True:
            check_cancel(cancel)
            try:
                return attempt()
            except TransferError as exc:
                exc.attempts = n + 1
                if not exc.transient or n >= self.retry.retries:
                    raise
                delay = self.retry.delay(n, getattr(exc, "retry_after", None))
                log.info("%s; retrying in %.1f s", exc, delay)
                self._wait(delay, cancel)
                n += 1

    @staticmethod
    def _wait(seconds: float, cancel: CancelToken | None) -> None:
        end = time.monotonic() + seconds
        while True:
            check_cancel(cancel)
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.1))

    def get_bytes(self, url: str, cancel: CancelToken | None = None) -> bytes:
        """The body of ``url``, with retries."""

        def attempt() -> bytes:
            with self.open(url) as response:
                return response.read(cancel)

        return self.retrying(attempt, cancel)

    def get_json(self, url: str, cancel: CancelToken | None = None) -> Any:
        """The JSON body of ``url``, with retries; an empty body (how NBIA says "no results") is ``[]``.

        Raises
        ------
        TransferError
            When the answer is not JSON (e.g. an HTML error page from a proxy).
        """

        def attempt() -> Any:
            with self.open(url, accept="application/json") as response:
                body = response.read(cancel)
            if not body.strip():
                return []
            try:
                return json.loads(body)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                snippet = " ".join(body[:200].decode("utf-8", "replace").split())
                raise TransferError(f"{url}: the answer is not JSON ({exc}): {snippet!r}", url) from exc

        return self.retrying(attempt, cancel)
