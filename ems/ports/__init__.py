"""Ports: small interfaces that adapters implement (telemetry source, setpoint sink, time-series
store, ledger store, clock).
"""
