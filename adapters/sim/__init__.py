"""The simulated plant and ``ems run --simulate`` (the runtime it drives is :mod:`adapters.runtime`)."""
