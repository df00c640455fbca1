"""Type checking at load time, so a bad rule is rejected when the study is loaded, not when a site saves.

Every error of an expression is collected (sorted by position); a sub-expression that already failed
has no type and raises no further errors, so one mistake yields one message.

DATE and DATETIME may be compared with each other: the DATETIME is reduced to its calendar date (in
its own UTC offset), so `AESTDTC >= ICDAT` works when one form records a time and the other does not.
"""

from __future__ import annotations

from collections.abc import Mapping
from difflib import get_close_matches

from trialstack.protocol.rules.ast import Arith, BoolOp, Call, Compare, Const, Expr, Member, Name, Neg, Not
from trialstack.protocol.rules.errors import RuleCompileError, RuleError
from trialstack.protocol.rules.functions import FUNCTIONS, FunctionSpec, to_date, to_datetime
from trialstack.protocol.rules.types import DATE_LIKE, RuleType, describe

_B, _N, _T, _NULL = RuleType.BOOLEAN, RuleType.NUMBER, RuleType.TEXT, RuleType.NULL
_ORDERED = frozenset({_N, _T, RuleType.DATE, RuleType.DATETIME})
_LISTABLE = frozenset({_N, _T, _B})
_LITERAL_FORMATS = {
    "date": (to_date, "a date 'YYYY-MM-DD'"),
    "datetime": (to_datetime, "an ISO 8601 datetime with offset"),
}


def _hint(name: str, known: list[str]) -> str:
    close = get_close_matches(name, known, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _count(n: int) -> str:
    return f"{n} argument" if n == 1 else f"{n} arguments"


def comparable(op: str, left: RuleType, right: RuleType) -> bool:
    """Whether `left op right` is well typed (neither side NULL)."""
    if left in DATE_LIKE and right in DATE_LIKE:
        return True
    if left is not right:
        return False
    return op in ("==", "!=") or left in _ORDERED


class _Checker:
    def __init__(self, symbols: Mapping[str, RuleType]) -> None:
        self.symbols = symbols
        self.errors: list[RuleError] = []

    def fail(self, node: Expr, message: str) -> None:
        self.errors.append(RuleError(message, node.line, node.column))

    def expect(self, node: Expr, what: str, wanted: RuleType) -> None:
        """Check a sub-expression that must be `wanted` (or the null literal)."""
        got = self.visit(node)
        if got is not None and got not in (wanted, _NULL):
            self.fail(node, f"{what} got {got}, expected {wanted}")

    def visit(self, node: Expr) -> RuleType | None:
        match node:
            case Const(type=type_):
                return type_
            case Name(name=name):
                found = self.symbols.get(name)
                if found is None:
                    self.fail(node, f"unknown name '{name}'{_hint(name, list(self.symbols))}")
                return found
            case Not(operand=operand):
                self.expect(operand, "'not'", _B)
                return _B
            case Neg(operand=operand):
                self.expect(operand, "'-'", _N)
                return _N
            case BoolOp(op=op, left=left, right=right):
                self.expect(left, f"'{op}'", _B)
                self.expect(right, f"'{op}'", _B)
                return _B
            case Arith(op=op, left=left, right=right):
                self.expect(left, f"'{op}'", _N)
                self.expect(right, f"'{op}'", _N)
                return _N
            case Compare():
                self.compare(node)
                return _B
            case Member():
                self.member(node)
                return _B
            case Call():
                return self.call(node)
        raise TypeError(f"not a rule expression node: {node!r}")  # pragma: no cover

    def compare(self, node: Compare) -> None:
        left, right = self.visit(node.left), self.visit(node.right)
        if left is None or right is None:
            return
        op = node.op
        if _NULL in (left, right):
            self.fail(node, f"'{op}' got NULL, expected a value (null is never equal; use is_blank or is_present)")
        elif left is right is _B and op not in ("==", "!="):
            self.fail(node, f"'{op}' got BOOLEAN, expected NUMBER, TEXT, DATE or DATETIME")
        elif not comparable(op, left, right):
            self.fail(node, f"'{op}' got {left} and {right}, expected two operands of the same type")

    def member(self, node: Member) -> None:
        got = self.visit(node.operand)
        keyword = "not in" if node.negated else "in"
        if got is None:
            return
        if got not in _LISTABLE:
            self.fail(node, f"'{keyword}' got {got}, expected NUMBER, TEXT or BOOLEAN")
            return
        for item in node.items:
            if item.type is _NULL:
                self.fail(item, f"list item got NULL, expected {got} (null never matches; use is_blank)")
            elif item.type is not got:
                self.fail(item, f"list item got {item.type}, expected {got}")

    def call(self, node: Call) -> RuleType | None:
        args = [self.visit(arg) for arg in node.args]
        spec = FUNCTIONS.get(node.function)
        if spec is None:
            self.fail(node, f"unknown function '{node.function}'{_hint(node.function, list(FUNCTIONS))}")
            return None
        if not spec.min_args <= len(args) <= (spec.max_args or len(args)):
            self.fail(node, f"{spec.name}() got {_count(len(args))}, expected {self.arity(spec)}")
            return spec.result
        ok = True
        for index, (arg, got) in enumerate(zip(node.args, args, strict=True)):
            accepted = spec.accepts(index)
            if got is None:
                ok = False
            elif got is not _NULL and got not in accepted:
                self.fail(arg, f"argument {index + 1} of {spec.name}() got {got}, expected {describe(accepted)}")
                ok = False
        if ok and node.function in _LITERAL_FORMATS:
            self.literal_format(node)
        if spec.result is not None:
            return spec.result
        return self.shared_type(node, spec, args) if ok else None

    def literal_format(self, node: Call) -> None:
        parse, wanted = _LITERAL_FORMATS[node.function]
        arg = node.args[0]
        if isinstance(arg, Const) and isinstance(arg.value, str) and parse(arg.value) is None:
            self.fail(arg, f"{node.function}() got '{arg.value}', expected {wanted}")

    def shared_type(self, node: Call, spec: FunctionSpec, args: list[RuleType | None]) -> RuleType | None:
        if not spec.same_type:
            return args[0]
        kinds = sorted({t for t in args if t is not _NULL and t is not None})
        if len(kinds) > 1:
            self.fail(node, f"{spec.name}() got {' and '.join(kinds)}, expected arguments of one type")
            return None
        return kinds[0] if kinds else _NULL

    @staticmethod
    def arity(spec: FunctionSpec) -> str:
        if spec.max_args is None:
            return f"at least {spec.min_args}"
        if spec.max_args == spec.min_args:
            return str(spec.min_args)
        return f"{spec.min_args} to {spec.max_args}"


def check(expr: Expr, symbols: Mapping[str, RuleType]) -> tuple[RuleType | None, list[RuleError]]:
    """Type of `expr` (None if it has errors) and every error, sorted by position."""
    checker = _Checker(symbols)
    result = checker.visit(expr)
    errors = sorted(checker.errors, key=lambda e: (e.line, e.column))
    return (None if errors else result), errors


def typecheck(expr: Expr, symbols: Mapping[str, RuleType]) -> RuleType:
    """Type of `expr` against the symbol table; raise RuleCompileError listing every type error."""
    result, errors = check(expr, symbols)
    if errors or result is None:
        raise RuleCompileError(errors)
    return result
