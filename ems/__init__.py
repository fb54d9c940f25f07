"""cer-ems core: config schema, technologies, the one model builder, controller, forecasting,
accounting. No network or database code lives here; adapters implement the ports in
:mod:`ems.ports`."""

__version__ = "0.1.0"
