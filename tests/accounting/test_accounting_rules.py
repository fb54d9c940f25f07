"""SPEC §6 worked example and hand-computed TIP / attribution / allocation cases.

Every expected figure below is computed by hand in the comment next to it from the rules of
DM MASE 414/2023 and ARERA TIAD, not taken from the code's output.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from ems.accounting.config import Plant
from ems.accounting.rules import power_band, tip_rate_eur_per_mwh, to_cents
from ems.accounting.statement import allocate_cents, build_statement
from ems.errors import ConfigError
from tests.accounting.acct_helpers import NOON, make_cfg, member, one_hour, plant

D = Decimal


def test_spec_worked_example_to_the_cent() -> None:
    # North, Pz 110; new PV A 150 kW (2024) injects 90 kWh, old PV B (2019) 20 kWh; members 100 kWh.
    cfg = make_cfg(
        [plant("A", 1, 150, "2024-01-15"), plant("B", 2, 20, "2019-05-01")],
        [member("m1", 3), member("m2", 4)],
    )
    row = one_hour(cfg, {1: 90, 2: 20}, {3: 60, 4: 40}, pz=110)
    a, b = {p.plant_id: p for p in row.plants}["A"], {p.plant_id: p for p in row.plants}["B"]
    assert row.shared_wh == 100_000  # min(110, 100) kWh
    assert b.shared_wh == 20_000 and a.shared_wh == 80_000  # B first (older), A the rest
    assert b.tip_eur == 0 and not b.tip_eligible  # pre-existing: no TIP
    assert a.tip_rate_eur_per_mwh == D(130)  # min(120, 80 + 70) + 10
    assert to_cents(a.tip_eur) == D("10.40")  # 0.08 MWh × 130
    assert to_cents(row.valorisation_eur) == D("1.12")  # 0.1 MWh × 11.22 = 1.122
    assert to_cents(row.sale_eur) == D("12.10")  # 0.11 MWh × 110
    st = build_statement(cfg, cfg.configurations[0], [row], [NOON], "2024-06", False)
    assert (st.tip_eur, st.valorisation_eur, st.sale_eur) == (D("10.40"), D("1.12"), D("12.10"))
    assert st.incentive_eur == D("11.52")


@pytest.mark.parametrize(
    "kw, pz, region, expected_rate",
    [
        (200, 100, "Puglia", 120),  # ≤ 200 kW: min(120, 80 + 80) = 120, South FC 0
        ("200.5", 100, "Puglia", 110),  # just above 200 kW: min(110, 70 + 80) = 110
        (600, 150, "Puglia", 100),  # = 600 kW still 2nd band: min(110, 70 + 30) = 100
        (601, 150, "Puglia", 90),  # > 600 kW: min(100, 60 + 30) = 90
        (150, 200, "Lazio", 84),  # Pz above 180: variable part 0 → 80, + FC Centre 4
        (
            150,
            30,
            "Toscana",
            124,
        ),  # cap binds: min(120, 80 + 150) = 120, + FC Centre 4 after the cap
        (150, 30, "Liguria", 130),  # cap binds, + FC North 10
    ],
)
def test_tip_rate_bands_cap_pz_and_fc(kw, pz, region, expected_rate) -> None:
    p = Plant(
        id="p",
        pod="IT001E00000001",
        power_kw=D(str(kw)),
        entry_into_service="2024-02-01",
        region=region,
        cabina_primaria="CP1",
    )
    assert tip_rate_eur_per_mwh(p, D(pz)) == D(expected_rate)


def test_fc_only_for_pv_and_band_edges() -> None:
    wind = Plant(
        id="w",
        pod="IT001E00000001",
        power_kw=D(150),
        technology="wind",
        entry_into_service="2024-02-01",
        region="Liguria",
        cabina_primaria="CP1",
    )
    assert tip_rate_eur_per_mwh(wind, D(30)) == D(120)  # cap, no FC for wind
    assert power_band(D(200)) == (D(80), D(120))
    assert power_band(D("200.001")) == (D(70), D(110))
    assert power_band(D(600)) == (D(70), D(110))
    assert power_band(D("600.001")) == (D(60), D(100))


def test_band_edge_amounts() -> None:
    # 200 kW PV in Liguria, Pz 100: min(120, 160) + 10 = 130 €/MWh; 50 kWh shared → 6.50 €.
    cfg = make_cfg([plant("A", 1, 200)], [member("m", 2)])
    assert to_cents(one_hour(cfg, {1: 50}, {2: 80}, pz=100).tip_eur) == D("6.50")
    # 600 kW in Puglia (South, no FC), Pz 150: min(110, 100) = 100 €/MWh; 200 kWh → 20.00 €.
    cfg = make_cfg([plant("A", 1, 600, region="Puglia")], [member("m", 2)])
    assert to_cents(one_hour(cfg, {1: 300}, {2: 200}, pz=150).tip_eur) == D("20.00")
    # 601 kW: min(100, 90) = 90 €/MWh → 18.00 €.
    cfg = make_cfg([plant("A", 1, 601, region="Puglia")], [member("m", 2)])
    assert to_cents(one_hour(cfg, {1: 300}, {2: 200}, pz=150).tip_eur) == D("18.00")


def test_pz_above_180_and_cap_binding_amounts() -> None:
    # Lazio PV 150 kW, Pz 200: 80 + 4 = 84 €/MWh; 10 kWh → 0.84 €.
    cfg = make_cfg([plant("A", 1, 150, region="Lazio")], [member("m", 2)])
    assert to_cents(one_hour(cfg, {1: 10}, {2: 10}, pz=200).tip_eur) == D("0.84")
    # Toscana PV 150 kW, Pz 30: cap 120 + 4 = 124 €/MWh; 100 kWh → 12.40 €; sale 0.1 × 30 = 3.00 €.
    cfg = make_cfg([plant("A", 1, 150, region="Toscana")], [member("m", 2)])
    row = one_hour(cfg, {1: 100}, {2: 150}, pz=30)
    assert to_cents(row.tip_eur) == D("12.40") and to_cents(row.sale_eur) == D("3.00")


def test_capital_grant_with_exempt_member() -> None:
    # 100 kW PV North, grant 40 % → F = 0.5; Pz 110 → 130 €/MWh. Plant injects 80 kWh; a company
    # withdraws 30 kWh and a public body 10 kWh → shared 40 kWh, exempt 40 × 10/40 = 10 kWh.
    # TIP = 130 × (40 − 0.5 × 30) / 1000 = 3.25 €.
    plants = [plant("A", 1, 100, grant=40)]
    cfg = make_cfg(
        plants, [member("c", 2, kind="company"), member("comune", 3, kind="public_body")]
    )
    assert to_cents(one_hour(cfg, {1: 80}, {2: 30, 3: 10}).tip_eur) == D("3.25")
    # Only companies: F on everything: 5.20 × 0.5 = 2.60 €.
    cfg = make_cfg(plants, [member("c", 2, kind="company"), member("d", 3, kind="company")])
    assert to_cents(one_hour(cfg, {1: 80}, {2: 30, 3: 10}).tip_eur) == D("2.60")
    # DM 127/2025 / Regole Operative 2025: natural persons and environmental-protection bodies are
    # exempt too: a household and an environmental body withdraw everything → 5.20 €.
    for kind in ("household", "environmental_body", "third_sector", "religious_body"):
        cfg = make_cfg(plants, [member("x", 2, kind=kind), member("c", 3, kind="company")])
        assert to_cents(one_hour(cfg, {1: 80}, {2: 40, 3: 0}).tip_eur) == D("5.20"), kind
    # Grant 20 % → F = 0.25, a company only: 5.20 × 0.75 = 3.90 €.
    cfg = make_cfg([plant("A", 1, 100, grant=20)], [member("c", 2, kind="company")])
    assert to_cents(one_hour(cfg, {1: 80}, {2: 40}).tip_eur) == D("3.90")


def test_exempt_energy_goes_first_to_the_granted_plant() -> None:
    # B (no grant, in service first) and A (grant 40 %, F = 0.5) inject 40 kWh each; a company and
    # a household withdraw 40 kWh each → shared 80: B takes 40, A 40 (entry order). Exempt energy
    # = 80 × 40/80 = 40 kWh, all to A (granted plant first): A 0.04 × 130 = 5.20 € without F,
    # B 5.20 € → 10.40 €. Pro rata (the old reading) would give A 5.20 × (1 − 0.5 × 0.5) = 3.90.
    cfg = make_cfg(
        [plant("A", 1, 100, "2024-02-01", grant=40), plant("B", 2, 100, "2024-01-01")],
        [member("c", 3, kind="company"), member("h", 4)],
    )
    row = one_hour(cfg, {1: 40, 2: 40}, {3: 40, 4: 40})
    by = {p.plant_id: to_cents(p.tip_eur) for p in row.plants}
    assert by == {"A": D("5.20"), "B": D("5.20")}
    # Only 20 kWh exempt (household 20 of 80 withdrawn; shared 80 → exempt 20): A gets all 20:
    # A = 130 × (40 − 0.5 × 20) / 1000 = 3.90 €.
    row = one_hour(cfg, {1: 40, 2: 40}, {3: 60, 4: 20})
    assert to_cents(next(p.tip_eur for p in row.plants if p.plant_id == "A")) == D("3.90")


def test_rules_api_for_the_model_builder() -> None:
    from ems.accounting.rules import (
        attribute_exempt_energy,
        fc_eur_per_mwh,
        grant_factor,
        tip_amount_eur,
        tip_rate,
    )

    assert tip_rate(200, 110, fc_eur_per_mwh("pv", "Liguria")) == D(130)  # 200 kW: first band
    assert tip_rate(600.0, 50, fc_eur_per_mwh("pv", "Lazio")) == D(114)  # min(110, 200) + 4
    assert tip_rate(601, 200, fc_eur_per_mwh("wind", "Liguria")) == D(60)
    assert grant_factor(40) == D("0.5") and grant_factor(20) == D("0.25")
    assert attribute_exempt_energy({"b": 40, "a": 40}, {"a": True}, 50) == {"a": 40, "b": 10}
    assert tip_amount_eur(40_000, 130, D("0.5"), 10_000) == D("3.25")


def test_two_cabine_primarie_are_summed_not_pooled() -> None:
    # CP1: inject 50, withdraw 20 → 20; CP2: inject 10, withdraw 40 → 10. Total 30 kWh, not 60.
    cfg = make_cfg(
        [plant("A", 1, 100, cp="CP1"), plant("B", 2, 100, cp="CP2", entry="2023-01-01")],
        [member("m1", 3, cp="CP1"), member("m2", 4, cp="CP2")],
    )
    row = one_hour(cfg, {1: 50, 2: 10}, {3: 20, 4: 40})
    assert row.shared_wh == 30_000
    by = {p.plant_id: p.shared_wh for p in row.plants}
    assert by == {"A": 20_000, "B": 10_000}  # each plant only in its own cabina
    assert {c.cabina: c.shared_wh for c in row.cabine} == {"CP1": 20_000, "CP2": 10_000}
    # TIP at 130 €/MWh on 30 kWh = 3.90 €
    assert to_cents(row.tip_eur) == D("3.90")


def test_pre_existing_plant_takes_its_share_first_whatever_the_listing_order() -> None:
    # New A (listed first) and old B (2020) inject 50 kWh each; members withdraw 60 kWh.
    # B takes 50 (no TIP), A the remaining 10 → TIP 0.01 × 130 = 1.30 €; valorisation on all 60.
    cfg = make_cfg(
        [plant("A", 1, 100, "2024-01-01"), plant("B", 2, 40, "2020-03-01")], [member("m", 3)]
    )
    row = one_hour(cfg, {1: 50, 2: 50}, {3: 60})
    by = {p.plant_id: p for p in row.plants}
    assert by["B"].shared_wh == 50_000 and by["A"].shared_wh == 10_000
    assert to_cents(row.tip_eur) == D("1.30")
    assert to_cents(row.valorisation_eur) == D("0.67")  # 0.06 × 11.22 = 0.6732
    # Between two new plants, the earlier entry into service goes first.
    cfg = make_cfg(
        [plant("late", 1, 100, "2024-05-01"), plant("early", 2, 100, "2023-05-01")],
        [member("m", 3)],
    )
    by = {p.plant_id: p.shared_wh for p in one_hour(cfg, {1: 50, 2: 50}, {3: 60}).plants}
    assert by == {"late": 10_000, "early": 50_000}


def test_plant_past_twenty_years_gets_no_tip() -> None:
    cfg = make_cfg(
        [plant("A", 1, 100, "2022-01-10")],
        [member("m", 2)],
        valorisation={2042: {"tras_e_eur_per_mwh": "10", "btau_eur_per_mwh": "1"}},
    )
    from datetime import datetime

    from ems.accounting.timeutil import ROME

    before = int(datetime(2042, 1, 9, 12, tzinfo=ROME).timestamp())
    after = int(datetime(2042, 1, 10, 12, tzinfo=ROME).timestamp())
    assert one_hour(cfg, {1: 10}, {2: 10}, hour=before).tip_eur > 0
    row = one_hour(cfg, {1: 10}, {2: 10}, hour=after)
    assert row.tip_eur == 0 and to_cents(row.valorisation_eur) == D("0.11")  # 0.01 × 11


def test_surplus_rule_and_allocation_to_non_company_members() -> None:
    # One hour: plant injects 100 kWh, members withdraw 70 (household 30, company 40): shared 70,
    # ratio 70 % → 15 points above 55 %. TIP 0.07 × 130 = 9.10 €; surplus 15 % = 1.365 → 1.37 €.
    # Valorisation 0.07 × 11.22 = 0.7854 → 0.79 €. Incentive 9.89 €; general part 9.89 − 1.37 = 8.52 €
    # split by shared share 30:40 → 365.14 / 486.86 cents → largest remainder 365 / 487.
    # household: 1.37 + 3.65 = 5.02 €; company 4.87 €.
    cfg = make_cfg([plant("A", 1, 100)], [member("h", 2), member("c", 3, kind="company")])
    row = one_hour(cfg, {1: 100}, {2: 30, 3: 40})
    st = build_statement(cfg, cfg.configurations[0], [row], [NOON], "2024", True)
    assert st.tip_eur == D("9.10") and st.valorisation_eur == D("0.79")
    [j] = st.surplus_sets
    assert (j.name, j.ratio, j.excess_points) == ("tip_only", D("0.7"), D("0.15"))
    assert st.surplus_eur == D("1.37")
    alloc = {m.member_id: m.allocation_eur for m in st.members}
    assert alloc == {"h": D("5.02"), "c": D("4.87")}
    assert {m.member_id: m.surplus_eur for m in st.members} == {"h": D("1.37"), "c": D("0.00")}
    # With a capital grant the set's threshold is 45 %: 25 points. F = 0.25 except on the
    # household's 30 kWh: TIP 130 × (70 − 0.25 × 40) / 1000 = 7.80 €; surplus 25 % = 1.95 €.
    cfg = make_cfg([plant("A", 1, 100, grant=20)], [member("h", 2), member("c", 3, kind="company")])
    st = build_statement(
        cfg, cfg.configurations[0], [one_hour(cfg, {1: 100}, {2: 30, 3: 40})], [NOON], "2024", True
    )
    assert st.tip_eur == D("7.80") and st.surplus_eur == D("1.95")
    assert [j.name for j in st.surplus_sets] == ["tip_plus_grant"]
    # Ratio below 55 %: no surplus.
    cfg = make_cfg([plant("A", 1, 100)], [member("h", 2)])
    st = build_statement(
        cfg, cfg.configurations[0], [one_hour(cfg, {1: 100}, {2: 50})], [NOON], "2024", True
    )
    assert st.surplus_eur == D("0.00")


def test_surplus_per_set_not_per_plant_issue_example() -> None:
    # The issue's example: a plant at 90 % with 9,000 € of TIP and one at 20 % with 2,000 €, equal
    # injection → set ratio (90 + 20) / 200 = 55 % → 0 € (per plant: 35 % × 9,000 = 3,150 €).
    from ems.accounting.rules import SurplusPlant, surplus_by_set, to_cents

    mwh = 1_000_000
    a = SurplusPlant("A", False, 90 * mwh, 100 * mwh, D(9000))
    b = SurplusPlant("B", False, 20 * mwh, 100 * mwh, D(2000))
    [j] = surplus_by_set([a, b])
    assert (j.ratio, j.excess_points, j.surplus_eur) == (D("0.55"), D(0), D(0))
    assert (D("0.90") - D("0.55")) * 9000 == D("3150.00")  # what the per-plant reading gave
    # Two sets: a granted plant at 60 % (45 % threshold, 15 points × 1,000 €) is its own set;
    # the TIP-only set stays at 55 %: surplus 150 € in all.
    c = SurplusPlant("C", True, 60 * mwh, 100 * mwh, D(1000))
    sets = {j.name: j for j in surplus_by_set([a, b, c])}
    assert sets["tip_only"].surplus_eur == 0
    assert sets["tip_plus_grant"].excess_points == D("0.15")
    assert to_cents(sets["tip_plus_grant"].surplus_eur) == D("150.00")


def test_surplus_per_set_on_a_statement() -> None:
    # Two cabine so each plant's share is its own: A (CP1) injects 100 kWh, 90 shared; B (CP2)
    # injects 100, 20 shared. TIP A 0.09 × 130 = 11.70 €, B 0.02 × 130 = 2.60 €. Set ratio
    # 110 / 200 = 55 % → surplus 0.00 € (per plant it would be 35 % × 11.70 = 4.10 €).
    cfg = make_cfg(
        [plant("A", 1, 100, cp="CP1"), plant("B", 2, 100, cp="CP2")],
        [member("h1", 3, cp="CP1"), member("h2", 4, cp="CP2")],
    )
    row = one_hour(cfg, {1: 100, 2: 100}, {3: 90, 4: 20})
    st = build_statement(cfg, cfg.configurations[0], [row], [NOON], "2024", True)
    assert st.tip_eur == D("14.30") and st.surplus_eur == D("0.00")
    [j] = st.surplus_sets
    assert j.ratio == D("0.55") and j.plant_ids == ("A", "B")


def test_surplus_basis_is_rejected_with_a_clear_message() -> None:
    from ems.accounting.config import parse_accounting_config
    from ems.errors import ConfigError

    base = make_cfg([plant("A", 1, 100)], [member("h", 2)])
    data = base.model_dump(mode="json", exclude={"default_parameters"})
    with pytest.raises(ConfigError, match="surplus_basis was removed"):
        parse_accounting_config({**data, "surplus_basis": "excess_energy"}, "x.yaml")


def test_surplus_goes_to_social_purposes_without_non_company_members() -> None:
    cfg = make_cfg([plant("A", 1, 100)], [member("c", 2, kind="company")])
    st = build_statement(
        cfg, cfg.configurations[0], [one_hour(cfg, {1: 100}, {2: 100})], [NOON], "2024", True
    )
    # ratio 100 % → 45 points of TIP 13.00 € = 5.85 €
    assert st.surplus_eur == D("5.85") and st.social_purposes_eur == D("5.85")
    assert st.members[0].allocation_eur == st.incentive_eur - D("5.85")


def test_statute_pots_fixed_quotas_weights_and_by_injected() -> None:
    # TIP 0.1 MWh × 130 = 13.00 €, valorisation 1.122 → 1.12 €: incentive 14.12 € (ratio 50 %: no surplus).
    statute = {
        "allocation": [
            {"share_pct": 50, "method": "by_injected"},
            {"share_pct": 25, "method": "fixed", "quotas": {"h1": 60, "h2": 40}},
            {"share_pct": 25, "method": "weights", "quotas": {"h1": 1, "h2": 3}},
        ]
    }
    cfg = make_cfg(
        [plant("A", 1, 100, owner="h1")], [member("h1", 2), member("h2", 3)], statute=statute
    )
    st = build_statement(
        cfg,
        cfg.configurations[0],
        [one_hour(cfg, {1: 200}, {2: 50, 3: 50})],
        [NOON],
        "2024-06",
        False,
    )
    assert st.incentive_eur == D("14.12")
    # pots: 706 / 353 / 353 cents. by_injected → h1 706. fixed: h1 211.8 → 212, h2 141.2 → 141.
    # weights 1:3: h1 88.25 → 88, h2 264.75 → 265. h1 = 706 + 212 + 88 = 1006; h2 = 141 + 265 = 406.
    alloc = {m.member_id: m.allocation_eur for m in st.members}
    assert alloc == {"h1": D("10.06"), "h2": D("4.06")}
    assert {m.member_id: m.sale_eur for m in st.members} == {
        "h1": D("22.00"),
        "h2": D("0.00"),
    }  # 0.2 × 110


def test_by_injected_credits_owners_of_pre_existing_plants_too() -> None:
    # old B (owner h2) takes 20 kWh first, new A (owner h1) 30 kWh: TIP 0.03 × 130 = 3.90 €,
    # valorisation 0.05 × 11.22 = 0.561 → 0.56 €: 4.46 € split 30:20 by_injected → 2.676 / 1.784 → 2.68 / 1.78
    cfg = make_cfg(
        [plant("A", 1, 100, owner="h1"), plant("B", 2, 20, "2020-01-01", owner="h2")],
        [member("h1", 3), member("h2", 4)],
        statute={"allocation": [{"method": "by_injected"}]},
    )
    st = build_statement(
        cfg,
        cfg.configurations[0],
        [one_hour(cfg, {1: 100, 2: 20}, {3: 25, 4: 25})],
        [NOON],
        "2024-06",
        False,
    )
    assert st.incentive_eur == D("4.46")
    assert {m.member_id: (m.plants_shared_wh, m.allocation_eur) for m in st.members} == {
        "h1": (30_000, D("2.68")),
        "h2": (20_000, D("1.78")),
    }


def test_allocate_cents_largest_remainder() -> None:
    assert allocate_cents(100, {"a": 1, "b": 1, "c": 1}) == {"a": 34, "b": 33, "c": 33}
    assert allocate_cents(10, {"a": 0, "b": 0}) == {"a": 5, "b": 5}
    assert (
        sum(allocate_cents(12345, {"x": D("0.3"), "y": D("0.3"), "z": D("0.4")}).values()) == 12345
    )


@pytest.mark.parametrize(
    "mutate, field, problem",
    [
        (
            lambda c: c["configurations"][0]["plants"][0].update(power_kw="1200"),
            "power_kw",
            "less than or equal to 1000",
        ),
        (
            lambda c: c["configurations"][0]["plants"][0].update(capital_grant_pct="45"),
            "capital_grant_pct",
            "40",
        ),
        (
            lambda c: c["configurations"][0]["plants"][0].update(region="Atlantis"),
            "region",
            "unknown Italian region",
        ),
        (lambda c: c["configurations"][0]["members"][0].update(pod="XX123"), "pod", "is not a POD"),
        (lambda c: c["configurations"][0]["members"][0].update(kind="alien"), "kind", "household"),
        (
            lambda c: c["configurations"][0]["plants"].append(
                {
                    **c["configurations"][0]["plants"][0],
                    "id": "old",
                    "pod": "IT001E00000099",
                    "power_kw": "100",
                    "entry_into_service": "2020-01-01",
                }
            ),
            "configurations[cer1]",
            "more than 30 %",
        ),
        (
            lambda c: c["configurations"][0].update(
                statute={"allocation": [{"method": "fixed", "quotas": {"m": 50}}]}
            ),
            "statute",
            "sum to 100",
        ),
    ],
)
def test_config_errors_name_file_field_and_problem(mutate, field, problem) -> None:
    from ems.accounting.config import parse_accounting_config

    data = {
        "community": "X",
        "configurations": [
            {"id": "cer1", "plants": [plant("A", 1, 100)], "members": [member("m", 2)]}
        ],
    }
    mutate(data)
    with pytest.raises(ConfigError) as exc:
        parse_accounting_config(data, "cer.yaml")
    msg = str(exc.value)
    assert msg.startswith("cer.yaml: ") and field in msg and problem in msg, msg
