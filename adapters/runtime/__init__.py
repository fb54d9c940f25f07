"""The production operation daemon's runtime (``ems run``): MQTT, stores, state file, scheduler."""
