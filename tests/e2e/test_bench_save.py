"""`trialstack bench capture` and `bench load` at toy sizes: the filler ledger verifies, every figure is printed.

No timing is asserted here: the benchmarks print ratios against baselines measured in the same run.
"""

from __future__ import annotations

from tests.conftest import POSTGRES_SERVER
from trialstack.bootstrap import Platform
from trialstack.cli.main import load_benchmark
from trialstack.ledger import store
from trialstack.ledger.verify import verify


def test_the_filler_ledger_is_hash_chained_like_any_append_and_grows_in_steps(platform: Platform) -> None:
    bench = load_benchmark("capture_bench")
    bench.fill_ledger(platform, 1_234)
    bench.fill_ledger(platform, 2_000)  # resumes from the last event
    with platform.engine.connect() as connection:
        report = verify(connection, bench.FILLER)
        assert report.ok, report.broken
        assert store.count_events(connection, bench.FILLER) == 2_000
        assert [e.study_seq for e in store.read_study(connection, bench.FILLER, 1_233, 2)] == [1_234, 1_235]


def test_bench_capture_prints_the_save_against_a_durable_bare_commit_and_a_larger_ledger() -> None:
    lines: list[str] = []
    load_benchmark("capture_bench").run(saves=4, sizes=[0, 500], postgres_server=POSTGRES_SERVER, emit=lines.append)
    text = "\n".join(lines)
    assert "sqlite bare insert+commit (journal wal, synchronous FULL)" in text
    assert "postgresql bare insert+commit (synchronous_commit on)" in text
    for backend in ("sqlite", "postgresql"):
        assert f"{backend} save 20-item form p99:" in text and "× bare p99" in text
        assert f"{backend} save p99 with 500 events in the ledger:" in text


def test_bench_load_prints_saves_per_second_against_bare_commits_without_failures() -> None:
    lines: list[str] = []
    load_benchmark("load_bench").run(clients=3, saves=2, postgres_server=POSTGRES_SERVER, emit=lines.append)
    text = "\n".join(lines)
    assert "postgresql 3 clients bare INSERT+COMMIT:" in text
    assert "postgresql 3 clients saving a 20-item form over HTTP:" in text and "× bare commits/s" in text
    assert "FAILED" not in text, text
