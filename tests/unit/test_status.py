"""The state machine: every edge of DESIGN.md legal, every other pair illegal, terminal is final."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from longrun.model import TERMINAL, IllegalTransition, Status, check_transition

S = Status
LEGAL = {
    (S.ACCEPTED, S.IN_PROGRESS), (S.ACCEPTED, S.ON_HOLD), (S.ACCEPTED, S.CANCELED), (S.ACCEPTED, S.MISSED),
    (S.ON_HOLD, S.ACCEPTED), (S.ON_HOLD, S.CANCELED), (S.ON_HOLD, S.MISSED),
    (S.IN_PROGRESS, S.SUCCEEDED), (S.IN_PROGRESS, S.SUCCEEDED_WITH_WARNINGS), (S.IN_PROGRESS, S.FAILED),
    (S.IN_PROGRESS, S.CANCELING), (S.IN_PROGRESS, S.ACCEPTED), (S.IN_PROGRESS, S.ON_HOLD),
    (S.CANCELING, S.CANCELED), (S.CANCELING, S.SUCCEEDED), (S.CANCELING, S.SUCCEEDED_WITH_WARNINGS),
    (S.CANCELING, S.FAILED),
}


@pytest.mark.parametrize(("current", "new"), list(itertools.product(Status, Status)))
def test_every_pair_of_statuses(current: Status, new: Status) -> None:
    if (current, new) in LEGAL:
        check_transition(current, new)
    else:
        with pytest.raises(IllegalTransition) as info:
            check_transition(current, new)
        assert info.value.code == "IllegalTransition" and info.value.http_status == 409
        assert current.value in info.value.message


def test_terminal_states_are_exactly_the_five() -> None:
    assert {s for s in Status if s.is_terminal} == TERMINAL == {
        S.SUCCEEDED, S.SUCCEEDED_WITH_WARNINGS, S.FAILED, S.CANCELED, S.MISSED,
    }


@given(st.lists(st.sampled_from(list(Status)), max_size=40))
def test_random_walks_never_leave_a_terminal_state(steps: list[Status]) -> None:
    current = S.ACCEPTED
    for step in steps:
        try:
            check_transition(current, step)
        except IllegalTransition:
            continue
        assert not current.is_terminal
        current = step
    if current.is_terminal:
        for step in Status:
            with pytest.raises(IllegalTransition):
                check_transition(current, step)
