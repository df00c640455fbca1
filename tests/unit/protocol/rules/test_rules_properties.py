"""Property tests: the compiled rules agree with the reference interpreter on random well-typed input.

Expressions are generated as source text by static type (so they always type-check), environments
give every name a random value of its type, None, or no key at all.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trialstack.protocol.rules import RuleSet, RuleType, compile_rule, names_in
from trialstack.protocol.rules.reference import evaluate

T = RuleType
SYMBOLS: dict[str, RuleType] = {
    "N1": T.NUMBER,
    "VS.N2": T.NUMBER,
    "SCR.VS.N3": T.NUMBER,
    "T1": T.TEXT,
    "F.T2": T.TEXT,
    "D1": T.DATE,
    "F.D2": T.DATE,
    "DT1": T.DATETIME,
    "F.DT2": T.DATETIME,
    "B1": T.BOOLEAN,
    "F.B2": T.BOOLEAN,
}
ABSENT = object()
ZONES = [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]
ALPHABET = "MFab '\"\\"


def _names(type_: RuleType) -> st.SearchStrategy[str]:
    return st.sampled_from([name for name, t in SYMBOLS.items() if t is type_])


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_NUMBER_LITERALS = st.one_of(
    st.integers(-50, 300).map(str),
    st.decimals(min_value=-100, max_value=100, places=2, allow_nan=False).map(str),
)
_LEAVES: dict[RuleType, st.SearchStrategy[str]] = {
    T.NUMBER: st.one_of(_names(T.NUMBER), _NUMBER_LITERALS),
    T.TEXT: st.one_of(_names(T.TEXT), st.text(ALPHABET, max_size=3).map(_quote)),
    T.DATE: st.one_of(_names(T.DATE), st.dates(date(2020, 1, 1), date(2030, 12, 31)).map(lambda d: f'date("{d}")')),
    T.DATETIME: st.one_of(_names(T.DATETIME), st.just('datetime("2026-01-05T23:30:00+02:00")')),
    T.BOOLEAN: st.one_of(_names(T.BOOLEAN), st.sampled_from(["true", "false"])),
}


def _call(name: str, *args: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(*args).map(lambda parts: f"{name}({', '.join(parts)})")


def _infix(left: st.SearchStrategy[str], ops: list[str], right: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(left, st.sampled_from(ops), right).map(lambda p: f"({p[0]}) {p[1]} ({p[2]})")


def _tests_on_one_subject(subject: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """2 to 4 comparisons of one sub-expression with constants, on either side, joined by and / or:
    what the compiler fuses into a single closure."""
    test = st.tuples(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), st.integers(0, 10).map(str), st.booleans())
    return st.tuples(subject, st.lists(test, min_size=2, max_size=4), st.sampled_from([" and ", " or "])).map(
        lambda p: p[2].join(f"({c} {op} ({p[0]}))" if flip else f"(({p[0]}) {op} {c})" for op, c, flip in p[1])
    )


@cache
def exprs(type_: RuleType, depth: int) -> st.SearchStrategy[str]:
    """Well-typed source text of `type_`, nesting at most `depth` operators."""
    if depth == 0:
        return _LEAVES[type_]
    n, t, d, dt, b = (exprs(x, depth - 1) for x in (T.NUMBER, T.TEXT, T.DATE, T.DATETIME, T.BOOLEAN))
    dated = st.one_of(d, dt)
    maybe_null_n = st.one_of(n, st.just("null"))
    options: dict[RuleType, list[st.SearchStrategy[str]]] = {
        T.NUMBER: [
            _infix(maybe_null_n, ["+", "-", "*", "/"], n),
            _infix(n, ["**"], st.sampled_from(["0", "1", "2", "-1", "0.5"])),
            n.map(lambda x: f"-({x})"),
            _call("abs", n),
            _call("round", n),
            _call("round", n, st.sampled_from(["0", "1", "2", "-1", "0.5"])),
            _call("min", n, n),
            _call("max", n, n, n),
            _call("len", t),
            _call("days_between", dated, dated),
            _call("year", dated),
            _call("age", dated, dated),
            _call("coalesce", maybe_null_n, n),
        ],
        T.TEXT: [_call("coalesce", t, t), _call("min", t, t)],
        T.DATE: [
            _call("add_days", d, n),
            _call("date", st.one_of(_names(T.TEXT), dt)),
            _call("max", d, d),
            _call("coalesce", d, d),
        ],
        T.DATETIME: [_call("add_days", dt, n), _call("datetime", _names(T.TEXT)), _call("coalesce", dt, dt)],
        T.BOOLEAN: [
            _infix(n, ["==", "!=", "<", "<=", ">", ">="], n),
            _infix(t, ["==", "!=", "<", ">="], t),
            _infix(dated, ["==", "!=", "<", "<=", ">", ">="], dated),
            _infix(b, ["==", "!="], b),
            _infix(st.one_of(b, st.just("null")), ["and", "or"], b),
            st.lists(b, min_size=3, max_size=4).map(lambda xs: " and ".join(f"({x})" for x in xs)),
            st.lists(b, min_size=3, max_size=4).map(lambda xs: " or ".join(f"({x})" for x in xs)),
            st.one_of(b, st.just("null")).map(lambda x: f"not ({x})"),
            _call("is_blank", st.one_of(n, t, d, b)),
            _call("is_present", st.one_of(n, t, dt)),
            st.tuples(n, st.lists(_NUMBER_LITERALS, min_size=1, max_size=3)).map(
                lambda p: f"({p[0]}) in ({', '.join(p[1])})"
            ),
            st.tuples(t, st.lists(st.sampled_from(['"M"', '"F"', '"a"']), min_size=1, max_size=3)).map(
                lambda p: f"({p[0]}) not in [{', '.join(p[1])}]"
            ),
            st.tuples(_names(T.NUMBER), st.integers(0, 100), st.integers(100, 300)).map(
                lambda p: f"{p[0]} >= {p[1]} and {p[0]} <= {p[2]}"
            ),
            _tests_on_one_subject(st.one_of(_names(T.NUMBER), n)),
            st.tuples(_names(T.NUMBER), st.integers(0, 100), st.integers(100, 300)).map(
                lambda p: f"{p[1]} > {p[0]} or {p[0]} > {p[2]}"
            ),
        ],
    }
    return st.one_of(_LEAVES[type_], *options[type_])


_VALUES: dict[RuleType, st.SearchStrategy[object]] = {
    T.NUMBER: st.one_of(
        st.integers(-1, 11),
        st.integers(-1000, 1000),
        st.decimals(min_value=-1000, max_value=1000, places=3, allow_nan=False),
        st.floats(-1000, 1000) | st.sampled_from([float("nan"), float("inf")]),
    ),
    T.TEXT: st.one_of(
        st.text("MFab \t", max_size=3),
        st.sampled_from(["2026-01-05", "2026-02-30", "2026-01-05T10:00:00+02:00", "2026-01-05T10:00:00"]),
    ),
    T.DATE: st.dates(date(2000, 1, 1), date(2030, 12, 31)),
    T.DATETIME: st.datetimes(datetime(2000, 1, 1), datetime(2030, 12, 31), timezones=st.sampled_from(ZONES)),
    T.BOOLEAN: st.booleans(),
}


@st.composite
def envs(draw: st.DrawFn) -> dict[str, object]:
    env: dict[str, object] = {}
    for name, type_ in SYMBOLS.items():
        value = draw(st.one_of(st.just(ABSENT), st.none(), _VALUES[type_], _VALUES[type_], _VALUES[type_]))
        if value is not ABSENT:
            env[name] = value
    return env


ANY_TYPE = st.sampled_from([T.BOOLEAN, *_LEAVES]).flatmap(lambda t: exprs(t, 3))
FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(source=ANY_TYPE, env=envs())
def test_compiled_agrees_with_the_reference_interpreter(source: str, env: dict[str, object]) -> None:
    rule = compile_rule(source, SYMBOLS, expect=None)
    compiled, expected = rule(env), evaluate(rule.expr, env)
    assert (type(compiled), compiled) == (type(expected), expected), source
    assert rule.reads == names_in(source) <= SYMBOLS.keys()
    if rule.result_type is T.BOOLEAN:
        assert compiled in (True, False, None)


SMALL_NUMBERS = st.one_of(st.none(), st.integers(-1, 11), st.decimals(0, 10, places=1))


@FAST
@given(
    source=_tests_on_one_subject(st.one_of(_names(T.NUMBER), exprs(T.NUMBER, 1))),
    env=st.fixed_dictionaries({name: SMALL_NUMBERS for name, t in SYMBOLS.items() if t is T.NUMBER}),
)
def test_fused_comparison_chains_agree_with_the_reference(source: str, env: dict[str, object]) -> None:
    rule = compile_rule(source, SYMBOLS)
    assert rule(env) is evaluate(rule.expr, env), source


@FAST
@given(sources=st.lists(exprs(T.BOOLEAN, 2), min_size=1, max_size=8), before=envs(), after=envs(), data=st.data())
def test_incremental_evaluation_equals_full_evaluation(
    sources: list[str], before: dict[str, object], after: dict[str, object], data: st.DataObject
) -> None:
    rules = RuleSet({f"R{i}": source for i, source in enumerate(sources)}, SYMBOLS)
    changed = data.draw(st.sets(st.sampled_from(sorted(SYMBOLS))))
    now = {name: value for name, value in before.items() if name not in changed}
    now.update({name: after[name] for name in changed if name in after})
    merged = {**rules.evaluate(before), **rules.evaluate_changed(now, changed)}
    assert merged == rules.evaluate(now)
    assert set(rules.affected_by(changed)) == {rule_id for rule_id, rule in rules.rules.items() if rule.reads & changed}
