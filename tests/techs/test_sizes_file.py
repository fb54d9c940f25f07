"""The sizes file model (ems/config/sizes.py): what design writes is what operation reads."""

from __future__ import annotations

import pytest

from ems.config.sizes import SizesFile
from ems.errors import ConfigError


@pytest.mark.parametrize(
    ("raw", "field", "problem"),
    [
        ({"hubs": {"h1": {"pv": {"kwp": -5}}}}, "hubs.h1.pv.kwp", "not a size"),
        ({"hubs": {"h1": {"pv": {"kwp": "big"}}}}, "hubs.h1.pv.kwp", "not a number"),
        ({"hubs": {"h1": {"pv": {"kwp": float("nan")}}}}, "hubs.h1.pv.kwp", "not a size"),
        ({"sizes": {}}, "hubs", "missing"),
        ({"hubs": {"h1": {}}, "extra": 1}, "extra", "Extra inputs"),
    ],
)
def test_bad_sizes_file_is_one_clear_error(raw: dict, field: str, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        SizesFile.parse(raw, "sizes.yaml")
    assert err.value.field == field and problem in err.value.problem


def test_site_overrides_merge_entry_by_entry() -> None:
    f = SizesFile.parse(
        {"hubs": {"h1": {"battery": {"modules": 4, "kwh": 20.0}, "pv_mono": {"kwp": 50.0}}}}, "s"
    )
    got = f.installed({"h1": {"battery": {"modules": 2}}, "h2": {"pv_mono": {"kwp": 10.0}}})
    assert got == {
        "h1": {"battery": {"modules": 2, "kwh": 20.0}, "pv_mono": {"kwp": 50.0}},
        "h2": {"pv_mono": {"kwp": 10.0}},
    }
    assert f.hubs["h1"]["battery"]["modules"] == 4  # the file model is not changed
