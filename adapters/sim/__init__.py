"""Simulated plant and the operation daemon's runtime (``ems run``, ``ems run --simulate``)."""
