"""SITE.yaml ocpp:/modbus: sections: validated with one-line errors naming file and field; every
declared device must be one the plan knows."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from adapters.devices.runtime import device_settings
from ems.errors import ConfigError

KNOWN = {("hub1", "ev_charger", "cp1"), ("hub1", "battery", "bess"), ("hub1", "meter", "main")}


def _cp(**kw):
    return {"id": "WB1", "hub": "hub1", "device": "cp1", **kw}


def _dev(**kw):
    return {"hub": "hub1", "kind": "battery", "device": "bess", "host": "10.0.0.2", **kw}


def _ocpp(profile, *cps):
    return SimpleNamespace(
        ocpp={"security_profile": profile, "charge_points": list(cps)},
        modbus=None,
        path_="site.yaml",
    )


def _modbus(*devs):
    return SimpleNamespace(ocpp=None, modbus={"devices": list(devs)}, path_="site.yaml")


def test_valid_sections():
    site = _ocpp(1, _cp(password="x"))
    site.modbus = {"devices": [_dev()]}
    ocpp, modbus = device_settings(site, KNOWN)
    assert ocpp.charge_points[0].password_value() == "x"
    assert modbus.devices[0].poll_interval_s == 5.0


NOT_OURS = (
    "ocpp.charge_points[WB9]: hub1/ev_charger/cp9 is not a device of this site "
    "(its ev_chargers: ['hub1/ev_charger/cp1'])"
)


@pytest.mark.parametrize(
    ("site", "message"),
    [
        (_ocpp(2), "site.yaml: ocpp: Value error, security_profile 2 needs cert_file"),
        (_ocpp(1, _cp()), "needs a password"),
        (_ocpp(0, _cp(id="a/b")), "site.yaml: ocpp.charge_points.0.id: String should match"),
        (_ocpp(0, _cp(id="WB9", device="cp9")), NOT_OURS),
        (_modbus(_dev(kind="meter", device="main")), "register_map is required"),
        (
            _modbus(_dev(kind="chp")),
            "modbus.devices.0.kind: Value error, 'chp' is not a Modbus device kind "
            "(meter, pv, battery)",
        ),
        (
            _modbus(_dev(poll_interval_s=0)),
            "modbus.devices.0.poll_interval_s: Input should be greater than or equal to 0.2",
        ),
    ],
)
def test_bad_sections_one_line(site, message):
    with pytest.raises(ConfigError) as err:
        device_settings(site, KNOWN)
    text = str(err.value)
    assert message in text and "\n" not in text
