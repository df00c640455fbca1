"""FormalExpressions -> rule-language text: our own Context verbatim, the common XPath idiom translated.

ODM tools express conditions as XPath over ClinicalData (`../ItemData[@ItemOID='I_SEX'][@Value='M']`).
Paths that pick ItemData by OID and compare its @Value translate into `SEX == "M"`; anything else
(positions, other attributes, arithmetic, other languages) is reported as not translatable, never
guessed. Literals are typed by the item they compare with, so `@Value='1'` on an integer becomes `1`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib.resources import files

from lark import Lark, Token, Transformer
from lark.exceptions import LarkError, VisitError

from trialstack.protocol.definition import ItemType
from trialstack.protocol.rules import RuleCompileError, parse
from trialstack.protocol.rules.ast import Not

_OPERATORS = {"=": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_STEP_KEYS = {
    "StudyEventData": "StudyEventOID",
    "FormData": "FormOID",
    "ItemGroupData": "ItemGroupOID",
    "ItemData": "ItemOID",
}


class Untranslatable(ValueError):
    """An expression outside what can be translated faithfully; the message says which part."""


@dataclass(frozen=True)
class Target:
    """The item an XPath names, by the OIDs its steps select (None where a step is absent)."""

    item: str
    event: str | None = None
    form: str | None = None
    group: str | None = None


Resolver = Callable[[Target], tuple[str, ItemType]]  # -> (rule-language name, type) or Untranslatable


@dataclass(frozen=True)
class _Test:
    attribute: str
    op: str
    literal: str


@dataclass(frozen=True)
class _BoolTests:
    op: str  # "and" | "or"
    left: _Predicate
    right: _Predicate


_Predicate = _Test | _BoolTests


@dataclass(frozen=True)
class _Step:
    name: str
    predicates: tuple[_Predicate, ...]


class _Tree(Transformer[Token, object]):
    def string(self, children: list[Token]) -> str:
        return str(children[0])[1:-1]

    def number(self, children: list[Token]) -> Decimal:
        return Decimal(str(children[0]))

    def negative(self, children: list[Token]) -> Decimal:
        return -Decimal(str(children[0]))

    def test(self, children: list[object]) -> _Test:
        name, op, literal = children
        return _Test(str(name), str(op), str(literal))

    def either(self, children: list[object]) -> _BoolTests:
        return _BoolTests("or", _predicate(children[0]), _predicate(children[2]))

    def both(self, children: list[object]) -> _BoolTests:
        return _BoolTests("and", _predicate(children[0]), _predicate(children[2]))

    def predicate(self, children: list[object]) -> _Predicate:
        return _predicate(children[0])

    def element(self, children: list[object]) -> _Step:
        return _Step(str(children[0]), tuple(_predicate(child) for child in children[1:]))

    def attribute(self, children: list[Token]) -> _Step:
        return _Step("@" + str(children[0]), ())

    def parent(self, children: list[Token]) -> _Step:
        return _Step("..", ())

    def this(self, children: list[Token]) -> _Step:
        return _Step(".", ())

    def path(self, children: list[object]) -> tuple[_Step, ...]:
        return tuple(child for child in children if isinstance(child, _Step))

    def absolute(self, children: list[object]) -> tuple[_Step, ...]:
        raise Untranslatable("absolute paths (/ODM/...) are not translated")


def _predicate(node: object) -> _Predicate:
    if isinstance(node, _Test | _BoolTests):
        return node
    raise Untranslatable(f"unexpected predicate {node!r}")


@cache
def _parser() -> Lark:
    grammar = files("trialstack.standards").joinpath("xpath.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", start="start")


def translate_xpath(text: str, resolve: Resolver) -> str:
    """The rule-language equivalent of an XPath condition; Untranslatable if there is none."""
    try:
        node = _Tree().transform(_parser().parse(text))
    except VisitError as error:
        if isinstance(error.orig_exc, Untranslatable):
            raise error.orig_exc from None
        raise Untranslatable(str(error.orig_exc)) from None
    except LarkError as error:
        raise Untranslatable(f"not in the translatable XPath subset: {str(error).splitlines()[0]}") from None
    return _Translator(resolve).boolean(node)


class _Translator:
    def __init__(self, resolve: Resolver) -> None:
        self.resolve = resolve

    def boolean(self, node: object) -> str:
        if isinstance(node, tuple):
            return self._path(node, None)
        data = getattr(node, "data", None)
        children = getattr(node, "children", [])
        if data in ("or_", "and_"):
            word = "or" if data == "or_" else "and"
            return f"({self.boolean(children[0])} {word} {self.boolean(children[2])})"
        if data == "not_":
            return f"not ({self.boolean(children[1])})"
        if data == "compare":
            left, op, right = children
            if isinstance(left, tuple) and not isinstance(right, tuple):
                return self._path(left, (_OPERATORS[str(op)], str(right)))
            if isinstance(right, tuple) and not isinstance(left, tuple):
                return self._path(right, (_FLIPPED[_OPERATORS[str(op)]], str(left)))
            raise Untranslatable("a comparison must put one item's @Value against a literal")
        raise Untranslatable(f"{node!r} is not a condition on item values")

    def _path(self, steps: tuple[_Step, ...], comparison: tuple[str, str] | None) -> str:
        oids: dict[str, str] = {}
        value: list[_Predicate] = []
        named = [step for step in steps if step.name not in ("..", ".")]
        if comparison is not None:
            if not named or named[-1].name != "@Value":
                raise Untranslatable("only ItemData/@Value can be compared with a literal")
            named = named[:-1]
        if not named or named[-1].name != "ItemData":
            raise Untranslatable("the path must end at ItemData")
        for step in named:
            key = _STEP_KEYS.get(step.name)
            if key is None:
                raise Untranslatable(f"the step {step.name} is not translated")
            for predicate in step.predicates:
                if isinstance(predicate, _Test) and predicate.attribute == key and predicate.op == "=":
                    oids[step.name] = predicate.literal
                elif step.name == "ItemData" and _on_value(predicate):
                    value.append(predicate)
                else:
                    raise Untranslatable(f"the predicate on {step.name} is not a selection by {key}")
        if "ItemData" not in oids:
            raise Untranslatable("ItemData is not selected by @ItemOID")
        target = Target(oids["ItemData"], oids.get("StudyEventData"), oids.get("FormData"), oids.get("ItemGroupData"))
        name, kind = self.resolve(target)
        tests = [self._test(name, kind, predicate) for predicate in value]
        if comparison is not None:
            tests.append(_compare(name, kind, *comparison))
        if not tests:
            return f"is_present({name})"
        return tests[0] if len(tests) == 1 else "(" + " and ".join(tests) + ")"

    def _test(self, name: str, kind: ItemType, predicate: _Predicate) -> str:
        if isinstance(predicate, _BoolTests):
            return (
                f"({self._test(name, kind, predicate.left)} {predicate.op} {self._test(name, kind, predicate.right)})"
            )
        return _compare(name, kind, _OPERATORS[predicate.op], predicate.literal)


def _on_value(predicate: _Predicate) -> bool:
    if isinstance(predicate, _BoolTests):
        return _on_value(predicate.left) and _on_value(predicate.right)
    return predicate.attribute == "Value"


def _compare(name: str, kind: ItemType, op: str, literal: str) -> str:
    return f"{name} {op} {typed_literal(kind, literal, op)}"


def typed_literal(kind: ItemType, text: str, op: str = "==") -> str:
    """`text` as a rule-language literal of the item's type; Untranslatable when it is not one."""
    if kind in (ItemType.INTEGER, ItemType.DECIMAL):
        try:
            number = Decimal(text.strip())
        except InvalidOperation:
            raise Untranslatable(f"{text!r} is not a number") from None
        if not number.is_finite():
            raise Untranslatable(f"{text!r} is not a finite number")
        return format(number, "f")
    if kind is ItemType.BOOLEAN:
        if op not in ("==", "!="):
            raise Untranslatable("a boolean can only be tested for equality")
        words = {"true": "true", "1": "true", "false": "false", "0": "false"}
        if text.strip().lower() not in words:
            raise Untranslatable(f"{text!r} is not a boolean value")
        return words[text.strip().lower()]
    quoted = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if kind is ItemType.DATE:
        return f"date({quoted})"
    if kind is ItemType.DATETIME:
        return f"datetime({quoted})"
    return quoted


def negate(expression: str) -> str:
    """`not (e)`, except that `not (e)` gives back `e`: negating twice returns the original text."""
    text = expression.strip()
    if text.startswith("not (") and text.endswith(")"):
        inner = text[5:-1]
        try:
            whole, part = parse(text), parse(inner)
        except RuleCompileError:
            return f"not ({text})"
        if isinstance(whole, Not) and _same(whole.operand, part):
            return inner
    return f"not ({text})"


def _same(left: object, right: object) -> bool:
    """Whether two syntax trees are equal apart from positions (line and column)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, tuple) and isinstance(right, tuple):
        return len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right, strict=True))
    slots = getattr(left, "__slots__", None)
    if slots is None:
        return left == right
    return all(_same(getattr(left, slot), getattr(right, slot)) for slot in slots if slot not in ("line", "column"))
