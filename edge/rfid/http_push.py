"""Fixed readers that push tag reads as JSON over HTTP POST (Zebra FX, Impinj R700 webhooks).

The standard library's ThreadingHTTPServer in a thread: 204 for a body taken (bad reads inside
it are counted, not refused, so a reader does not resend a whole batch), 400 for a body that is
not JSON, 413 past the size cap, 404 off the configured path.
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from edge.config import HttpReaderTransport
from edge.rfid.receiver import PayloadReceiver

log = logging.getLogger(__name__)

MAX_BODY = 8 * 1024 * 1024


class HttpReceiver(PayloadReceiver[HttpReaderTransport]):
    """Hands each body one reader POSTs to `deliver`; ready once listening."""

    def _set_up(self) -> None:
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port listened on (the real one when the config says 0)."""
        assert self._server is not None, "not started"
        return self._server.server_address[1]

    def start(self) -> None:
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

    def _reply(self, status: int, close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        log.debug("reader %s: http %s", self.server.receiver.reader_id, format % args)
