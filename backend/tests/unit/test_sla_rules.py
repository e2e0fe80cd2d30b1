"""The service-level rules (app.sla) on plain values: which policy, what a history makes of the
timers, and which events explain a change. Expected times are written out, not computed."""

from datetime import UTC, datetime, timedelta

import pytest

from app import business_time, sla
from app.models import EventAction, Priority, SlaState, TicketStatus, TimerKind, TimerState

S = TicketStatus
FR, RES = TimerKind.first_response, TimerKind.resolution
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday
ALWAYS = business_time.WorkingTime.always()
# Monday to Friday, 09:00-17:00 UTC.
OFFICE = business_time.WorkingTime(zone="UTC", week=(((540, 1020),),) * 5 + ((), ()))


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def policy(
    *,
    id: int = 1,
    fr: int | None = 30,
    res: int | None = 240,
    warn: int | None = 75,
    priority: Priority | None = None,
    team_id: int | None = None,
    position: int = 1,
    calendar: business_time.WorkingTime = ALWAYS,
) -> sla.Policy:
    targets = {kind: minutes for kind, minutes in ((FR, fr), (RES, res)) if minutes is not None}
    return sla.Policy(
        id=id,
        name=f"p{id}",
        position=position,
        priority=priority,
        team_id=team_id,
        calendar_name="cal",
        calendar=calendar,
        targets=targets,
        warn_at_percent=warn,
    )


def facts(*moves: tuple[float, TicketStatus], reply: float | None = None) -> sla.Facts:
    return sla.Facts(
        created_at=T0,
        moves=tuple((h(at), status) for at, status in moves),
        first_reply_at=None if reply is None else h(reply),
    )


# --- Which policy ---------------------------------------------------------------------------------


def test_the_first_matching_policy_by_position_wins_and_the_fallback_matches_anything() -> None:
    urgent = policy(id=1, priority=Priority.urgent, position=10)
    team_urgent = policy(id=2, priority=Priority.urgent, team_id=7, position=5)
    fallback = policy(id=3, position=100)
    policies = [fallback, urgent, team_urgent]
    assert sla.choose_policy(policies, Priority.urgent, 7) is team_urgent
    assert sla.choose_policy(policies, Priority.urgent, 8) is urgent
    assert sla.choose_policy(policies, Priority.urgent, None) is urgent
    assert sla.choose_policy(policies, Priority.low, 7) is fallback
    assert sla.choose_policy([urgent], Priority.low, None) is None


# --- Timers from a history ------------------------------------------------------------------------


def test_a_new_ticket_gets_running_timers_with_due_and_warning_times() -> None:
    timers = sla.evaluate(policy(), facts(), h(0.1))
    assert timers[FR].state == TimerState.running
    assert (timers[FR].due_at, timers[FR].warn_at) == (h(0.5), T0 + timedelta(minutes=22, seconds=30))
    assert (timers[RES].due_at, timers[RES].warn_at) == (h(4), h(3))
    assert timers[RES].next_check_at == h(3)
    assert sla.summary(timers.values()) == (SlaState.running, h(0.5))


def test_a_policy_without_a_target_makes_no_timer_for_it() -> None:
    assert set(sla.evaluate(policy(fr=None), facts(), h(0))) == {RES}
    assert sla.evaluate(None, facts(), h(0)) == {}
    assert sla.summary([]) == (SlaState.none, None)


def test_first_response_is_met_by_the_move_to_in_progress_or_a_reply_whichever_comes_first() -> None:
    by_move = sla.evaluate(policy(), facts((0.25, S.in_progress), reply=0.4), h(1))[FR]
    by_reply = sla.evaluate(policy(), facts((0.45, S.in_progress), reply=0.2), h(1))[FR]
    assert (by_move.state, by_move.met_at) == (TimerState.met, h(0.25))
    assert (by_reply.state, by_reply.met_at) == (TimerState.met, h(0.2))
    late = sla.evaluate(policy(), facts((1, S.in_progress)), h(2))[FR]
    assert (late.state, late.met_at, late.breached_at) == (TimerState.met_late, h(1), h(0.5))


def test_on_hold_pauses_resolution_and_moves_its_due_time_out_by_exactly_the_hold() -> None:
    history = facts((0.25, S.in_progress), (1, S.on_hold))
    during = sla.evaluate(policy(), history, h(2))[RES]
    assert (during.state, during.paused_since, during.next_check_at) == (TimerState.paused, h(1), None)
    assert during.paused == timedelta(hours=1)
    resumed = sla.evaluate(
        policy(), facts((0.25, S.in_progress), (1, S.on_hold), (3, S.in_progress)), h(3.5)
    )[RES]
    assert resumed.state == TimerState.running
    assert resumed.due_at == h(6)  # 4 h target + 2 h on hold
    assert resumed.paused == timedelta(hours=2)
    assert [(p.started_at, p.ended_at, p.reason) for p in resumed.pauses] == [(h(1), h(3), "on_hold")]


def test_several_holds_add_up() -> None:
    history = facts(
        (0.25, S.in_progress), (1, S.on_hold), (2, S.in_progress), (2.5, S.on_hold), (4, S.in_progress)
    )
    timer = sla.evaluate(policy(), history, h(4))[RES]
    assert timer.paused == timedelta(hours=2.5)
    assert timer.due_at == h(6.5)


def test_a_hold_outside_business_hours_moves_the_due_time_by_the_business_time_it_took() -> None:
    # Office hours: filed Monday 08:00 (before opening), 4 business hours -> due 13:00. On hold from
    # Monday 10:00 to Tuesday 10:00: 8 business hours (10:00-17:00, then 09:00-10:00).
    office = policy(calendar=OFFICE)
    assert sla.evaluate(office, facts(), h(0))[RES].due_at == h(5)
    history = facts((1.5, S.in_progress), (2, S.on_hold), (26, S.in_progress))
    timer = sla.evaluate(office, history, h(26))[RES]
    assert timer.paused == timedelta(hours=8)
    assert timer.due_at == datetime(2026, 3, 3, 13, 0, tzinfo=UTC)  # Tuesday: 1 h used + 3 h left from 10:00


def test_resolution_is_met_on_resolve_late_or_early_and_a_reopen_resumes_it_with_its_time_kept() -> None:
    early = sla.evaluate(policy(), facts((0.25, S.in_progress), (1, S.resolved)), h(2))[RES]
    assert (early.state, early.met_at, early.breached_at) == (TimerState.met, h(1), None)
    late = sla.evaluate(policy(), facts((0.25, S.in_progress), (5, S.resolved)), h(6))[RES]
    assert (late.state, late.met_at, late.breached_at) == (TimerState.met_late, h(5), h(4))
    reopened = sla.evaluate(
        policy(), facts((0.25, S.in_progress), (1, S.resolved), (5, S.in_progress)), h(5.5)
    )[RES]
    assert (reopened.state, reopened.met_at) == (TimerState.running, None)
    assert reopened.due_at == h(8)  # 1 h used before the resolve, 3 h left from the reopen
    closed = sla.evaluate(policy(), facts((0.25, S.in_progress), (1, S.resolved), (2, S.closed)), h(9))[RES]
    assert (closed.state, closed.met_at) == (TimerState.met, h(1))


def test_cancelling_cancels_the_timers_not_yet_met() -> None:
    timers = sla.evaluate(policy(), facts((0.25, S.in_progress), (1, S.cancelled)), h(9))
    assert timers[FR].state == TimerState.met
    assert timers[RES].state == TimerState.cancelled
    assert timers[RES].breached_at is None  # nothing counts after the cancel
    assert sla.summary(timers.values()) == (SlaState.met, None)


def test_a_running_timer_past_its_due_time_is_breached_and_keeps_counting() -> None:
    timers = sla.evaluate(policy(), facts((0.25, S.in_progress)), h(5))
    assert (timers[RES].state, timers[RES].breached_at, timers[RES].warned_at) == (
        TimerState.breached,
        h(4),
        h(3),
    )
    assert timers[RES].next_check_at is None
    assert sla.summary(timers.values()) == (SlaState.breached, h(4))


def test_at_risk_once_a_running_timer_passed_its_warning_point() -> None:
    timers = sla.evaluate(policy(), facts((0.25, S.in_progress)), h(3.5))
    assert timers[RES].warned_at == h(3)
    assert timers[RES].next_check_at == h(4)
    assert sla.summary(timers.values()) == (SlaState.at_risk, h(4))
    on_hold = sla.evaluate(policy(), facts((0.25, S.in_progress), (1, S.on_hold)), h(3.5))
    assert sla.summary(on_hold.values()) == (SlaState.paused, None)


def test_a_policy_change_recomputes_from_creation_keeping_the_pauses_taken() -> None:
    history = facts((0.25, S.in_progress), (1, S.on_hold), (3, S.in_progress))
    slower = policy(id=2, fr=60, res=480)
    timer = sla.evaluate(slower, history, h(3))[RES]
    assert timer.due_at == h(10)  # 8 h + the 2 h hold, from creation
    assert timer.policy_id == 2


# --- Events ---------------------------------------------------------------------------------------


def stored(timer: sla.Timer) -> sla.Stored:
    return sla.Stored.of(timer)


def events(
    before: dict[TimerKind, sla.Timer], after: dict[TimerKind, sla.Timer], p: sla.Policy | None
) -> list[tuple[str, str, str]]:
    return [
        (action.value, kind.value, reason)
        for action, kind, _old, _new, reason in sla.changes(
            {k: stored(t) for k, t in before.items()}, after, p
        )
    ]


def test_events_explain_each_change_once() -> None:
    p = policy()
    created = sla.evaluate(p, facts(), h(0))
    assert events({}, created, p) == [
        ("sla_attached", "first_response", "policy 'p1': 30 business minutes on calendar 'cal'"),
        ("sla_attached", "resolution", "policy 'p1': 240 business minutes on calendar 'cal'"),
    ]
    started = sla.evaluate(p, facts((0.25, S.in_progress)), h(0.25))
    assert events(created, started, p) == [("sla_met", "first_response", "met 15 min early")]
    held = sla.evaluate(p, facts((0.25, S.in_progress), (1, S.on_hold)), h(1))
    assert events(started, held, p) == [("sla_paused", "resolution", "ticket on_hold")]
    resumed = sla.evaluate(p, facts((0.25, S.in_progress), (1, S.on_hold), (2, S.in_progress)), h(2))
    assert events(held, resumed, p) == [
        ("sla_resumed", "resolution", "paused (on_hold) for 1 h 00 min of business time")
    ]
    warned = sla.evaluate(p, facts((0.25, S.in_progress), (1, S.on_hold), (2, S.in_progress)), h(4.5))
    assert events(resumed, warned, p) == [("sla_warning", "resolution", "warning point passed")]
    assert events(warned, warned, p) == []  # recorded once
    breached = sla.evaluate(p, facts((0.25, S.in_progress), (1, S.on_hold), (2, S.in_progress)), h(5.5))
    assert events(warned, breached, p) == [("sla_breached", "resolution", "due time passed")]
    assert events(breached, breached, p) == []
    resolved = sla.evaluate(
        p, facts((0.25, S.in_progress), (1, S.on_hold), (2, S.in_progress), (6, S.resolved)), h(6)
    )
    assert events(breached, resolved, p) == [("sla_met", "resolution", "met 1 h 00 min late")]


def test_a_late_resolve_the_clock_had_not_seen_records_the_breach_then_the_late_met() -> None:
    p = policy(warn=None)
    running = sla.evaluate(p, facts((0.25, S.in_progress)), h(1))
    resolved = sla.evaluate(p, facts((0.25, S.in_progress), (5, S.resolved)), h(5))
    assert [e[0] for e in events(running, resolved, p)] == ["sla_breached", "sla_met"]


def test_a_priority_change_records_a_recompute_naming_the_new_policy_and_a_cancel_for_a_dropped_target() -> (
    None
):
    first = policy(id=1)
    second = policy(id=2, fr=None, res=480)
    history = facts()
    before = sla.evaluate(first, history, h(0.1))
    after = sla.evaluate(second, history, h(0.1))
    found = sla.changes({k: stored(t) for k, t in before.items()}, after, second)
    assert [(a, k, old, new) for a, k, old, new, _ in found] == [
        (EventAction.sla_cancelled, FR, h(0.5), None),
        (EventAction.sla_recomputed, RES, h(4), h(8)),
    ]
    assert found[1][4] == "policy 'p2': 480 business minutes, from the ticket's creation"


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ([TimerState.met_late, TimerState.running], SlaState.breached),
        ([TimerState.met, TimerState.paused], SlaState.paused),
        ([TimerState.met, TimerState.running], SlaState.running),
        ([TimerState.met, TimerState.met], SlaState.met),
        ([TimerState.cancelled, TimerState.cancelled], SlaState.cancelled),
    ],
)
def test_the_summary_takes_the_most_pressing_state(states: list[TimerState], expected: SlaState) -> None:
    timers = [
        sla.Timer(kind, 1, 60, state, T0, h(1), None, None, None, None, None, timedelta())
        for kind, state in zip((FR, RES), states, strict=True)
    ]
    assert sla.summary(timers)[0] == expected


@pytest.mark.parametrize(
    ("zone", "filed_utc", "due_utc"),
    [
        # Friday 15:00 local, 8 business hours on Mon-Fri 09:00-17:00: Monday 15:00 local, across
        # the weekend's clock change (the UTC offset differs on the two days).
        ("Europe/Berlin", datetime(2026, 3, 27, 14, 0, tzinfo=UTC), datetime(2026, 3, 30, 13, 0, tzinfo=UTC)),
        (
            "Europe/Berlin",
            datetime(2026, 10, 23, 13, 0, tzinfo=UTC),
            datetime(2026, 10, 26, 14, 0, tzinfo=UTC),
        ),
        (
            "America/New_York",
            datetime(2026, 3, 6, 20, 0, tzinfo=UTC),
            datetime(2026, 3, 9, 19, 0, tzinfo=UTC),
        ),
        (
            "America/New_York",
            datetime(2026, 10, 30, 19, 0, tzinfo=UTC),
            datetime(2026, 11, 2, 20, 0, tzinfo=UTC),
        ),
    ],
)
def test_due_times_keep_local_business_hours_across_daylight_saving_changes(
    zone: str, filed_utc: datetime, due_utc: datetime
) -> None:
    office = business_time.WorkingTime(zone=zone, week=(((540, 1020),),) * 5 + ((), ()))
    p = policy(fr=None, res=8 * 60, calendar=office)
    history = sla.Facts(created_at=filed_utc, moves=())
    assert sla.evaluate(p, history, filed_utc)[RES].due_at == due_utc


def test_a_paused_timer_does_not_breach_while_paused_but_one_breached_before_its_pause_stays_breached() -> (
    None
):
    # On hold at 1 h with 3 h left; still on hold at 10 h: not breached (the clock is stopped).
    held = sla.evaluate(policy(), facts((0.25, S.in_progress), (1, S.on_hold)), h(10))[RES]
    assert (held.state, held.breached_at, held.warned_at, held.due_at) == (
        TimerState.paused,
        None,
        None,
        h(4),
    )
    # Breached at 4 h, then on hold at 5 h: paused, and the breach stands.
    late = sla.evaluate(policy(), facts((0.25, S.in_progress), (5, S.on_hold)), h(10))[RES]
    assert (late.state, late.breached_at, late.warned_at) == (TimerState.paused, h(4), h(3))
    assert sla.summary([late])[0] == SlaState.breached
