"""A **stand-in** for IDC's public S3 bucket: a tiny S3-compatible HTTP server on 127.0.0.1.

It answers the three requests ``s5cmd cp s3://BUCKET/PREFIX/* DIR/`` makes with a custom
``--endpoint-url`` (path-style addressing): ``HEAD /BUCKET`` (region lookup), ``GET
/BUCKET?list-type=2&prefix=...`` (ListObjectsV2, one page) and ``GET /BUCKET/KEY`` (with or without a
``Range``). It serves objects held in memory, so the IDC download path (``oncoqi.tcia.idc``) can be
tested with the real ``s5cmd`` and no network. It is not S3: no auth, no pagination, no errors
beyond 404.
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit
from xml.sax.saxutils import escape

LAST_MODIFIED_XML = "2024-01-01T00:00:00.000Z"
LAST_MODIFIED_HTTP = "Mon, 01 Jan 2024 00:00:00 GMT"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _split(self) -> tuple[str, str, dict[str, str]]:
        parts = urlsplit(self.path)
        bucket, _, key = unquote(parts.path).lstrip("/").partition("/")
        return bucket, key, dict(parse_qsl(parts.query, keep_blank_values=True))

    def _reply(self, status: int, body: bytes, headers: dict[str, str], send_body: bool = True) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        bucket, key, _ = self._split()
        objects = self.server.buckets.get(bucket)
        if objects is None or (key and key not in objects):
            return self._reply(404, b"", {}, send_body=False)
        data = objects.get(key, b"")
        headers = {"x-amz-bucket-region": "us-east-1", "Last-Modified": LAST_MODIFIED_HTTP}
        self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()

    def do_GET(self) -> None:
        bucket, key, query = self._split()
        with self.server.lock:
            self.server.requests.append(self.path)
        objects = self.server.buckets.get(bucket)
        if objects is None:
            return self._reply(404, b"<Error><Code>NoSuchBucket</Code></Error>", {"Content-Type": "application/xml"})
        if not key:
            return self._list(bucket, objects, query.get("prefix", ""))
        data = objects.get(key)
        if data is None:
            return self._reply(404, b"<Error><Code>NoSuchKey</Code></Error>", {"Content-Type": "application/xml"})
        headers = {
            "ETag": f'"{hashlib.md5(data).hexdigest()}"',
            "Last-Modified": LAST_MODIFIED_HTTP,
            "Content-Type": "application/dicom",
            "Accept-Ranges": "bytes",
        }
        ranged = self.headers.get("Range", "")
        if ranged.startswith("bytes="):
            first, _, last = ranged[6:].partition("-")
            start, end = int(first), min(int(last) if last else len(data) - 1, len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            return self._reply(206, data[start : end + 1], headers)
        return self._reply(200, data, headers)

    def _list(self, bucket: str, objects: dict[str, bytes], prefix: str) -> None:
        keys = sorted(k for k in objects if k.startswith(prefix))
        contents = "".join(
            f"<Contents><Key>{escape(k)}</Key><LastModified>{LAST_MODIFIED_XML}</LastModified>"
            f'<ETag>"{hashlib.md5(objects[k]).hexdigest()}"</ETag><Size>{len(objects[k])}</Size>'
            "<StorageClass>STANDARD</StorageClass></Contents>"
            for k in keys
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Name>{escape(bucket)}</Name><Prefix>{escape(prefix)}</Prefix><KeyCount>{len(keys)}</KeyCount>"
            f"<MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>{contents}</ListBucketResult>"
        ).encode()
        self._reply(200, body, {"Content-Type": "application/xml"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    buckets: dict[str, dict[str, bytes]]
    requests: list[str]
    lock: threading.Lock

    def handle_error(self, request, client_address) -> None:  # a client that gave up is not an error here
        pass


class S3StandIn:
    """The stand-in bucket server; use as a context manager.

    Parameters
    ----------
    buckets
        Bucket name to {object key: bytes}.

    Attributes
    ----------
    url
        The endpoint to give s5cmd as ``--endpoint-url``.
    requests
        Paths of the GET requests received.
    """

    def __init__(self, buckets: dict[str, dict[str, bytes]]) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.buckets = buckets
        self._server.requests = []
        self._server.lock = threading.Lock()
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def requests(self) -> list[str]:
        with self._server.lock:
            return list(self._server.requests)

    def __enter__(self) -> S3StandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
