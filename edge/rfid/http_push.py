"""Fixed readers that push tag reads as JSON over HTTP POST (Zebra FX, Impinj R700 webhooks).

The standard library's ThreadingHTTPServer in a thread, on the configured address only: 401
without the reader token (Bearer, or Basic with the token as password; compared in constant
time, counted as a problem), 204 for a body taken (bad reads inside it are counted, not
refused, so a reader does not resend a whole batch), 400 for a body that is not JSON, 413 past
the size cap, 404 off the configured path.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from edge.config import HttpReaderTransport
from edge.rfid.receiver import PayloadReceiver

log = logging.getLogger(__name__)

MAX_BODY = 8 * 1024 * 1024
MIN_TOKEN = 16  # characters: a token anyone could guess protects nothing


class ReaderTokenError(RuntimeError):
    """The reader token is missing or too short: the receiver does not start without it."""


def reader_token(transport: HttpReaderTransport, reader_id: str) -> str:
    """The token a reader must send, from its file or environment variable."""
    if transport.token_file is not None:
        try:
            token = Path(transport.token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ReaderTokenError(f"reader {reader_id}: cannot read token_file: {exc}") from exc
        where = f"token_file {transport.token_file}"
    else:
        token = os.environ.get(transport.token_env or "", "").strip()
        where = f"environment variable {transport.token_env}"
    if len(token) < MIN_TOKEN:
        raise ReaderTokenError(
            f"reader {reader_id}: {where} holds no token of at least {MIN_TOKEN} characters"
        )
    return token


def presented_token(header: str | None) -> str | None:
    """The token in an Authorization header: Bearer, or Basic's password."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


class HttpReceiver(PayloadReceiver[HttpReaderTransport]):
    """Hands each body one reader POSTs to `deliver`; ready once listening."""

    def _set_up(self) -> None:
        self.token = b""  # read at start
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port listened on (the real one when the config says 0)."""
        assert self._server is not None, "not started"
        return self._server.server_address[1]

    def start(self) -> None:
        self.token = reader_token(self.transport, self.reader_id).encode()
        self._server = _Server((self.transport.host, self.transport.port), _Handler)
        self._server.receiver = self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name=f"rfid-http-{self.reader_id}",
            daemon=True,
        )
        self._thread.start()
        log.info(
            "reader %s: listening on http://%s:%d%s",
            self.reader_id,
            self.transport.host,
            self.port,
            self.transport.path,
        )
        self.ready.set()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: HttpReceiver


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive: readers post several times a second
    timeout = 60  # an idle keep-alive connection is closed, not held for ever

    def do_POST(self) -> None:
        receiver = self.server.receiver
        given = presented_token(self.headers.get("Authorization"))
        if given is None or not hmac.compare_digest(given.encode(), receiver.token):
            receiver.problem("unauthorised", f"from {self.client_address[0]}")
            self._reply(401, close=True, challenge=True)
            return
        if urlsplit(self.path).path != receiver.transport.path:
            self._reply(404)
            return
        body = self._body(receiver)
        if body is None:
            return
        self._reply(204 if receiver.deliver(body) else 400)

    def _body(self, receiver: HttpReceiver) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._chunked(receiver)
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._reply(411)
            return None
        if int(length) > MAX_BODY:
            receiver.problem("body_too_large", f"{length} bytes")
            self._reply(413, close=True)
            return None
        return self.rfile.read(int(length))

    def _chunked(self, receiver: HttpReceiver) -> bytes | None:
        parts: list[bytes] = []
        size = 0
        while True:
            line = self.rfile.readline(1024).split(b";")[0].strip()
            try:
                chunk = int(line, 16)
            except ValueError:
                self._reply(400, close=True)
                return None
            size += chunk
            if size > MAX_BODY:
                receiver.problem("body_too_large", f"over {MAX_BODY} bytes, chunked")
                self._reply(413, close=True)
                return None
            if chunk == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                return b"".join(parts)
            parts.append(self.rfile.read(chunk))
            self.rfile.readline(8)  # the CRLF after each chunk

    def _reply(self, status: int, close: bool = False, challenge: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        if challenge:
            self.send_header("WWW-Authenticate", 'Bearer realm="rfid", Basic realm="rfid"')
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        log.debug("reader %s: http %s", self.server.receiver.reader_id, format % args)
