"""The service loop's rules as data (gridsvc.domain.loop): the state machine, ratings, weights."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridsvc.domain import loop
from gridsvc.domain.loop import NeedState, Party


def test_every_state_is_reachable_and_every_live_state_has_a_way_out():
    reached = {NeedState.SUBMITTED}
    frontier = [NeedState.SUBMITTED]
    while frontier:
        state = frontier.pop()
        for action in loop.actions_from(state):
            target = loop.TRANSITIONS[action].target
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(NeedState)
    for state in NeedState:
        assert loop.actions_from(state), state  # even closed: reopen


def test_who_may_do_what():
    assert loop.allowed_actions(NeedState.OPEN, {Party.MEMBER}) == ["claim"]
    assert loop.allowed_actions(NeedState.OPEN, {Party.REPORTER}) == ["withdraw"]
    assert set(loop.allowed_actions(NeedState.DISPATCHED, {Party.TAKER})) == {
        "accept", "decline"}
    assert "revoke" in loop.allowed_actions(NeedState.IN_SERVICE, {Party.STAFF})
    assert loop.allowed_actions(NeedState.CLOSED, {Party.TAKER, Party.MEMBER}) == []
    # a refusal and a revocation always carry a reason
    for action in ("decline", "release", "revoke", "reopen"):
        assert loop.TRANSITIONS[action].reason_required


def test_ratings():
    assert loop.rating_score("满意") == 1.0
    assert loop.rating_score(5) == 1.0
    assert loop.rating_score(1) == 0.0
    for wrong in (0, 6, True, "好"):
        with pytest.raises(ValueError):
            loop.rating_score(wrong)


def test_weighted_score_spreads_missing_weights_only_when_final():
    w = loop.DEFAULT_CONFIG.weights
    assert loop.weighted_score({"resident": 1.0}, w, final=False) is None
    assert loop.weighted_score({"resident": 1.0, "community": 0.0}, w, final=True) == \
        pytest.approx(0.4 / 0.7)
    every = {"resident": 1.0, "community": 0.6, "work_unit": 0.0}
    assert loop.weighted_score(every, w, final=False) == pytest.approx(0.4 + 0.18)
    assert loop.weighted_score({}, w, final=True) is None


def test_config_is_checked():
    with pytest.raises(ValueError):
        loop.LoopConfig(max_posts_per_member=0)
    with pytest.raises(ValueError):
        loop.LoopConfig(weights={"resident": 0.5})
    assert len(loop.DEFAULT_CONFIG.post_kinds) == 10


def test_ledger_number():
    assert loop.ledger_number("320602001001", 2026, 42) == "320602001001-2026-0042"


def test_readme_state_table_is_the_transition_table():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert loop.state_table_markdown() in readme
