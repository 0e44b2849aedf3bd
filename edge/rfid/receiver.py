"""What the adapters that take raw payloads from a reader share: HTTP, MQTT, serial line."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

TransportT = TypeVar("TransportT")


class PayloadReceiver(Generic[TransportT]):
    """Takes one reader's payloads and hands each to `deliver` (False: unusable).

    Trouble is reported to `problem` as (kind, detail); `ready` is set while payloads can
    come in. A receiver sets up what its transport needs in `_set_up`, called last here.
    """

    def __init__(
        self,
        reader_id: str,
        transport: TransportT,
        deliver: Callable[[bytes], bool],
        problem: Callable[[str, str], None],
    ):
        self.reader_id = reader_id
        self.transport = transport
        self.deliver = deliver
        self.problem = problem
        self.ready = threading.Event()
        self._set_up()

    def _set_up(self) -> None:
        """What this kind of receiver holds beyond the shared state."""
