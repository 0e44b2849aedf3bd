"""Gateway agent: polls sensors, buffers durably, publishes over MQTT."""
