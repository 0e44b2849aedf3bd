"""RFID at dock doors and cold-room doors: reader adapters, debounce, EPC decode.

The flow, one module each:
  http_push, mqtt_sub, serial_line, simulator   reader adapters (threads; raw payloads in)
  receiver                                      what http_push, mqtt_sub, serial_line share
  profiles                                      reader profiles (firmware-configs/readers)
  decode                                        payload -> TagRead by a profile
  feed                                          one reader: reads -> read points -> passes
  debounce                                      passes -> Observation, with GS1 keys, direction
  service                                       RfidService: the adapters, a ticker, the sink
The gateway appends what RfidService hands it to the buffer as kind "observation".
"""

from __future__ import annotations

from edge.rfid.debounce import Debouncer, TagIdentity, identify
from edge.rfid.decode import Rejected, TagRead
from edge.rfid.feed import ReaderFeed
from edge.rfid.profiles import ReaderProfile, load_profile, load_reader_profiles
from edge.rfid.service import LoadedReader, RfidService
from edge.rfid.simulator import portal_pass

__all__ = [
    "Debouncer",
    "LoadedReader",
    "ReaderFeed",
    "ReaderProfile",
    "Rejected",
    "RfidService",
    "TagIdentity",
    "TagRead",
    "identify",
    "load_profile",
    "load_reader_profiles",
    "portal_pass",
]
