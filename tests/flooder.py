"""A flood of junk on one gateway's topics, from a process of its own: `python -m
tests.flooder HOST PORT TOPIC RATE SECONDS` publishes RATE messages a second (QoS 0, each
one different) for SECONDS and prints what it reached as JSON ({"sent": n, "seconds": s})."""

from __future__ import annotations

import json
import sys
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def flood(host: str, port: int, topic: str, rate: int, seconds: float) -> dict[str, float]:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"flood-{uuid.uuid4().hex[:8]}")
    client.max_queued_messages_set(0)
    client.connect(host, port)
    client.loop_start()
    filler = "x" * 150
    sent, started = 0, time.monotonic()
    tick = 0.01  # publish in slices of 10 ms, each one its share of the rate
    while (elapsed := time.monotonic() - started) < seconds:
        due = int(rate * min(elapsed + tick, seconds))
        while sent < due:
            client.publish(topic, f'{{"v": 1, "junk": "{filler}", "n": {sent}'.encode(), qos=0)
            sent += 1
        pause = started + (elapsed + tick) - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    elapsed = time.monotonic() - started
    time.sleep(0.5)  # paho's network thread sends what it queued
    client.loop_stop()
    client.disconnect()
    return {"sent": sent, "seconds": elapsed}


if __name__ == "__main__":
    host, port, topic, rate, seconds = sys.argv[1:6]
    print(json.dumps(flood(host, int(port), topic, int(rate), float(seconds))), flush=True)
