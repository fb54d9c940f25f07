"""Adapters to the outside world: CLI, MQTT, InfluxDB, SQLite, embedded broker, simulated plant."""
