"""The fair budget: agents' own look-ups before background work, and no agent takes the team's budget.

The policy is one pure function (``refusal``); ``RateBudget`` keeps the window in this
process with an injected clock, so every case here runs in no time.
"""
from __future__ import annotations

import pytest

from dashboard.postmetric.budget import FairPolicy, RateBudget, Spender
from dashboard.postmetric.errors import AgentShareExceeded, BudgetExhausted, ReservedForInteractive

DEFAULT = FairPolicy()  # the declared defaults: a fifth kept back, a third per agent, at least 10


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def budget(clock: Clock, limit: int = 100, policy: FairPolicy = DEFAULT) -> RateBudget:
    return RateBudget(limit, 60.0, policy=policy, clock=clock, wall_clock=lambda: 1_700_000_000.0 + clock.now)


def spend(budget: RateBudget, spender: Spender, times: int, clock: Clock | None = None, every: float = 0.0) -> int:
    """Try ``times`` requests; return how many were allowed."""
    allowed = 0
    for _ in range(times):
        try:
            budget.acquire(spender)
            allowed += 1
        except BudgetExhausted:
            pass
        if clock is not None:
            clock.advance(every)
    return allowed


ANN, BOB, CLEO = Spender("ann"), Spender("bob"), Spender("cleo")


def test_the_defaults_are_a_third_at_least_ten_and_a_fifth_kept_back():
    assert DEFAULT.agent_cap(100) == 34
    assert DEFAULT.agent_cap(12) == 10  # "at least 10"
    assert DEFAULT.background_limit(100) == 80


def test_an_agent_among_colleagues_gets_a_third_and_is_told_so_in_a_sentence(clock):
    team = budget(clock)
    assert spend(team, BOB, 1) == 1  # a colleague is looking up too
    clock.advance(40)
    # 100 distinct IDs in under a second: only a third get through.
    assert spend(team, ANN, 100, clock, every=0.008) == 34
    with pytest.raises(AgentShareExceeded) as refused:
        team.acquire(ANN)
    # Ann's first look-up of this minute was 0.8 s ago: it leaves the window in 59.2 s.
    assert refused.value.message == "You have made 34 look-ups this minute; the team's limit is shared, try again in 1 min 0 s."
    assert refused.value.retry_after == pytest.approx(60 - 0.8, abs=0.01)
    assert refused.value.status_code == 429 and refused.value.kind == "agent_limit"
    # Everyone else still finds most of the minute's budget.
    assert spend(team, BOB, 10) == 10
    assert spend(team, CLEO, 34) == 34


def test_the_held_back_agent_may_look_up_again_as_their_requests_leave_the_window(clock):
    team = budget(clock)
    spend(team, BOB, 1)
    assert spend(team, ANN, 40, clock, every=1.0) == 34
    with pytest.raises(AgentShareExceeded) as refused:
        team.acquire(ANN)
    # Her first request was 40 s ago (at most one a second): a slot frees in 20 s.
    assert refused.value.message.endswith("try again in 20 s.")
    clock.advance(20.01)
    team.acquire(ANN)


def test_an_agent_alone_may_go_beyond_the_share_but_always_leaves_one_for_a_colleague(clock):
    team = budget(clock)
    assert spend(team, ANN, 100) == 100 - 34
    # Bob arrives: a whole share is there for him, and then the team's window is full.
    assert spend(team, BOB, 40) == 34
    with pytest.raises(BudgetExhausted) as refused:
        team.acquire(CLEO)
    assert type(refused.value) is BudgetExhausted


def test_background_work_only_spends_above_the_interactive_reserve(clock):
    team = budget(clock, policy=FairPolicy(reserve=0.2, agent_share=1.0))
    live_ticks = Spender("ann", background=True)
    assert spend(team, live_ticks, 100) == 80
    with pytest.raises(ReservedForInteractive) as refused:
        team.acquire(live_ticks)
    assert "kept for agents' look-ups" in refused.value.message and refused.value.kind == "reserved"
    # An agent waiting for a customer still gets through.
    assert spend(team, Spender("bob"), 20) == 20


def test_the_reserve_is_configurable(clock):
    team = budget(clock, policy=FairPolicy(reserve=0.5, agent_share=1.0))
    assert spend(team, Spender(None, background=True), 100) == 50


def test_requests_of_nobody_in_particular_have_no_share_but_the_team_limit(clock):
    team = budget(clock, limit=20)
    assert spend(team, Spender(), 30) == 20


def test_a_429_stops_everyone_until_it_says(clock):
    team = budget(clock)
    team.observe({"Retry-After": "30"}, 429)
    for spender in (ANN, BOB, Spender(None, background=True)):
        with pytest.raises(BudgetExhausted) as refused:
            team.acquire(spender)
        assert type(refused.value) is BudgetExhausted and refused.value.retry_after == pytest.approx(30)
    clock.advance(30.01)
    team.acquire(ANN)


def test_the_share_follows_the_budget_it_is_a_share_of(clock):
    team = budget(clock, limit=300, policy=FairPolicy(agent_share=0.1, agent_minimum=10))
    spend(team, BOB, 1)
    assert spend(team, ANN, 100) == 30
