"""`trialstack bench rules`: the compiled rule language against other ways to evaluate the same edit checks.

Measured in the same run, over the same random casebook states (about 10% of values missing):
- hand-written Python functions of the same logic with the same three-valued semantics (the ceiling),
- simpleeval on the same expressions in Python syntax (pre-parsed; null-propagating operators and Kleene
  and/or, so it computes the same answers),
- cel-python on the same expressions in CEL (pre-compiled; CEL's error absorption in && and || plays the
  part of unknown; a few answers differ, e.g. `null in [...]` is false in CEL, and are reported),
- and the incremental figure: after one item change, `evaluate_changed` against a full `evaluate` of a
  200-check RuleSet.
simpleeval and cel-python are slow, so they run on a smaller sample; every figure is a per-second rate.
"""

from __future__ import annotations

import ast as pyast
import gc
import json
import operator
import random
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from benchmarks.common import line
from trialstack.errors import TrialStackError
from trialstack.protocol.rules import RuleSet, RuleType, parse
from trialstack.protocol.rules.ast import Arith, BoolOp, Call, Compare, Const, Expr, Member, Name, Neg, Not
from trialstack.protocol.rules.functions import FUNCTIONS, is_present
from trialstack.protocol.rules.values import as_date, div, power

COMPARED_PACKAGES = {"simpleeval": "simpleeval", "celpy": "cel-python"}
"""The libraries measured against, by import name → distribution name: development extras, not dependencies."""


class BenchmarkDependencyMissing(TrialStackError):
    code = "benchmark-dependency-missing"


try:
    import celpy
    import simpleeval
    from celpy import celtypes
except ImportError as missing:
    module = (missing.name or "").partition(".")[0]
    package = COMPARED_PACKAGES.get(module, module or "simpleeval / cel-python")
    both = " ".join(COMPARED_PACKAGES.values())
    raise BenchmarkDependencyMissing(
        f"`trialstack bench rules` compares the rule language with simpleeval and cel-python, and {package} is not"
        f" installed: pip install 'trialstack[dev]' (or only these two: pip install {both})"
    ) from None

Env = Mapping[str, object]
T = RuleType
POOL = 10_000  # distinct random states; the timed loops cycle through them
SIMPLEEVAL_STATES = 400
CEL_STATES = 40
INCREMENTAL_COPIES = 8  # 25 checks x 8 visits = 200 checks

SYMBOLS: dict[str, RuleType] = {
    **dict.fromkeys(["VS.SBP", "VS.DBP", "VS.PULSE", "VS.TEMP", "VS.RESP"], T.NUMBER),
    **dict.fromkeys(["VS.WEIGHT", "VS.HEIGHT", "VS.BMI", "LB.HGB", "LB.ALT", "LB.ALTULN"], T.NUMBER),
    **dict.fromkeys(["DM.BRTHDAT", "IC.ICDAT", "SV.VISDAT", "AE.AESTDAT", "AE.AEENDAT"], T.DATE),
    **dict.fromkeys(["CM.CMSTDAT", "CM.CMENDAT"], T.DATE),
    **dict.fromkeys(["DM.SEX", "PREG.RESULT", "AE.AEOUT", "AE.AESEV", "AE.AESER", "CM.CMONGO"], T.TEXT),
    "EX.EXSTDTC": T.DATETIME,
}
CHECKS: list[tuple[str, str]] = [
    ("VS_SBP_RANGE", "VS.SBP >= 60 and VS.SBP <= 250"),
    ("VS_DBP_RANGE", "VS.DBP >= 30 and VS.DBP <= 150"),
    ("VS_SBP_GT_DBP", "VS.SBP > VS.DBP"),
    ("VS_PULSE_RANGE", "VS.PULSE >= 30 and VS.PULSE <= 200"),
    ("VS_TEMP_RANGE", "VS.TEMP >= 34.0 and VS.TEMP <= 42.0"),
    ("VS_RESP_RANGE", "VS.RESP >= 6 and VS.RESP <= 40"),
    ("VS_WEIGHT_RANGE", "VS.WEIGHT >= 30 and VS.WEIGHT <= 250"),
    ("VS_HEIGHT_RANGE", "VS.HEIGHT >= 120 and VS.HEIGHT <= 220"),
    ("VS_BMI_DERIVED", "abs(VS.BMI - VS.WEIGHT / ((VS.HEIGHT / 100) ** 2)) <= 0.5"),
    ("ELIG_AGE", "age(DM.BRTHDAT, IC.ICDAT) >= 18 and age(DM.BRTHDAT, IC.ICDAT) <= 75"),
    ("SCREEN_WINDOW", "days_between(IC.ICDAT, SV.VISDAT) >= 0 and days_between(IC.ICDAT, SV.VISDAT) <= 28"),
    ("DM_SEX_CODED", 'DM.SEX in ("M", "F")'),
    ("PREG_REQUIRED", 'DM.SEX != "F" or is_present(PREG.RESULT)'),
    ("PREG_NOT_MALE", 'not (DM.SEX == "M" and is_present(PREG.RESULT))'),
    ("AE_END_AFTER_START", "is_blank(AE.AEENDAT) or AE.AEENDAT >= AE.AESTDAT"),
    ("AE_AFTER_CONSENT", "AE.AESTDAT >= IC.ICDAT"),
    ("AE_SEV_CODED", 'AE.AESEV in ("MILD", "MODERATE", "SEVERE")'),
    ("AE_SER_CODED", 'AE.AESER in ("Y", "N")'),
    ("AE_FATAL_SERIOUS", 'AE.AEOUT != "FATAL" or AE.AESER == "Y"'),
    ("AE_RECOVERED_END", 'AE.AEOUT != "RECOVERED" or is_present(AE.AEENDAT)'),
    ("CM_END_REQUIRED", 'CM.CMONGO == "Y" or is_present(CM.CMENDAT)'),
    ("CM_END_AFTER_START", "is_blank(CM.CMENDAT) or CM.CMENDAT >= CM.CMSTDAT"),
    ("LB_HGB_RANGE", "LB.HGB >= 5 and LB.HGB <= 20"),
    ("LB_ALT_3ULN", "LB.ALT <= 3 * LB.ALTULN"),
    ("EX_AFTER_CONSENT", "EX.EXSTDTC >= IC.ICDAT and year(EX.EXSTDTC) >= 2024"),
]


# --- hand-written Python of the same checks, with the same three-valued semantics --------------------


def _range(key: str, low: object, high: object) -> Callable[[Env], bool | None]:
    return lambda e: None if (v := e.get(key)) is None else low <= v <= high  # type: ignore[operator]


def _either(a: bool | None, b: bool | None) -> bool | None:
    return True if a is True or b is True else None if a is None or b is None else False


def _both(a: bool | None, b: bool | None) -> bool | None:
    return False if a is False or b is False else None if a is None or b is None else True


def _eq(value: object, constant: object) -> bool | None:
    return None if value is None else value == constant


def _bmi(e: Env) -> bool | None:
    w, h, b = e.get("VS.WEIGHT"), e.get("VS.HEIGHT"), e.get("VS.BMI")
    if w is None or h is None or b is None:
        return None
    return abs(b - w / ((h / 100) ** 2)) <= Decimal("0.5")  # type: ignore[operator]


def _age(e: Env) -> bool | None:
    b, d = e.get("DM.BRTHDAT"), e.get("IC.ICDAT")
    if b is None or d is None:
        return None
    years = d.year - b.year - ((d.month, d.day) < (b.month, b.day))  # type: ignore[attr-defined]
    return 18 <= years <= 75  # type: ignore[no-any-return]


def _window(e: Env) -> bool | None:
    i, v = e.get("IC.ICDAT"), e.get("SV.VISDAT")
    return None if i is None or v is None else 0 <= (v - i).days <= 28  # type: ignore[operator]


def _after(later: str, earlier: str) -> Callable[[Env], bool | None]:
    def check(e: Env) -> bool | None:
        end = e.get(later)
        if end is None:
            return True
        start = e.get(earlier)
        return None if start is None else end >= start  # type: ignore[operator]

    return check


def _ex(e: Env) -> bool | None:
    ex, ic = e.get("EX.EXSTDTC"), e.get("IC.ICDAT")
    if ex is None:
        return None
    return _both(None if ic is None else ex.date() >= ic, ex.year >= 2024)  # type: ignore[attr-defined]


def _ordered(later: str, earlier: str) -> Callable[[Env], bool | None]:
    return lambda e: None if (a := e.get(later)) is None or (b := e.get(earlier)) is None else a >= b  # type: ignore[operator]


LAMBDAS: dict[str, Callable[[Env], bool | None]] = {
    "VS_SBP_RANGE": _range("VS.SBP", 60, 250),
    "VS_DBP_RANGE": _range("VS.DBP", 30, 150),
    "VS_SBP_GT_DBP": lambda e: None if (a := e.get("VS.SBP")) is None or (b := e.get("VS.DBP")) is None else a > b,  # type: ignore[operator]
    "VS_PULSE_RANGE": _range("VS.PULSE", 30, 200),
    "VS_TEMP_RANGE": _range("VS.TEMP", Decimal("34.0"), Decimal("42.0")),
    "VS_RESP_RANGE": _range("VS.RESP", 6, 40),
    "VS_WEIGHT_RANGE": _range("VS.WEIGHT", 30, 250),
    "VS_HEIGHT_RANGE": _range("VS.HEIGHT", 120, 220),
    "VS_BMI_DERIVED": _bmi,
    "ELIG_AGE": _age,
    "SCREEN_WINDOW": _window,
    "DM_SEX_CODED": lambda e: None if (s := e.get("DM.SEX")) is None else s in ("M", "F"),
    "PREG_REQUIRED": lambda e: _either(
        None if (s := e.get("DM.SEX")) is None else s != "F", is_present(e.get("PREG.RESULT"))
    ),
    "PREG_NOT_MALE": lambda e: (
        None if (x := _both(_eq(e.get("DM.SEX"), "M"), is_present(e.get("PREG.RESULT")))) is None else not x
    ),
    "AE_END_AFTER_START": _after("AE.AEENDAT", "AE.AESTDAT"),
    "AE_AFTER_CONSENT": _ordered("AE.AESTDAT", "IC.ICDAT"),
    "AE_SEV_CODED": lambda e: None if (s := e.get("AE.AESEV")) is None else s in ("MILD", "MODERATE", "SEVERE"),
    "AE_SER_CODED": lambda e: None if (s := e.get("AE.AESER")) is None else s in ("Y", "N"),
    "AE_FATAL_SERIOUS": lambda e: _either(
        None if (o := e.get("AE.AEOUT")) is None else o != "FATAL", _eq(e.get("AE.AESER"), "Y")
    ),
    "AE_RECOVERED_END": lambda e: _either(
        None if (o := e.get("AE.AEOUT")) is None else o != "RECOVERED", is_present(e.get("AE.AEENDAT"))
    ),
    "CM_END_REQUIRED": lambda e: _either(_eq(e.get("CM.CMONGO"), "Y"), is_present(e.get("CM.CMENDAT"))),
    "CM_END_AFTER_START": _after("CM.CMENDAT", "CM.CMSTDAT"),
    "LB_HGB_RANGE": _range("LB.HGB", 5, 20),
    "LB_ALT_3ULN": lambda e: (
        None if (a := e.get("LB.ALT")) is None or (u := e.get("LB.ALTULN")) is None else a <= 3 * u  # type: ignore[operator]
    ),
    "EX_AFTER_CONSENT": _ex,
}


# --- random casebook states ------------------------------------------------------------------------


def _tenths(rng: random.Random, low: int, high: int) -> Decimal:
    return Decimal(rng.randint(low, high)).scaleb(-1)


def _casebook(rng: random.Random) -> dict[str, object]:
    """One subject's values, realistic enough that a few percent of the checks fail."""
    consent = date(2025, 1, 1) + timedelta(days=rng.randrange(365))
    weight, height = _tenths(rng, 300, 2600), _tenths(rng, 1150, 2250)
    bmi = round(weight / (height / 100) ** 2, 1) + (Decimal(rng.choice([-2, 1, 3])) if rng.random() < 0.1 else 0)
    ae_start = consent + timedelta(days=rng.randint(-5, 90))
    cm_start = consent + timedelta(days=rng.randint(-400, 30))
    return {
        "VS.SBP": rng.randint(50, 260),
        "VS.DBP": rng.randint(25, 155),
        "VS.PULSE": rng.randint(25, 210),
        "VS.TEMP": _tenths(rng, 335, 425),
        "VS.RESP": rng.randint(4, 42),
        "VS.WEIGHT": weight,
        "VS.HEIGHT": height,
        "VS.BMI": bmi,
        "LB.HGB": _tenths(rng, 40, 210),
        "LB.ALT": rng.randint(5, 200),
        "LB.ALTULN": rng.choice([40, 45, 50]),
        "DM.BRTHDAT": consent - timedelta(days=rng.randint(16 * 365, 80 * 365)),
        "IC.ICDAT": consent,
        "SV.VISDAT": consent + timedelta(days=rng.randint(-3, 32)),
        "AE.AESTDAT": ae_start,
        "AE.AEENDAT": ae_start + timedelta(days=rng.randint(-3, 30)) if rng.random() < 0.7 else None,
        "CM.CMSTDAT": cm_start,
        "CM.CMENDAT": cm_start + timedelta(days=rng.randint(-3, 300)) if rng.random() < 0.6 else None,
        "DM.SEX": rng.choice(["M", "F", "M", "F", "U"]),
        "PREG.RESULT": rng.choice(["NEGATIVE", "POSITIVE"]) if rng.random() < 0.6 else None,
        "AE.AEOUT": rng.choice(["RECOVERED", "RECOVERING", "NOT RECOVERED", "FATAL"]),
        "AE.AESEV": rng.choice(["MILD", "MODERATE", "SEVERE", "severe"]),
        "AE.AESER": rng.choice(["Y", "N", "N", "U"]),
        "CM.CMONGO": rng.choice(["Y", "N"]),
        "EX.EXSTDTC": datetime.combine(consent, datetime.min.time(), UTC)
        + timedelta(minutes=rng.randint(-3000, 20000)),
    }


def _by_type(type_: RuleType, rng: random.Random) -> object:
    day = date(2025, 1, 1) + timedelta(days=rng.randrange(730))
    if type_ is T.NUMBER:
        return rng.randint(0, 200)
    if type_ is T.TEXT:
        return rng.choice(["Y", "N", "M", "F", "U"])
    if type_ is T.DATE:
        return day
    if type_ is T.DATETIME:
        return datetime.combine(day, datetime.min.time(), UTC) + timedelta(minutes=rng.randrange(1440))
    if type_ is T.BOOLEAN:
        return rng.random() < 0.5
    return None


def states_for(symbols: Mapping[str, RuleType], count: int, seed: int = 2026) -> list[dict[str, object]]:
    """`count` random states over `symbols`, each value missing with probability 0.1 (plus optional fields)."""
    rng = random.Random(seed)
    states = []
    for _ in range(count):
        realistic = _casebook(rng)
        state = {}
        for name, type_ in symbols.items():
            if rng.random() >= 0.1:
                value = realistic[name] if name in realistic else _by_type(type_, rng)
                if value is not None:
                    state[name] = value
        states.append(state)
    return states


# --- the same checks in Python syntax (simpleeval) and in CEL (cel-python) ---------------------------


def render(expr: Expr, dialect: str, constants: dict[str, object], rename: Callable[[str], str]) -> str:
    """Source text of `expr` in "rule", "py" or "cel" syntax, fully parenthesized."""

    def r(node: Expr) -> str:
        return render(node, dialect, constants, rename)

    cel, py = dialect == "cel", dialect == "py"
    match expr:
        case Const(value=value, type=type_):
            if type_ is T.NULL:
                return "None" if py else "null"
            if type_ is T.BOOLEAN:
                return repr(value) if py else str(value).lower()
            if type_ is T.TEXT:
                return json.dumps(value)
            if cel:
                return repr(float(value))  # type: ignore[arg-type]
            if py and isinstance(value, Decimal):
                constants[f"K{len(constants)}"] = value
                return f"K{len(constants) - 1}"
            return str(value)
        case Name(name=name):
            return rename(name)
        case Not(operand=operand):
            return f"!({r(operand)})" if cel else f"(not ({r(operand)}))"
        case Neg(operand=operand):
            return f"(-({r(operand)}))"
        case BoolOp(op=op, left=left, right=right):
            word = {"and": "&&", "or": "||"}[op] if cel else op
            return f"(({r(left)}) {word} ({r(right)}))"
        case Compare(op=op, left=left, right=right) | Arith(op=op, left=left, right=right):
            if cel and op == "**":
                return f"pow({r(left)}, {r(right)})"
            return f"(({r(left)}) {op} ({r(right)}))"
        case Member(operand=operand, items=items, negated=negated):
            listed = ", ".join(r(item) for item in items)
            if cel:
                return f"{'!' if negated else ''}(({r(operand)}) in [{listed}])"
            return f"(({r(operand)}) {'not in' if negated else 'in'} ({listed},))"
        case Call(function=function, args=args):
            return f"{function}({', '.join(r(arg) for arg in args)})"
    raise TypeError(expr)


def _flat(name: str) -> str:
    return name.replace(".", "__")


def _nullsafe(op: Callable[[Any, Any], object]) -> Callable[[Any, Any], object]:
    def apply(a: Any, b: Any) -> object:
        if a is None or b is None:
            return None
        if isinstance(a, date) and isinstance(b, date) and isinstance(a, datetime) is not isinstance(b, datetime):
            a, b = as_date(a), as_date(b)
        return op(a, b)

    return apply


class KleeneEval(simpleeval.EvalWithCompoundTypes):  # type: ignore[misc]
    """simpleeval with Kleene and/or (its own follow Python's truthiness, which is not three-valued)."""

    def _eval_boolop(self, node: pyast.BoolOp) -> bool | None:
        conjunction, unknown = isinstance(node.op, pyast.And), False
        for value in node.values:
            result = self._eval(value)
            if result is (not conjunction):
                return result  # type: ignore[no-any-return, unused-ignore]
            unknown = unknown or result is None
        return None if unknown else conjunction


def _strict(impl: Callable[..., object]) -> Callable[..., object]:
    return lambda *args: None if any(a is None for a in args) else impl(*args)


SIMPLEEVAL_OPERATORS: dict[type, Callable[..., object]] = {
    pyast.Add: _nullsafe(operator.add),
    pyast.Sub: _nullsafe(operator.sub),
    pyast.Mult: _nullsafe(operator.mul),
    pyast.Div: _nullsafe(div),
    pyast.Pow: _nullsafe(power),
    pyast.USub: lambda a: None if a is None else -a,
    pyast.Not: lambda a: None if a is None else not a,
    pyast.Eq: _nullsafe(operator.eq),
    pyast.NotEq: _nullsafe(operator.ne),
    pyast.Lt: _nullsafe(operator.lt),
    pyast.LtE: _nullsafe(operator.le),
    pyast.Gt: _nullsafe(operator.gt),
    pyast.GtE: _nullsafe(operator.ge),
    pyast.In: lambda a, b: None if a is None else a in b,
    pyast.NotIn: lambda a, b: None if a is None else a not in b,
}
SIMPLEEVAL_FUNCTIONS = {name: spec.impl if not spec.strict else _strict(spec.impl) for name, spec in FUNCTIONS.items()}


def _cel_null(value: object) -> bool:
    return value is None or isinstance(value, celtypes.NullType)


def _cel_strict(impl: Callable[..., object]) -> Callable[..., object]:
    """A strict function for CEL: null in, null out; a Python error becomes a CEL error (unknown)."""

    def apply(*args: object) -> object:
        if any(_cel_null(a) for a in args):
            return celtypes.NullType()
        try:
            result = impl(*args)
        except (TypeError, ValueError, ArithmeticError, OverflowError) as exc:
            return celpy.evaluation.CELEvalError(str(exc))
        return celtypes.NullType() if result is None else result

    return apply


def _cel_date(text: object) -> object:
    day = FUNCTIONS["date"].impl(str(text))
    return None if day is None else _cel_day(day)  # type: ignore[arg-type]


def _cel_day(value: date) -> celtypes.TimestampType:
    return celtypes.TimestampType(datetime(value.year, value.month, value.day, tzinfo=UTC))


def _cel_blank(value: object) -> celtypes.BoolType:
    return celtypes.BoolType(_cel_null(value) or (isinstance(value, str) and not value.strip()))


def _number(impl: Callable[..., object]) -> Callable[..., object]:
    return _cel_strict(lambda *a: celtypes.DoubleType(float(impl(*a))))  # type: ignore[arg-type]


CEL_FUNCTIONS: dict[str, Callable[..., object]] = {
    "is_blank": _cel_blank,
    "is_present": lambda v: celtypes.BoolType(not _cel_blank(v)),
    "coalesce": lambda *vs: next((v for v in vs if not _cel_blank(v)), celtypes.NullType()),
    "days_between": _number(lambda a, b: (as_date(b) - as_date(a)).days),
    "age": _number(FUNCTIONS["age"].impl),
    "year": _number(lambda d: d.year),
    "abs": _number(abs),
    "len": _number(len),
    "pow": _number(lambda a, b: a**b),
    "round": _number(lambda x, d=0: FUNCTIONS["round"].impl(Decimal(repr(float(x))), int(d))),
    "min": _cel_strict(min),
    "max": _cel_strict(max),
    "add_days": _cel_strict(lambda d, n: celtypes.TimestampType(d + timedelta(days=int(n)))),
    "date": _cel_strict(_cel_date),
}


def _cel_value(value: Any, type_: RuleType) -> object:
    if value is None:
        return celtypes.NullType()
    if type_ is T.NUMBER:
        return celtypes.DoubleType(float(value))
    if type_ is T.DATE:
        return _cel_day(value)
    if type_ is T.DATETIME:
        return celtypes.TimestampType(value)
    if type_ is T.BOOLEAN:
        return celtypes.BoolType(value)
    return celtypes.StringType(value)


def _cel_result(program: Any, activation: Mapping[str, object]) -> bool | None:
    try:
        result = program.evaluate(activation)
    except celpy.evaluation.CELEvalError:
        return None
    return bool(result) if isinstance(result, celtypes.BoolType) else None


# --- measurement ----------------------------------------------------------------------------------


def _best(function: Callable[[], object], repeat: int) -> float:
    """Fastest of `repeat` runs, garbage collector off as in timeit: the machine's noise only ever adds time."""
    best = float("inf")
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            start = time.perf_counter()
            function()
            best = min(best, time.perf_counter() - start)
    finally:
        if enabled:
            gc.enable()
    return best


def _agreement(ours: Sequence[Mapping[str, object]], theirs: Sequence[Mapping[str, object]]) -> float:
    pairs = [(a[k], b[k]) for a, b in zip(ours, theirs, strict=True) for k in a]
    return 100.0 * sum(x is y for x, y in pairs) / len(pairs)


def _copies(
    checks: Sequence[tuple[str, str]], symbols: Mapping[str, RuleType], copies: int
) -> tuple[dict[str, str], dict[str, RuleType]]:
    """`copies` renamed copies of the checks (as if collected at several visits), for the incremental figure."""
    rules: dict[str, str] = {}
    names: dict[str, RuleType] = {}
    for k in range(copies):
        for rule_id, source in checks:
            rules[f"{rule_id}_V{k}"] = render(parse(source), "rule", {}, lambda n, k=k: f"{n}_V{k}")  # type: ignore[misc]
        names.update({f"{name}_V{k}": type_ for name, type_ in symbols.items()})
    return rules, names


def _incremental(
    checks: Sequence[tuple[str, str]], symbols: Mapping[str, RuleType], emit: Callable[[str], None]
) -> None:
    copies = max(1, -(-200 // len(checks)))
    rules, names = _copies(checks, symbols, copies)
    ruleset = RuleSet(rules, names)
    per_visit = states_for(symbols, copies, seed=7)
    env = {f"{name}_V{k}": value for k, state in enumerate(per_visit) for name, value in state.items()}
    full_rounds, changed_names = 2_000, sorted(ruleset.names)
    full = _best(lambda: [ruleset.evaluate(env) for _ in range(full_rounds)], 3) / full_rounds
    singles = [(name,) for name in changed_names] * max(1, 20_000 // len(changed_names))
    changed = _best(lambda: [ruleset.evaluate_changed(env, one) for one in singles], 3) / len(singles)
    readers = sum(len(ruleset.readers(name)) for name in changed_names) / len(changed_names)
    emit(line(f"full evaluate, {len(ruleset)} checks", 1 / full, "evaluations/s"))
    emit(line("evaluate_changed after one item change", 1 / changed, "evaluations/s", 1 / full, "full evaluate"))
    emit(
        f"evaluate_changed cost: {100 * changed / full:.1f}% of a full evaluate "
        f"({readers:.1f} of {len(ruleset)} checks read an item on average; target ≤ 5%)"
    )


def run(
    console_print: Callable[[str], None] = print,
    states: int = 100_000,
    checks: list[tuple[str, str]] | None = None,
    symbols: Mapping[str, RuleType] | None = None,
) -> None:
    """Print the figures, one per line: `name: value unit (ratio× baseline)`.

    `checks` (id, source) with their `symbols` replace the built-in 25 checks; the hand-written
    baseline exists only for the built-in ones.
    """
    if (checks is None) != (symbols is None):
        raise ValueError("pass checks and their symbol table together")
    builtin = checks is None
    checks, symbols = (CHECKS, SYMBOLS) if checks is None or symbols is None else (checks, symbols)
    emit = console_print
    ruleset = RuleSet(dict(checks), symbols)
    pool = states_for(symbols, min(POOL, states))
    order = (pool * (states // len(pool) + 1))[:states]
    n = len(checks)
    emit(f"rules: {n} checks over {states:,} random casebook states (pool of {len(pool):,}), ~10% missing")

    ours_results = [ruleset.evaluate(env) for env in pool]
    ours = states * n / _best(lambda: [ruleset.evaluate(env) for env in order], 3)
    emit(line("compiled RuleSet", ours, "evals/s"))

    if builtin:
        lambdas = tuple((rule_id, LAMBDAS[rule_id]) for rule_id, _ in checks)
        if [{rule_id: fn(env) for rule_id, fn in lambdas} for env in pool] != ours_results:
            raise AssertionError("the hand-written checks disagree with the compiled rules")
        lam = states * n / _best(lambda: [{rule_id: fn(env) for rule_id, fn in lambdas} for env in order], 3)
        emit(line("hand-written python, three-valued", lam, "evals/s"))
        emit(line("compiled RuleSet vs hand-written python", ours, "evals/s", lam, "hand-written"))

    def ours_on(sample: list[dict[str, object]]) -> float:
        return len(sample) * n / _best(lambda: [ruleset.evaluate(env) for env in sample], 20)

    constants: dict[str, object] = {}
    py_sources = [(rule_id, render(parse(source), "py", constants, _flat)) for rule_id, source in checks]
    evaluator = KleeneEval(operators=SIMPLEEVAL_OPERATORS, functions=SIMPLEEVAL_FUNCTIONS)
    parsed = [(rule_id, text, evaluator.parse(text)) for rule_id, text in py_sources]
    sample = pool[:SIMPLEEVAL_STATES]
    named = [{**constants, **{_flat(name): env.get(name) for name in symbols}} for env in sample]

    def simpleeval_all() -> list[dict[str, object]]:
        out = []
        for names in named:
            evaluator.names = names
            out.append({rule_id: evaluator.eval(text, previously_parsed=tree) for rule_id, text, tree in parsed})
        return out

    agree = _agreement(ours_results[: len(sample)], simpleeval_all())
    simple = len(sample) * n / _best(simpleeval_all, 3)
    emit(line(f"simpleeval, pre-parsed ({len(sample)} states)", simple, "evals/s"))
    emit(line("compiled RuleSet vs simpleeval, same states", ours_on(sample), "evals/s", simple, "simpleeval"))
    emit(f"simpleeval answers equal to ours: {agree:.2f}%")

    cel_env = celpy.Environment()
    programs = [
        (rule_id, cel_env.program(cel_env.compile(render(parse(source), "cel", {}, _flat)), functions=CEL_FUNCTIONS))  # type: ignore[arg-type]
        for rule_id, source in checks
    ]
    cel_sample = pool[:CEL_STATES]
    activations = [{_flat(name): _cel_value(env.get(name), t) for name, t in symbols.items()} for env in cel_sample]

    def cel_all() -> list[dict[str, object]]:
        return [{rule_id: _cel_result(program, act) for rule_id, program in programs} for act in activations]

    agree = _agreement(ours_results[: len(cel_sample)], cel_all())
    cel = len(cel_sample) * n / _best(cel_all, 2)
    emit(line(f"cel-python, pre-compiled ({len(cel_sample)} states)", cel, "evals/s"))
    emit(line("compiled RuleSet vs cel-python, same states", ours_on(cel_sample), "evals/s", cel, "cel-python"))
    emit(f"cel-python answers equal to ours: {agree:.2f}%")

    _incremental(checks, symbols, emit)


if __name__ == "__main__":
    run()
