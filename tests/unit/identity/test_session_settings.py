"""The idle timeout of web sessions as a setting: TRIALSTACK_SESSION_IDLE_MINUTES, 15 minutes by default."""

from __future__ import annotations

from datetime import timedelta

import pytest

from trialstack.errors import InvalidInput
from trialstack.settings import Settings


def test_sessions_idle_out_after_15_minutes_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRIALSTACK_SESSION_IDLE_MINUTES", raising=False)
    assert Settings().session_idle_timeout == timedelta(minutes=15)
    assert Settings.from_env().session_idle_timeout == timedelta(minutes=15)
    monkeypatch.setenv("TRIALSTACK_SESSION_IDLE_MINUTES", " 30 ")
    assert Settings.from_env().session_idle_minutes == 30
    assert Settings.from_env("sqlite:///x.db").session_idle_timeout == timedelta(minutes=30)


@pytest.mark.parametrize(("value", "problem"), [("ten", "whole number"), ("0", "between 1 and 480"), ("481", "480")])
def test_a_wrong_idle_timeout_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, value: str, problem: str) -> None:
    monkeypatch.setenv("TRIALSTACK_SESSION_IDLE_MINUTES", value)
    with pytest.raises(InvalidInput, match=problem) as refused:
        Settings.from_env()
    assert refused.value.field == "TRIALSTACK_SESSION_IDLE_MINUTES"
