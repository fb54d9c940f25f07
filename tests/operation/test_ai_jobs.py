"""AI batch jobs announced one by one on ``cer/<c>/<hub>/ai_cluster/<id>/job``: validation, the
EMS's job book (windows in horizon steps, progress, done, late, overflow, expiry) and the plan
placing each job inside its own window."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from ems.operation.state import PlantState
from ems.techs.ai_cluster import AiCluster, batch_jobs, expire_jobs, take_job
from ems.telemetry.validate import Accepted, Rejected, RejectReason, decode_state, to_point
from tests.operation.conftest import noon, step_input

START = pd.Timestamp("2025-06-16 08:00", tz="UTC")
KEY = ("hub1", "ai_cluster", "gpu1")
NAME = "hub1/ai_cluster/gpu1"
TOPIC = "cer/c/hub1/ai_cluster/gpu1/job"
NOW = datetime(2025, 6, 16, 8, 0, tzinfo=timezone.utc)


def job(
    job_id: str,
    energy: float,
    deadline: str,
    *,
    ts: str = "2025-06-16T08:00:00Z",
    earliest: str | None = None,
    done: float = 0.0,
    status: str = "queued",
) -> dict:
    p = {
        "ts": ts,
        "job_id": job_id,
        "status": status,
        "energy_kwh": energy,
        "done_e_kwh": done,
        "deadline": deadline,
    }
    if earliest:
        p["earliest_start"] = earliest
    return p


def ingest(st: PlantState, key: tuple[str, str, str], payload: dict) -> bool:
    """A job announcement into the cluster's book in the plant state (what the service does
    through ``AiCluster.take_message``)."""
    return take_job(st.book(key), "/".join(key), payload)


def jobs_of(st: PlantState, key: tuple[str, str, str], *args, **kw) -> list:
    """The cluster's batch jobs over a horizon (what ``AiCluster.observe`` hands the model)."""
    name = "/".join(key)
    return batch_jobs(st.books.get(name), st.latest.get(name), *args, **kw)


def decode(payload: dict | bytes, topic: str = TOPIC):
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return decode_state(topic, raw, now=NOW, community="c")


def test_job_announcements_are_validated() -> None:
    ok = decode(job("j1", 20.0, "2025-06-16T12:00:00Z", earliest="2025-06-16T09:00:00Z"))
    assert isinstance(ok, Accepted) and ok.topic.channel == "job"
    point = to_point(ok)
    assert point.measurement == "ai_cluster_job" and point.fields["energy_kwh"] == 20.0
    assert point.fields["deadline_epoch_s"] == int(pd.Timestamp("2025-06-16T12:00:00Z").timestamp())
    bad = {
        RejectReason.INCONSISTENT: job(
            "j", 5.0, "2025-06-16T09:00:00Z", earliest="2025-06-16T10:00:00Z"
        ),
        RejectReason.MISSING_FIELD: {
            "ts": "2025-06-16T08:00:00Z",
            "job_id": "j",
            "energy_kwh": 5.0,
        },
        RejectReason.OUT_OF_RANGE: job("j", 0.0, "2025-06-16T09:00:00Z"),
        RejectReason.BAD_VALUE: job("j", 5.0, "2025-06-16T09:00:00Z", status="paused"),
    }
    for reason, payload in bad.items():
        res = decode(payload)
        assert isinstance(res, Rejected) and res.reason is reason, (reason, res)
    assert (
        decode(job("j", 5.0, "2025-06-16T09:00:00Z", done=9.0)).reason is RejectReason.INCONSISTENT
    )
    assert decode(job("bad id/", 5.0, "2025-06-16T09:00:00Z")).reason is RejectReason.BAD_VALUE
    # only AI clusters announce jobs; a job is not a state
    assert (
        decode(job("j", 5.0, "2025-06-16T09:00:00Z"), "cer/c/hub1/battery/bess/job").reason
        is RejectReason.UNKNOWN_KIND
    )
    assert decode(
        job("j", 5.0, "2025-06-16T09:00:00Z"), "cer/c/hub1/ai_cluster/gpu1/state"
    ).reason in (RejectReason.UNKNOWN_FIELD, RejectReason.MISSING_FIELD)
    assert decode(b"not json").reason is RejectReason.NOT_JSON


def test_job_book_windows_in_horizon_steps() -> None:
    st = PlantState()
    # 08:40 → first step 3 (steps start 08:00, 08:15, 08:30, 08:45: 08:45 is the first wholly after)
    assert ingest(
        st, KEY, job("a", 20.0, "2025-06-16T10:00:00Z", earliest="2025-06-16T08:40:00Z", done=5.0)
    )
    assert ingest(
        st, KEY, job("late", 4.0, "2025-06-16T07:00:00Z")
    )  # already late: due in the first step
    assert ingest(
        st, KEY, job("far", 9.0, "2025-06-17T12:00:00Z", earliest="2025-06-16T20:00:00Z")
    )  # after the horizon
    assert ingest(
        st, KEY, job("long", 30.0, "2025-06-17T06:00:00Z")
    )  # deadline past the horizon end
    jobs = {j.job_id: j for j in jobs_of(st, KEY, START, 0.25, 32)}
    assert set(jobs) == {"a", "late", "long"}
    assert (jobs["a"].e_kwh, jobs["a"].start_step, jobs["a"].deadline_step) == (15.0, 3, 8)
    assert (jobs["late"].start_step, jobs["late"].deadline_step) == (0, 1)
    assert (jobs["long"].start_step, jobs["long"].deadline_step) == (0, 32)


def test_job_progress_done_out_of_order_and_trigger() -> None:
    st = PlantState()
    assert ingest(st, KEY, job("a", 20.0, "2025-06-16T10:00:00Z"))  # new: on-demand step
    assert not ingest(
        st,
        KEY,
        job(
            "a", 20.0, "2025-06-16T10:00:00Z", ts="2025-06-16T08:15:00Z", done=8.0, status="running"
        ),
    )  # progress: no new work
    assert not ingest(
        st, KEY, job("a", 20.0, "2025-06-16T10:00:00Z", ts="2025-06-16T08:05:00Z")
    )  # older: ignored
    assert [j.e_kwh for j in jobs_of(st, KEY, START, 0.25, 32)] == [12.0]
    assert ingest(
        st,
        KEY,
        job(
            "a", 30.0, "2025-06-16T10:00:00Z", ts="2025-06-16T08:20:00Z", done=8.0, status="running"
        ),
    )  # more energy: new work
    ingest(
        st,
        KEY,
        job("a", 30.0, "2025-06-16T10:00:00Z", ts="2025-06-16T08:30:00Z", done=30.0, status="done"),
    )
    assert jobs_of(st, KEY, START, 0.25, 32) == []
    assert [c["job_id"] for c in st.books[NAME]["closed"]] == ["a"]
    # once a cluster announces jobs, its aggregated queue in the state is not counted again
    st.ingest(KEY, {"ts": "2025-06-16T08:30:00Z", "p_kw": 12.0, "queued_e_kwh": 50.0})
    assert jobs_of(st, KEY, START, 0.25, 32) == []
    # a cluster without announcements: its queue as one job due at its next deadline
    other = ("hub1", "ai_cluster", "gpu2")
    st.ingest(
        other,
        {
            "ts": "2025-06-16T08:30:00Z",
            "p_kw": 12.0,
            "queued_e_kwh": 50.0,
            "next_deadline": "2025-06-16T11:00:00Z",
        },
    )
    assert [(j.e_kwh, j.deadline_step) for j in jobs_of(st, other, START, 0.25, 32)] == [(50.0, 12)]
    # survives the state file
    again = PlantState.from_dict(json.loads(json.dumps(st.to_dict())))
    assert again.books == st.books and NAME in again.books


def test_more_jobs_than_slots_merge_conservatively_and_lost_jobs_expire() -> None:
    st = PlantState()
    for k, hour in enumerate((9, 10, 11, 12)):
        ingest(st, KEY, job(f"j{k}", 10.0 + k, f"2025-06-16T{hour:02d}:00:00Z"))
    jobs = jobs_of(st, KEY, START, 0.25, 32, max_jobs=3)
    assert [j.job_id for j in jobs] == ["j0", "j1", "j2+j3"]
    assert (
        jobs[2].e_kwh == 12.0 + 13.0 and jobs[2].deadline_step == 12
    )  # due at the earlier deadline (11:00)
    assert expire_jobs(st.book(KEY), NAME, pd.Timestamp("2025-06-18 09:30", tz="UTC")) == [
        "AI job hub1/ai_cluster/gpu1/j0 dropped: deadline 2025-06-16T09:00:00Z passed 48 h ago "
        "with no done/cancelled announcement"
    ]
    assert [j.job_id for j in jobs_of(st, KEY, START, 0.25, 32)] == ["j1", "j2", "j3"]


def test_plan_places_each_job_inside_its_own_window(op) -> None:
    """Two announced jobs with disjoint windows: the plan runs each inside its window (an
    aggregated queue could not tell them apart) and finishes both."""
    _site, setup, _fc, ctl = op
    st = PlantState()
    ingest(st, KEY, job("early", 20.0, "2025-06-16T10:00:00Z"))
    ingest(st, KEY, job("later", 25.0, "2025-06-16T14:00:00Z", earliest="2025-06-16T12:00:00Z"))
    jobs = jobs_of(st, KEY, noon(), ctl.dt_h, ctl.n_steps)
    assert [(j.start_step, j.deadline_step) for j in jobs] == [(0, 8), (16, 24)]
    res = ctl.step(step_input(op, noon(), device_state={KEY: jobs}))
    assert res.mode != "fallback" and res.short_kwh["ai_missed_kwh"]["gpu1"] < 1e-6
    ai = setup.first(AiCluster, "hub1")
    b = ai.block
    for j in jobs:
        slot = ai.slot_of[j.job_id]
        p = np.array([pyo.value(b.p_job_kw[slot, k]) for k in ctl.keys])
        assert abs(p[j.start_step : j.deadline_step].sum() * ctl.dt_h - j.e_kwh) < 1e-4
        assert np.abs(np.delete(p, range(j.start_step, j.deadline_step))).max() < 1e-6


def test_a_plant_state_persisted_before_the_books_restores_the_same_jobs() -> None:
    """A state file written before the device books (``ai_job_book`` and ``ai_jobs_closed`` at
    the top level) restores into the cluster's book: the same jobs reach the model, the closed
    ones are kept, and it is written back in the current layout."""
    st = PlantState()
    ingest(st, KEY, job("a", 20.0, "2025-06-16T10:00:00Z", done=5.0))
    ingest(st, KEY, job("b", 9.0, "2025-06-16T12:00:00Z", earliest="2025-06-16T09:00:00Z"))
    ingest(st, KEY, job("c", 3.0, "2025-06-16T11:00:00Z", status="done", done=3.0))
    old = {k: v for k, v in st.to_dict().items() if k != "books"}
    old["ai_job_book"] = {NAME: st.books[NAME]["jobs"]}
    old["ai_jobs_closed"] = st.books[NAME]["closed"]
    again = PlantState.from_dict(json.loads(json.dumps(old)))
    assert again.books == st.books
    assert jobs_of(again, KEY, START, 0.25, 32) == jobs_of(st, KEY, START, 0.25, 32)
    assert [j.job_id for j in jobs_of(again, KEY, START, 0.25, 32)] == ["a", "b"]
    assert "ai_job_book" not in again.to_dict() and "books" in again.to_dict()
