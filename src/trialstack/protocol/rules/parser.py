"""Source text -> syntax tree, with a lark LALR parser built once; never Python's eval of user text.

The tree is built while parsing (lark's embedded transformer), so there is no intermediate parse tree.
Syntax errors become a RuleCompileError with one RuleError that names the offending token's line and
column and says what was expected in words ("expected an operand after 'and'").
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from importlib.resources import files
from typing import Any

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from trialstack.protocol.rules.ast import (
    Arith,
    BoolOp,
    Call,
    Compare,
    Const,
    Expr,
    Member,
    Name,
    Neg,
    Not,
    depth,
)
from trialstack.protocol.rules.errors import RuleCompileError, RuleError
from trialstack.protocol.rules.types import RuleType

MAX_NAME_PARTS = 3
MAX_DEPTH = 200

_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t"}
_OPERAND_STARTS = frozenset({"NAME", "NUMBER", "STRING", "TRUE", "FALSE", "NULL", "LPAR", "MINUS", "NOT"})
_OPERAND_ENDS = frozenset({"NAME", "NUMBER", "STRING", "TRUE", "FALSE", "NULL", "RPAR", "RSQB"})
_SPELLED = {
    "$END": "end of expression",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COMMA": "','",
    "DOT": "'.'",
    "IN": "'in'",
    "AND": "'and'",
    "OR": "'or'",
    "NOT": "'not'",
    "COMP_OP": "a comparison",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "MUL_OP": "'*' or '/'",
    "POW": "'**'",
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a string",
}
_CHAR_HINTS = {
    "=": "; use '==' to compare",
    "&": "; use 'and'",
    "|": "; use 'or'",
    "!": "; use 'not' or '!='",
    '"': " (unterminated string?)",
    "'": " (unterminated string?)",
}


class _Problem(Exception):
    """Raised inside the tree builder; turned into a RuleError by `parse`."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.error = RuleError(message, line, column)


def _const(token: Token, value: Any, type_: RuleType) -> Const:
    return Const(value, type_, token.line or 1, token.column or 1)


def _unquote(token: Token) -> str:
    body, out, i = token.value[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1]
            if nxt not in _ESCAPES:
                column = (token.column or 1) + 1 + i
                raise _Problem(f"unknown escape '\\{nxt}' in string", token.line or 1, column)
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _number(token: Token) -> Const:
    text = token.value
    return _const(token, Decimal(text) if "." in text else int(text), RuleType.NUMBER)


class _Builder(Transformer[Token, Any]):
    """Builds ast nodes during the LALR parse; method names are the grammar's rule aliases."""

    def bool_op(self, c: list[Any]) -> BoolOp:
        return BoolOp(c[1].value, c[0], c[2], c[1].line, c[1].column)

    def not_op(self, c: list[Any]) -> Not:
        return Not(c[1], c[0].line, c[0].column)

    def compare(self, c: list[Any]) -> Compare:
        return Compare(c[1].value, c[0], c[2], c[1].line, c[1].column)

    def arith(self, c: list[Any]) -> Arith:
        return Arith(c[1].value, c[0], c[2], c[1].line, c[1].column)

    def member(self, c: list[Any]) -> Member:
        return Member(c[0], c[2], False, c[1].line, c[1].column)

    def not_member(self, c: list[Any]) -> Member:
        return Member(c[0], c[3], True, c[1].line, c[1].column)

    def neg(self, c: list[Any]) -> Expr:
        minus, operand = c
        if isinstance(operand, Const) and operand.type is RuleType.NUMBER and not isinstance(operand.value, bool):
            return Const(-operand.value, RuleType.NUMBER, minus.line, minus.column)  # type: ignore[operator]
        return Neg(operand, minus.line, minus.column)

    def number(self, c: list[Token]) -> Const:
        return _number(c[0])

    def neg_number(self, c: list[Token]) -> Const:
        const = _number(c[1])
        return Const(-const.value, RuleType.NUMBER, c[0].line or 1, c[0].column or 1)  # type: ignore[operator]

    def string(self, c: list[Token]) -> Const:
        return _const(c[0], _unquote(c[0]), RuleType.TEXT)

    def true(self, c: list[Token]) -> Const:
        return _const(c[0], True, RuleType.BOOLEAN)

    def false(self, c: list[Token]) -> Const:
        return _const(c[0], False, RuleType.BOOLEAN)

    def null(self, c: list[Token]) -> Const:
        return _const(c[0], None, RuleType.NULL)

    def name(self, c: list[Token]) -> Name:
        if len(c) > MAX_NAME_PARTS:
            extra = c[MAX_NAME_PARTS]
            message = f"name '{'.'.join(c)}' has {len(c)} parts, expected at most {MAX_NAME_PARTS}"
            raise _Problem(message, extra.line or 1, extra.column or 1)
        return Name(".".join(c), c[0].line or 1, c[0].column or 1)

    def call(self, c: list[Any]) -> Call:
        head = c[0]
        return Call(head.value, tuple(a for a in c[1:] if a is not None), head.line, head.column)

    def choices(self, c: list[tuple[Const, ...]]) -> tuple[Const, ...]:
        return c[0]

    def items(self, c: list[Const | None]) -> tuple[Const, ...]:
        return tuple(item for item in c if item is not None)


@cache
def _lark() -> Lark:
    grammar = files("trialstack.protocol.rules").joinpath("grammar.lark").read_text(encoding="utf-8")
    # The basic lexer keeps keywords reserved everywhere; a contextual lexer would read a misplaced
    # `or` as a NAME and report a confusing error one token later.
    return Lark(grammar, parser="lalr", lexer="basic", transformer=_Builder(), maybe_placeholders=True)


def parse(source: str) -> Expr:
    """Parse one expression; raise RuleCompileError (one error, with line and column) if it is not valid."""
    if not source.strip():
        raise RuleCompileError([RuleError("empty expression, expected an operand", 1, 1)])
    try:
        expr: Expr = _lark().parse(source)  # type: ignore[assignment]  # the builder returns ast nodes
    except _Problem as problem:
        raise RuleCompileError([problem.error]) from None
    except UnexpectedInput as exc:
        raise RuleCompileError([_explain(exc, source)]) from None
    if depth(expr) > MAX_DEPTH:
        raise RuleCompileError([RuleError(f"expression nests deeper than {MAX_DEPTH} levels", 1, 1)])
    return expr


def _end_position(source: str) -> tuple[int, int]:
    text = source.rstrip()
    return text.count("\n") + 1, len(text) - (text.rfind("\n") + 1) + 1


def _spell(token: Token) -> str:
    if token.type == "$END":
        return "end of expression"
    return token.value if token.type == "STRING" else f"'{token.value}'"


def _wanted(expected: set[str]) -> str:
    """What the parser expected, in words: 'an operand', 'an operator or ')'', "'in'"."""
    if {"NAME", "NUMBER", "LPAR"} <= expected:
        return "an operand"
    if "NUMBER" in expected and "NAME" not in expected:
        return "a literal (a list after 'in' holds only literals)"
    if {"AND", "OR"} <= expected:
        rest = [_SPELLED[t] for t in ("RPAR", "COMMA", "$END") if t in expected]
        return " or ".join(["an operator", *rest])
    return " or ".join(sorted({_SPELLED.get(t, t) for t in expected}))


def _innermost_bracket(stack: list[Any]) -> Token | None:
    return next((v for v in reversed(stack) if isinstance(v, Token) and v.type in {"LPAR", "LSQB"}), None)


def _can_close(stack: list[Any], opening: Token | None) -> set[str]:
    """Which of ')', ']', ',' and the end can come next, given the innermost open bracket."""
    if opening is None:
        return {"$END"}
    if opening.type == "LSQB":
        return {"RSQB", "COMMA"}
    index = next(i for i in range(len(stack) - 1, -1, -1) if stack[i] is opening)
    before = stack[index - 1] if index else None
    listing = isinstance(before, Token) and before.type in {"NAME", "IN"}  # call arguments or an `in` list
    return {"RPAR", "COMMA"} if listing else {"RPAR"}


def _explain(exc: UnexpectedInput, source: str) -> RuleError:
    if isinstance(exc, UnexpectedCharacters):
        char = exc.char
        return RuleError(f"unexpected character '{char}'{_CHAR_HINTS.get(char, '')}", exc.line, exc.column)
    if isinstance(exc, UnexpectedEOF) or not isinstance(exc, UnexpectedToken):
        line, column = _end_position(source)
        return RuleError("unexpected end of expression", line, column)
    token = exc.token
    at_end = token.type == "$END"
    line, column = _end_position(source) if at_end else (token.line, token.column)
    stack: list[Any] = exc.interactive_parser.parser_state.value_stack if exc.interactive_parser else []
    previous = stack[-1] if stack else None
    opening, expected = _innermost_bracket(stack), set(exc.expected)
    if not at_end:  # LALR merges states: keep only the closers and separators that can follow here
        expected -= {"RPAR", "RSQB", "COMMA", "$END"} - _can_close(stack, opening)
    if isinstance(previous, Token) and previous.type not in _OPERAND_ENDS:
        return RuleError(f"expected {_wanted(expected)} after '{previous.value}', got {_spell(token)}", line, column)
    if previous is not None and token.type in {"COMP_OP", "IN"} and "COMP_OP" not in expected:
        return RuleError(
            f"comparisons cannot be chained, got a second '{token.value}'; combine with 'and'", line, column
        )
    if token.type in _OPERAND_STARTS - {"MINUS"} and "AND" in expected:
        return RuleError(f"expected an operator before {_spell(token)}", line, column)
    if token.type in {"RPAR", "RSQB"} and opening is None:
        return RuleError(f"unmatched {_spell(token)}", line, column)
    if at_end and opening is not None:
        closing = ")" if opening.type == "LPAR" else "]"
        where = f"{opening.line}:{opening.column}"
        return RuleError(
            f"expected '{closing}' to close '{opening.value}' at {where}, got {_spell(token)}", line, column
        )
    return RuleError(f"unexpected {_spell(token)}, expected {_wanted(expected)}", line, column)
