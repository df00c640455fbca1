"""`trialstack bench relay` at a toy size against the NATS server at 127.0.0.1:4222: it prints the relay's rate
against plain nats-py publishing as a ratio, and the commit-to-consumer lag. No timing is asserted: the figures
are ratios printed for people."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from trialstack.cli.main import app

runner = CliRunner()


def test_bench_relay_prints_the_ratio_to_plain_nats_py_and_the_lag() -> None:
    result = runner.invoke(
        app,
        ["bench", "relay", "--events", "600", "--batch", "200", "--rounds", "2", "--lag-events", "20",
         "--lag-rate", "40", "--poll-interval", "0.05", "--postgres", ""],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = result.output
    assert re.search(
        r"sqlite relay --once, 600 events, best of 2: [\d,.]+ events/s \(\d+\.\d\d× plain nats-py\)", text
    ), text
    assert re.search(r"plain nats-py publish_async, the same messages, best of 2: [\d,.]+ messages/s", text), text
    assert re.search(
        r"sqlite ratio relay / plain nats-py: \d+\.\d\d \(target ≥ 0\.5; round by round \d+\.\d\d, \d+\.\d\d\)", text
    ), text
    assert re.search(r"sqlite lag commit -> JetStream consumer, relay polling every 0\.05 s, 20 events at 40/s: "
                     r"p50 [\d,.]+ ms, p99 [\d,.]+ ms", text), text  # fmt: skip
    assert "Traceback" not in text


def test_bench_relay_refuses_sizes_too_small_to_measure_in_one_line() -> None:
    result = runner.invoke(app, ["bench", "relay", "--events", "5", "--postgres", ""])
    assert result.exit_code == 2
    assert "--events is at least 100" in result.output and "Traceback" not in result.output
