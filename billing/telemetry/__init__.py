"""Telemetry: the payload contract, the MQTT ingest and its inbox and in-flight log, the
storage of readings and of rejected messages (list, get, replay), and the telemetry API.
Metering reads its readings and its queue; telemetry knows nothing of metering."""
