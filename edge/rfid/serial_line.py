"""Serial line readers: one tag read per line, through pyserial, reopened when unplugged.

Lines are split here (pyserial's readline returns partial lines on a timeout); a line longer
than MAX_LINE is line noise and is dropped whole. A USB reader that disappears is retried
every `reconnect_s`; the outage is counted once, not once per retry.
"""

from __future__ import annotations

import logging
import re
import threading

import serial

from edge.config import SerialReaderTransport
from edge.rfid.receiver import PayloadReceiver

log = logging.getLogger(__name__)

MAX_LINE = 1024
_EOL = re.compile(rb"[\r\n]")


class SerialLineReader(PayloadReceiver[SerialReaderTransport]):
    """Reads lines from one serial port and hands each to `deliver`; ready while it is open."""

    def _set_up(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rfid-serial-{self.reader_id}")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _run(self) -> None:
        down = False  # count an outage once
        while not self._stop.is_set():
            try:
                port = serial.serial_for_url(
                    self.transport.device, baudrate=self.transport.baudrate, timeout=0.2
                )
            except (serial.SerialException, OSError, ValueError) as exc:
                if not down:
                    self.problem("disconnected", str(exc))
                down = True
                self._stop.wait(self.transport.reconnect_s)
                continue
            log.info("reader %s: %s open", self.reader_id, self.transport.device)
            down = False
            self.ready.set()
            try:
                self._read_lines(port)
            except (serial.SerialException, OSError) as exc:
                self.problem("disconnected", str(exc))
                down = True
                self._stop.wait(self.transport.reconnect_s)
            finally:
                self.ready.clear()
                port.close()

    def _read_lines(self, port: serial.Serial) -> None:
        pending, discarding = b"", False  # discarding: the rest of an over-long line
        while not self._stop.is_set():
            chunk = port.read(max(1, port.in_waiting))
            if not chunk:
                continue
            *lines, pending = _EOL.split(pending + chunk)
            if discarding:
                if not lines:
                    pending = b""
                    continue
                lines, discarding = lines[1:], False
            for line in lines:
                if len(line) > MAX_LINE:
                    self.problem("line_too_long", repr(line[:40]))
                elif line.strip():
                    self.deliver(line)
            if len(pending) > MAX_LINE:
                self.problem("line_too_long", repr(pending[:40]))
                pending, discarding = b"", True
