"""Adapters to the outside world: CLI, runtime, MQTT, InfluxDB, SQLite, broker, simulated plant."""
