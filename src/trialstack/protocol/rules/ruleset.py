"""A study's boolean rules (edit checks, eligibility, show_if), compiled together with a dependency graph.

The graph maps each item name to the rules that read it, so saving one item re-evaluates only the
rules it can change instead of the whole casebook's checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import cast

from trialstack.protocol.rules.closures import Env
from trialstack.protocol.rules.compiler import CompiledRule, compile_rule
from trialstack.protocol.rules.errors import RuleCompileError, RuleError, RuleEvaluationError
from trialstack.protocol.rules.types import RuleType

Check = Callable[[Env], bool | None]  # a compiled BOOLEAN rule's bare closure


class RuleSet:
    """Boolean rules by id, compiled once; a check holds unless its result is False (None raises no query).

    Raises RuleCompileError with every error of every rule (each RuleError carries its rule_id).
    Results keep the order of `rules`.
    """

    def __init__(self, rules: Mapping[str, str], symbols: Mapping[str, RuleType]) -> None:
        compiled: dict[str, CompiledRule] = {}
        errors: list[RuleError] = []
        for rule_id, source in rules.items():
            try:
                compiled[rule_id] = compile_rule(source, symbols, RuleType.BOOLEAN)
            except RuleCompileError as exc:
                errors.extend(replace(error, rule_id=rule_id) for error in exc.errors)
        if errors:
            raise RuleCompileError(errors)
        self.rules: Mapping[str, CompiledRule] = MappingProxyType(compiled)
        self._all = tuple((rule_id, cast(Check, rule.fn)) for rule_id, rule in compiled.items())
        self._order = {rule_id: index for index, rule_id in enumerate(compiled)}
        readers: dict[str, list[tuple[str, Check]]] = {}
        for rule_id, rule in compiled.items():
            for name in sorted(rule.reads):
                readers.setdefault(name, []).append((rule_id, cast(Check, rule.fn)))
        self._readers = {name: tuple(pairs) for name, pairs in readers.items()}

    @property
    def names(self) -> frozenset[str]:
        """Every item name some rule reads."""
        return frozenset(self._readers)

    def readers(self, name: str) -> list[str]:
        """Ids of the rules that read `name`, in rule order."""
        return [rule_id for rule_id, _ in self._readers.get(name, ())]

    def affected_by(self, changed_names: Iterable[str]) -> list[str]:
        """Ids of the rules that read any of `changed_names`, in rule order, each once."""
        return [rule_id for rule_id, _ in self._affected(changed_names)]

    def evaluate(self, env: Env) -> dict[str, bool | None]:
        """Every rule's result; None is unknown (some value it needs is missing)."""
        return self._run(self._all, env)

    def evaluate_changed(self, env: Env, changed_names: Iterable[str]) -> dict[str, bool | None]:
        """Results of only the rules that read a changed name; the others cannot have changed."""
        return self._run(self._affected(changed_names), env)

    def _affected(self, changed_names: Iterable[str]) -> tuple[tuple[str, Check], ...]:
        if isinstance(changed_names, str):
            raise TypeError("changed_names must be a collection of names, not one str")
        changed = list(changed_names)
        if len(changed) == 1:
            return self._readers.get(changed[0], ())
        seen = {pair for name in changed for pair in self._readers.get(name, ())}
        return tuple(sorted(seen, key=lambda pair: self._order[pair[0]]))

    def _run(self, pairs: tuple[tuple[str, Check], ...], env: Env) -> dict[str, bool | None]:
        try:
            return {rule_id: fn(env) for rule_id, fn in pairs}
        except (TypeError, AttributeError, ArithmeticError, ValueError):
            for rule_id, _ in pairs:  # find the culprit; the fast path above stays free of bookkeeping
                try:
                    self.rules[rule_id](env)
                except RuleEvaluationError as exc:
                    raise RuleEvaluationError(f"{rule_id}: {exc.message}", rule_id=rule_id) from exc.__cause__
            raise  # pragma: no cover - every failure above is re-raised by its rule

    def __len__(self) -> int:
        return len(self._all)

    def __repr__(self) -> str:
        return f"RuleSet({len(self._all)} rules over {len(self._readers)} names)"
