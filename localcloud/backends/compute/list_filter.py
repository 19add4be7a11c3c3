"""Compute's list filter: the regular-expression form (``name eq ".*x.*"``, gcloud's ``~``) and the
AIP-160 form (``name = x``, ``!=``, ``<``, ``>``, ``:``), parenthesised terms joined by AND
(implicit) and OR. The two forms cannot be mixed in one filter (discovery doc).
"""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Any, Callable, Mapping

from localcloud.backends.compute.common import _field_error, _text


class _FilterSyntax(Exception):
    pass


Node = Callable[[Mapping[str, Any]], bool]


def compile_filter(text: str) -> Node:
    """The predicate of a Compute ``filter`` parameter; 400 for a filter Google would refuse."""
    try:
        parser = _FilterParser(text)
        node = parser.parse()
    except _FilterSyntax as exc:
        raise _field_error("filter", text, f"Invalid list filter expression ({exc}).") from None
    if parser.regex_ops and parser.aip_ops:
        raise _field_error("filter", text, "Regular expression (eq, ne) and AIP-160 (=, !=, <, >, :) expressions "
                                           "cannot be mixed in one filter.")
    return node


class _FilterParser:
    _OPS = ("!=", "<=", ">=", "=", "<", ">", ":")

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.regex_ops = 0
        self.aip_ops = 0

    def parse(self) -> Node:
        node = self._sequence()
        self._ws()
        if self.i < len(self.s):
            raise _FilterSyntax(f"unexpected {self.s[self.i:]!r}")
        return node

    # sequence := factor ((AND)? factor)*   ;   factor := term (OR term)*   (AIP-160: OR binds tighter)
    def _sequence(self) -> Node:
        nodes = [self._factor()]
        while True:
            self._ws()
            if self.i >= len(self.s) or self.s[self.i] == ")":
                break
            self._keyword("AND")
            nodes.append(self._factor())
        return (lambda r: all(n(r) for n in nodes)) if len(nodes) > 1 else nodes[0]

    def _factor(self) -> Node:
        nodes = [self._term()]
        while self._keyword("OR"):
            nodes.append(self._term())
        return (lambda r: any(n(r) for n in nodes)) if len(nodes) > 1 else nodes[0]

    def _term(self) -> Node:
        self._ws()
        if self._keyword("NOT"):
            inner = self._term()
            return lambda r: not inner(r)
        if self.s.startswith("-", self.i) and self.i + 1 < len(self.s) and not self.s[self.i + 1].isspace():
            self.i += 1
            inner = self._term()
            return lambda r: not inner(r)
        if self.s.startswith("(", self.i):
            self.i += 1
            node = self._sequence()
            self._ws()
            if not self.s.startswith(")", self.i):
                raise _FilterSyntax("missing ')'")
            self.i += 1
            return node
        return self._comparison()

    def _comparison(self) -> Node:
        self._ws()
        m = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*").match(self.s, self.i)
        if not m:
            raise _FilterSyntax(f"expected a field name at {self.s[self.i:]!r}")
        path = m.group(0).split(".")
        self.i = m.end()
        self._ws()
        op = None
        for candidate in self._OPS:
            if self.s.startswith(candidate, self.i):
                op = candidate
                self.i += len(candidate)
                break
        if op is None:
            word = re.compile(r"(eq|ne)\s").match(self.s, self.i)
            if not word:
                raise _FilterSyntax(f"expected an operator after {'.'.join(path)!r}")
            op = word.group(1)
            self.i = word.end() - 1
        self._ws()
        value = self._value()
        if op in ("eq", "ne"):
            self.regex_ops += 1
            try:
                regex = re.compile(value)
            except re.error as exc:
                raise _FilterSyntax(f"bad regular expression {value!r}: {exc}") from None
            matches = (lambda r: any(regex.fullmatch(v) for v in _field_values(r, path)))
            return matches if op == "eq" else (lambda r: not matches(r))
        self.aip_ops += 1
        return _aip_comparison(path, op, value)

    def _value(self) -> str:
        if self.i >= len(self.s):
            raise _FilterSyntax("missing value")
        quote = self.s[self.i]
        if quote in "\"'":
            out = []
            self.i += 1
            while self.i < len(self.s):
                ch = self.s[self.i]
                if ch == "\\" and self.i + 1 < len(self.s):
                    out.append(self.s[self.i + 1])
                    self.i += 2
                    continue
                if ch == quote:
                    self.i += 1
                    return "".join(out)
                out.append(ch)
                self.i += 1
            raise _FilterSyntax("unterminated quoted value")
        start, depth = self.i, 0
        while self.i < len(self.s):
            ch = self.s[self.i]
            if ch.isspace():
                break
            if ch == "(":
                depth += 1
            elif ch == ")":
                if depth == 0:
                    break
                depth -= 1
            self.i += 1
        if self.i == start:
            raise _FilterSyntax("missing value")
        if depth:
            raise _FilterSyntax(f"unbalanced '(' in {self.s[start:self.i]!r}")
        return self.s[start:self.i]

    def _keyword(self, word: str) -> bool:
        self._ws()
        m = re.compile(rf"{word}(?=[\s(]|$)").match(self.s, self.i)
        if m:
            self.i = m.end()
            return True
        return False

    def _ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i].isspace():
            self.i += 1


def _field_values(resource: Any, path: list[str]) -> list[str]:
    """Every value at a dotted path (lists fan out), as Compute compares them: text."""
    current: list[Any] = [resource]
    for part in path:
        nxt: list[Any] = []
        for value in current:
            items = value if isinstance(value, list) else [value]
            for item in items:
                if isinstance(item, dict) and part in item:
                    nxt.append(item[part])
        current = nxt
    out: list[str] = []
    for value in current:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, (dict, list)):
                out.append(json.dumps(item))
            else:
                out.append(_text(item))
    return out


def _aip_comparison(path: list[str], op: str, literal: str) -> Node:
    def as_number(text: str) -> float | None:
        try:
            return float(text)
        except ValueError:
            return None

    def equal(value: str) -> bool:
        if "*" in literal:
            return fnmatch.fnmatchcase(value, literal)
        if value.lower() in ("true", "false") and literal.lower() in ("true", "false"):
            return value.lower() == literal.lower()
        a, b = as_number(value), as_number(literal)
        if a is not None and b is not None:
            return a == b
        return value == literal

    def ordered(value: str) -> bool:
        a, b = as_number(value), as_number(literal)
        left, right = (a, b) if a is not None and b is not None else (value, literal)
        return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]  # type: ignore[operator]

    def node(resource: Mapping[str, Any]) -> bool:
        values = _field_values(resource, path)
        if op == ":":
            return bool(values) if literal == "*" else any(literal in v or equal(v) for v in values)
        if op == "=":
            return any(equal(v) for v in values)
        if op == "!=":
            return not any(equal(v) for v in values)
        return any(ordered(v) for v in values)

    return node
