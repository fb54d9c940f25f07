"""Operation mode (SPEC §4): the receding-horizon controller and its pure helpers.

No network and no database here: adapters (MQTT, stores, the simulated plant, the CLI daemon)
call :class:`ems.operation.controller.Controller` with forecasts and the estimated state.
"""
