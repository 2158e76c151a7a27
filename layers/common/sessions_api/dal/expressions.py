"""A small builder for DynamoDB update and condition expressions with generated placeholders."""

from __future__ import annotations

from typing import Any

from sessions_api.models.entities import storable


class Expr:
    def __init__(self) -> None:
        self._names: dict[str, str] = {}
        self._values: dict[str, Any] = {}
        self._sets: list[str] = []
        self._adds: list[str] = []
        self._removes: list[str] = []
        self._conditions: list[str] = []

    def copy(self) -> Expr:
        twin = Expr()
        twin._names, twin._values = dict(self._names), dict(self._values)
        twin._sets, twin._adds = list(self._sets), list(self._adds)
        twin._removes, twin._conditions = list(self._removes), list(self._conditions)
        return twin

    def name(self, attribute: str) -> str:
        for placeholder, existing in self._names.items():
            if existing == attribute:
                return placeholder
        placeholder = f"#n{len(self._names)}"
        self._names[placeholder] = attribute
        return placeholder

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self._values)}"
        self._values[placeholder] = storable(value)
        return placeholder

    def set(self, attribute: str, value: Any) -> Expr:
        self._sets.append(f"{self.name(attribute)} = {self.value(value)}")
        return self

    def set_raw(self, clause: str) -> Expr:
        self._sets.append(clause)
        return self

    def add(self, attribute: str, amount: float | frozenset[str]) -> Expr:
        """ADD: a number to a counter, or members to a string set."""
        self._adds.append(f"{self.name(attribute)} {self.value(amount)}")
        return self

    def remove(self, *attributes: str) -> Expr:
        self._removes.extend(self.name(attribute) for attribute in attributes)
        return self

    def when(self, condition: str) -> Expr:
        self._conditions.append(condition)
        return self

    def when_count(self, attribute: str, count: int) -> Expr:
        """The counter `attribute` is `count` (a counter never written counts as 0)."""
        name = self.name(attribute)
        counted = f"{name} = {self.value(count)}"
        return self.when(f"attribute_not_exists({name}) OR {counted}" if count == 0 else counted)

    def update_expression(self) -> str:
        parts = []
        if self._sets:
            parts.append("SET " + ", ".join(self._sets))
        if self._adds:
            parts.append("ADD " + ", ".join(self._adds))
        if self._removes:
            parts.append("REMOVE " + ", ".join(self._removes))
        return " ".join(parts)

    def condition_expression(self) -> str | None:
        # DynamoDB refuses redundant parentheses: group only what an OR would otherwise split.
        if len(self._conditions) == 1:
            return self._conditions[0]
        return " AND ".join(f"({c})" if " OR " in c else c for c in self._conditions) or None

    def params(self, *, update: bool = True) -> dict[str, Any]:
        """Keyword arguments for update_item / a transaction's Update, ConditionCheck or Put."""
        params: dict[str, Any] = {}
        if update:
            params["UpdateExpression"] = self.update_expression()
        condition = self.condition_expression()
        if condition:
            params["ConditionExpression"] = condition
        if self._names:
            params["ExpressionAttributeNames"] = dict(self._names)
        if self._values:
            params["ExpressionAttributeValues"] = dict(self._values)
        return params
