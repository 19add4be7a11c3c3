"""The Cloud Logging query language, as far as Logging sink filters use it.

localcloud's sinks are configured with the very filter text that Terraform in ``infra/`` gives
Google, so this module follows Google's documented semantics ("Logging query language" page,
and AIP-160 which it cites as the formal design) rather than inventing a friendlier dialect:

- Precedence: ``NOT`` (or ``-``) binds tightest, then ``OR``, then ``AND``; adjacent terms are
  joined by an implicit ``AND`` (also across newlines).  So ``a OR NOT b AND NOT c OR d`` means
  ``(a OR (NOT b)) AND ((NOT c) OR d)``, as Google's page spells out.  Operators must be capitals;
  lowercase ``and``/``or``/``not`` are search terms at Google.
- Comparisons ``=  !=  <  <=  >  >=  :  =~  !~``; ``field:*`` tests presence;
  ``field OP (v1 OR v2 ...)`` applies the field and operator to each value.
- The right-hand value is converted to the field's type; a failed conversion fails the comparison.
  Strings compare case-insensitively (after NFKC case folding); ``:`` is a case-insensitive
  substring test; regular expressions are case-sensitive, unanchored and not normalised.
- Array fields: each element is compared and the results are ORed.
- Missing payload/label fields fail every comparison (``NOT f=x`` is then true, ``f!=x`` false);
  fields that the LogEntry type defines are "defaulted" (compared as their default value);
  a left-hand side that does not start with a LogEntry field is an error before any matching.

Not implemented, rejected with a clear FilterSyntaxError: global restrictions (a bare value that
searches every field) and functions other than ``log_id()``.  Regular expressions run on Python's
``re`` after rejecting the constructs RE2 lacks (backreferences, lookaround, atomic groups,
possessive quantifiers); unlike RE2, ``re`` backtracks, so a hostile pattern can be slow.

Usage: ``parse(text)`` once, then ``Filter.matches(entry)`` for every LogEntry dict (JSON form).
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Mapping, Union
from urllib.parse import unquote

__all__ = [
    "And",
    "Comparison",
    "Exists",
    "FieldPath",
    "Filter",
    "FilterSyntaxError",
    "Literal",
    "LogId",
    "Not",
    "Or",
    "parse",
]

# Google: "The length of a query can't exceed 20,000 characters."
MAX_FILTER_LENGTH = 20_000
# UNCONFIRMED: Google documents no nesting limit. Real sink filters nest two or three levels; ours
# keeps the recursive parser (about five frames per level) far from Python's recursion limit.
MAX_NESTING = 32
# UNCONFIRMED: what Google does with an unknown escape such as "\d" in a string. We keep the
# backslash and the character, so regular expressions written "\d+" work as people expect.
KEEP_UNKNOWN_ESCAPES = True
# UNCONFIRMED: Google documents ':' for strings and bytes only. For numbers, booleans, enums and
# timestamps we treat it as equality (AIP-160's "has" on a scalar), the least surprising reading.
HAS_ON_SCALARS_MEANS_EQUALS = True

COMPARATORS = ("=", "!=", "<", "<=", ">", ">=", ":", "=~", "!~")
_KEYWORDS = ("AND", "OR", "NOT")
_SUPPORTED_FUNCTIONS = ("log_id",)


class FilterSyntaxError(ValueError):
    """The filter text is not valid. ``position`` is the 0-based offset of the bad spot;
    ``message`` names the problem with its line and column and quotes the text around it."""

    def __init__(self, message: str, position: int):
        super().__init__(message)
        self.message = message
        self.position = position


# --------------------------------------------------------------------------------------------
# Syntax tree (frozen; ``str()`` renders the fully parenthesised canonical form)


@dataclass(frozen=True)
class FieldPath:
    segments: tuple[str, ...]
    position: int

    def __str__(self) -> str:
        return ".".join(s if _PLAIN_SEGMENT.fullmatch(s) else _quote(s) for s in self.segments)


@dataclass(frozen=True)
class Literal:
    text: str  # the value as written (decoded when quoted)
    quoted: bool
    position: int
    null: bool = False  # the unquoted NULL_VALUE, JSON null

    def __str__(self) -> str:
        return "NULL_VALUE" if self.null else _quote(self.text)


@dataclass(frozen=True)
class And:
    operands: tuple[Any, ...]

    def __str__(self) -> str:
        return " AND ".join(_grouped(o) for o in self.operands)


@dataclass(frozen=True)
class Or:
    operands: tuple[Any, ...]

    def __str__(self) -> str:
        return " OR ".join(_grouped(o) for o in self.operands)


@dataclass(frozen=True)
class Not:
    operand: Any

    def __str__(self) -> str:
        return "NOT " + _grouped(self.operand)


@dataclass(frozen=True)
class Comparison:
    path: FieldPath
    op: str
    value: Any  # Literal, or And/Or/Not over Literals for "field OP (a OR b)"

    def __str__(self) -> str:
        value = str(self.value) if isinstance(self.value, Literal) else f"({self.value})"
        return f"{self.path} {self.op} {value}"


@dataclass(frozen=True)
class Exists:
    path: FieldPath

    def __str__(self) -> str:
        return f"{self.path}:*"


@dataclass(frozen=True)
class LogId:
    log_id: str
    position: int

    def __str__(self) -> str:
        return f"log_id({_quote(self.log_id)})"


Node = Union[And, Or, Not, Comparison, Exists, LogId]


def _grouped(node: Any) -> str:
    return f"({node})" if isinstance(node, (And, Or)) else str(node)


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


_PLAIN_SEGMENT = re.compile(r"[\w@$][\w@$-]*")


@dataclass(frozen=True)
class Filter:
    """A parsed filter. ``matches`` is pure and safe to call from many threads."""

    text: str
    expression: Node
    _predicate: Callable[[Mapping[str, Any]], bool] = field(repr=False, compare=False)

    def matches(self, entry: Mapping[str, Any]) -> bool:
        return self._predicate(entry)

    @property
    def canonical(self) -> str:
        """Fully parenthesised form, handy to show how precedence was applied."""
        return str(self.expression)


def parse(text: str) -> Filter:
    """Parse and compile ``text``; raise FilterSyntaxError (and nothing else) when it is invalid."""
    if not isinstance(text, str):
        raise FilterSyntaxError(f"a filter must be text, not {type(text).__name__}", 0)
    if len(text) > MAX_FILTER_LENGTH:
        raise _error(text, MAX_FILTER_LENGTH, f"the filter is {len(text)} characters long; "
                     f"Cloud Logging accepts at most {MAX_FILTER_LENGTH}")
    try:
        expression = _Parser(text).parse()
        predicate = _Compiler(text).compile(expression)
    except RecursionError:  # only when the caller's own stack is already nearly full
        raise _error(text, 0, "the filter is nested too deeply to parse here") from None
    return Filter(text=text, expression=expression, _predicate=predicate)


def _error(text: str, position: int, what: str) -> FilterSyntaxError:
    position = max(0, min(position, len(text)))
    line_no = text.count("\n", 0, position) + 1
    line_start = text.rfind("\n", 0, position) + 1
    line_end = text.find("\n", position)
    line = text[line_start:len(text) if line_end < 0 else line_end]
    column = position - line_start + 1
    low, high = max(0, column - 1 - 40), min(len(line), column - 1 + 40)
    prefix, suffix = ("..." if low > 0 else ""), ("..." if high < len(line) else "")
    snippet = "".join(c if c.isprintable() else " " for c in line[low:high])
    caret = " " * (len(prefix) + column - 1 - low) + "^"
    return FilterSyntaxError(
        f"{what} at line {line_no}, column {column}:\n    {prefix}{snippet}{suffix}\n    {caret}", position)


# --------------------------------------------------------------------------------------------
# Tokens


@dataclass(frozen=True)
class _Token:
    kind: str  # "(", ")", ",", "*", "-", "op", "string", "word", "end"
    text: str  # source text; for "string" the decoded value
    start: int
    end: int


_SINGLE_CHAR_TOKENS = "()*,"
_WORD_STOP = set(" ()\",*=<>:~")
_SIMPLE_ESCAPES = {'"': '"', "\\": "\\", "'": "'", "n": "\n", "t": "\t", "r": "\r", "b": "\b",
                   "f": "\f", "v": "\v", "a": "\a", "/": "/"}


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if text.startswith("--", i):  # comment to the end of the line
            newline = text.find("\n", i)
            i = n if newline < 0 else newline
            continue
        if i >= n:
            tokens.append(_Token("end", "", n, n))
            return tokens
        c = text[i]
        if c in _SINGLE_CHAR_TOKENS:
            tokens.append(_Token(c, c, i, i + 1))
            i += 1
        elif c == '"':
            value, end = _read_string(text, i)
            tokens.append(_Token("string", value, i, end))
            i = end
        elif c == "'":
            # UNCONFIRMED whether Google accepts single quotes; its docs only ever use double ones.
            raise _error(text, i, "strings are written in double quotes (\"...\"), not single quotes")
        elif c in "=!<>:~":
            two = text[i:i + 2]
            if two in ("=~", "!=", "!~", "<=", ">="):
                tokens.append(_Token("op", two, i, i + 2))
                i += 2
            elif c in "=<>:":
                tokens.append(_Token("op", c, i, i + 1))
                i += 1
            elif c == "!":
                raise _error(text, i, "'!' must be followed by '=' or '~'; to negate a term use NOT or -")
            else:
                raise _error(text, i, "'~' is only valid in the operators =~ and !~")
        elif c == "-" and not (i + 1 < n and (text[i + 1].isdigit() or text[i + 1] == ".")):
            tokens.append(_Token("-", c, i, i + 1))  # negation; "-3" stays a number
            i += 1
        else:
            start = i
            while i < n:
                ch = text[i]
                if ch.isspace() or ch in _WORD_STOP or (ch == "!" and text[i + 1:i + 2] in ("=", "~")):
                    break
                i += 1
            tokens.append(_Token("word", text[start:i], start, i))


def _read_string(text: str, start: int) -> tuple[str, int]:
    """Decode the double-quoted string that opens at ``start``; return (value, end offset)."""
    out: list[str] = []
    i, n = start + 1, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            return "".join(out), i + 1
        if c != "\\":
            out.append(c)
            i += 1
            continue
        if i + 1 >= n:
            break
        e = text[i + 1]
        if e in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[e])
            i += 2
        elif e in "01234567":
            digits = re.match(r"[0-7]{1,3}", text[i + 1:i + 4]).group()  # type: ignore[union-attr]
            out.append(chr(int(digits, 8)))
            i += 1 + len(digits)
        elif e in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[e]
            digits = text[i + 2:i + 2 + width]
            if len(digits) != width or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise _error(text, i, f"'\\{e}' must be followed by {width} hexadecimal digits")
            code = int(digits, 16)
            if code > 0x10FFFF:
                raise _error(text, i, f"'\\{e}{digits}' is not a Unicode character")
            out.append(chr(code))
            i += 2 + width
        elif KEEP_UNKNOWN_ESCAPES:
            out.append("\\" + e)
            i += 2
        else:  # pragma: no cover - the other reading of the UNCONFIRMED behaviour
            raise _error(text, i, f"unknown escape '\\{e}'")
    raise _error(text, start, "this string is never closed (a '\"' is missing)")


# --------------------------------------------------------------------------------------------
# Parser: recursive descent over the AIP-160 shape
#   expression = sequence {"AND" sequence}     sequence = factor {factor}   (implicit AND)
#   factor = term {"OR" term}                  term = {"NOT" | "-"} simple
#   simple = "(" expression ")" | restriction | function
#   restriction = path ":" "*" | path comparator (literal | "(" value-expression ")")


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0

    # -- helpers
    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        token = self.tokens[self.i]
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return token

    def is_keyword(self, token: _Token, *words: str) -> bool:
        return token.kind == "word" and token.text in words

    def fail(self, token_or_pos: _Token | int, what: str) -> FilterSyntaxError:
        pos = token_or_pos if isinstance(token_or_pos, int) else token_or_pos.start
        return _error(self.text, pos, what)

    def describe(self, token: _Token) -> str:
        if token.kind == "end":
            return "the end of the filter"
        if token.kind == "string":
            return f"the string {_quote(token.text)}"
        return f"'{token.text}'"

    def starts_term(self, token: _Token) -> bool:
        if token.kind in ("(", "-", "string"):
            return True
        return token.kind == "word" and token.text not in ("AND", "OR")

    def enter(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.fail(token, f"parentheses are nested more than {MAX_NESTING} deep")

    def close(self, opening: _Token) -> None:
        token = self.peek()
        if token.kind != ")":
            if token.kind == "end":
                raise self.fail(opening, "this '(' is never closed (a ')' is missing)")
            raise self.fail(token, f"expected ')' or an operator, found {self.describe(token)}")
        self.advance()
        self.depth -= 1

    # -- boolean structure (shared by filters and value groups)
    def parse(self) -> Node:
        if self.peek().kind == "end":
            return And(())  # an empty filter matches every entry, as an empty sink filter does
        node = self.expression(self.simple)
        token = self.peek()
        if token.kind == ")":
            raise self.fail(token, "this ')' has no matching '('")
        if token.kind != "end":
            raise self.fail(token, f"unexpected {self.describe(token)}")
        return node

    def expression(self, leaf: Callable[[], Any]) -> Any:
        parts = [self.sequence(leaf)]
        while self.is_keyword(self.peek(), "AND"):
            self.advance()
            parts.append(self.sequence(leaf))
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def sequence(self, leaf: Callable[[], Any]) -> Any:
        parts = [self.factor(leaf)]
        while self.starts_term(self.peek()):
            parts.append(self.factor(leaf))
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def factor(self, leaf: Callable[[], Any]) -> Any:
        parts = [self.term(leaf)]
        while self.is_keyword(self.peek(), "OR"):
            self.advance()
            parts.append(self.term(leaf))
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def term(self, leaf: Callable[[], Any]) -> Any:
        negations = 0
        while self.peek().kind == "-" or self.is_keyword(self.peek(), "NOT"):
            self.advance()
            negations += 1
        node = leaf()
        return Not(node) if negations % 2 else node

    # -- filter terms
    def simple(self) -> Node:
        token = self.peek()
        if token.kind == "(":
            self.advance()
            self.enter(token)
            node = self.expression(self.simple)
            self.close(token)
            return node
        if token.kind == "word" and token.text not in _KEYWORDS:
            return self.restriction()
        if token.kind == "string":
            raise self.fail(token, _bare_value_message(token.text, quoted=True))
        raise self.fail(token, f"expected a comparison such as logName=\"...\", found {self.describe(token)}")

    def restriction(self) -> Node:
        first = self.peek()
        if self.peek(1).kind == "(":
            return self.function()
        path_start, path_end, tokens_used = first.start, first.end, 1
        # A path may continue with adjacent quoted segments: labels."compute.googleapis.com/x"
        while self.peek(tokens_used).kind in ("word", "string") and self.peek(tokens_used).start == path_end:
            path_end = self.peek(tokens_used).end
            tokens_used += 1
        raw_path = self.text[path_start:path_end]
        operator = self.peek(tokens_used)
        if operator.kind != "op":
            raise self.fail(first, _bare_value_message(raw_path, quoted=False))
        segments = _split_path(self.text, raw_path, path_start)
        path = FieldPath(_check_field(self.text, segments), path_start)
        for _ in range(tokens_used + 1):
            self.advance()
        if operator.text == ":" and self.peek().kind == "*":
            self.advance()
            return Exists(path)
        value_token = self.peek()
        if value_token.kind == "(":
            self.advance()
            self.enter(value_token)
            value = self.expression(lambda: self.literal(operator))
            self.close(value_token)
        else:
            value = self.literal(operator)
        return Comparison(path, operator.text, value)

    def literal(self, operator: _Token) -> Any:
        token = self.peek()
        if token.kind == "(":  # nested group inside a value group
            self.advance()
            self.enter(token)
            value = self.expression(lambda: self.literal(operator))
            self.close(token)
            return value
        if token.kind == "string":
            self.advance()
            return Literal(token.text, True, token.start)
        if token.kind == "word" and token.text not in _KEYWORDS:
            self.advance()
            text = token.text
            if text == "NULL_VALUE":
                return Literal(text, False, token.start, null=True)
            if text[0] in "+-." and _DOUBLE.fullmatch(text) is None:
                raise self.fail(token, f"a value that starts with '{text[0]}' must be quoted: \"{text}\"")
            return Literal(text, False, token.start)
        if token.kind == "*":
            raise self.fail(token, "'*' is only valid as 'field:*' (field exists); quote it to compare with \"*\"")
        raise self.fail(token, f"expected a value after '{operator.text}', found {self.describe(token)}")

    def function(self) -> Node:
        name_token = self.advance()
        name = name_token.text
        if name in ("and", "or", "not"):
            raise self.fail(name_token, _bare_value_message(name, quoted=False))
        if name.lower() not in _SUPPORTED_FUNCTIONS:
            raise self.fail(name_token, f"the function '{name}' is not supported by localcloud's filter "
                                        f"(supported: {', '.join(_SUPPORTED_FUNCTIONS)})")
        opening = self.advance()
        argument = self.peek()
        if argument.kind not in ("string", "word") or self.is_keyword(argument, *_KEYWORDS):
            raise self.fail(argument, f"log_id() takes one log ID such as \"cloudaudit.googleapis.com/activity\", "
                                      f"found {self.describe(argument)}")
        self.advance()
        self.depth += 1
        self.close(opening)
        return LogId(argument.text, name_token.start)


def _bare_value_message(raw: str, *, quoted: bool) -> str:
    if not quoted and raw in ("and", "or", "not"):
        return (f"lowercase '{raw}' is a search term, not an operator: Boolean operators must be "
                f"capitals ({raw.upper()})")
    shown = _quote(raw) if quoted else f"'{raw}'"
    if not quoted and ("." in raw or raw.lower() in _TOP_LEVEL_BY_FOLDED):
        return (f"{shown} must be followed by a comparison operator "
                f"({' '.join(COMPARATORS)}) or ':*'")
    return (f"{shown} is a bare value (a global restriction, which searches every field); "
            "localcloud's filter supports only field comparisons such as logName=\"...\". "
            "To compare one field with several values write field=(\"a\" OR \"b\")")


def _split_path(text: str, raw: str, base: int) -> list[tuple[str, bool, int]]:
    """Split ``raw`` (a field path as written) into (segment, quoted, offset) triples."""
    segments: list[tuple[str, bool, int]] = []
    i = 0
    while True:
        if i < len(raw) and raw[i] == '"':
            value, end = _read_string(text, base + i)
            segments.append((value, True, base + i))
            i = end - base
        else:
            end = i
            while end < len(raw) and raw[end] not in '."':
                end += 1
            segment = raw[i:end]
            if not segment:
                raise _error(text, base + i, "a field name part is empty (two dots, or a dot at the start)")
            if not _PLAIN_SEGMENT.fullmatch(segment):
                hint = f"quote it: \"{segment}\""
                if segments:  # label keys contain dots too: the whole key is one quoted part
                    first = segments[0][0]
                    hint += f" (a key such as a label key is quoted whole: {first}.{_quote(raw[len(first) + 1:])})"
                raise _error(text, base + i, f"the field name part '{segment}' has special characters; {hint}")
            segments.append((segment, False, base + i))
            i = end
        if i >= len(raw):
            return segments
        if raw[i] != ".":
            raise _error(text, base + i, "expected '.' between the parts of a field name")
        i += 1
        if i >= len(raw):
            raise _error(text, base + i - 1, "a field name cannot end with '.'")


# --------------------------------------------------------------------------------------------
# The LogEntry schema: which names exist, their types, and which sub-trees are free-form.

_STRING, _INT, _BOOL, _TIMESTAMP, _DURATION, _SEVERITY = "string", "int", "bool", "timestamp", "duration", "severity"
_OPEN = "open"  # payloads, maps and structs: any key below, types inferred from the JSON value

_LOGENTRY: dict[str, Any] = {
    "logName": _STRING, "insertId": _STRING, "textPayload": _STRING, "trace": _STRING,
    "spanId": _STRING, "traceSampled": _BOOL, "severity": _SEVERITY,
    "timestamp": _TIMESTAMP, "receiveTimestamp": _TIMESTAMP,
    "protoPayload": _OPEN, "jsonPayload": _OPEN, "labels": _OPEN, "errorGroups": _OPEN,
    "apphub": _OPEN, "apphubDestination": _OPEN, "apphubSource": _OPEN,
    "resource": {"type": _STRING, "labels": _OPEN},
    "operation": {"id": _STRING, "producer": _STRING, "first": _BOOL, "last": _BOOL},
    "sourceLocation": {"file": _STRING, "line": _INT, "function": _STRING},
    "split": {"uid": _STRING, "index": _INT, "totalSplits": _INT},
    "metadata": {"systemLabels": _OPEN, "userLabels": _OPEN},
    "httpRequest": {
        "requestMethod": _STRING, "requestUrl": _STRING, "requestSize": _INT, "status": _INT,
        "responseSize": _INT, "userAgent": _STRING, "remoteIp": _STRING, "serverIp": _STRING,
        "referer": _STRING, "latency": _DURATION, "cacheLookup": _BOOL, "cacheHit": _BOOL,
        "cacheValidatedWithOriginServer": _BOOL, "cacheFillBytes": _INT, "protocol": _STRING,
    },
}
_TOP_LEVEL_BY_FOLDED = {name.casefold(): name for name in _LOGENTRY}
# AuditLog fields that hold a Struct or Any: their keys are data, so their case is kept. Other
# protoPayload names are protocol-buffer fields, which Google matches without regard to case.
_AUDITLOG_STRUCT_FIELDS = frozenset(
    f.casefold() for f in ("request", "response", "metadata", "serviceData", "resourceOriginalState"))
_DEFAULTS = {_STRING: "", _INT: 0, _BOOL: False, _TIMESTAMP: "1970-01-01T00:00:00Z",
             _DURATION: "0s", _SEVERITY: "DEFAULT"}


def _check_field(text: str, segments: list[tuple[str, bool, int]]) -> tuple[str, ...]:
    """Validate the path against LogEntry and return it with LogEntry names in canonical case."""
    name, _, name_pos = segments[0]
    canonical = _TOP_LEVEL_BY_FOLDED.get(name.casefold())
    if canonical is None:
        raise _error(text, name_pos, f"unknown field '{name}': a filter field must start with a LogEntry "
                                     f"field ({', '.join(sorted(_LOGENTRY))})")
    out = [canonical]
    schema = _LOGENTRY[canonical]
    if isinstance(schema, dict) and len(segments) > 1:
        sub, _, sub_pos = segments[1]
        by_folded = {k.casefold(): k for k in schema}
        sub_canonical = by_folded.get(sub.casefold())
        if sub_canonical is None:
            raise _error(text, sub_pos, f"unknown field '{canonical}.{sub}' (known: "
                                        f"{', '.join(canonical + '.' + k for k in schema)})")
        out.append(sub_canonical)
        schema = schema[sub_canonical]
    if isinstance(schema, str) and schema != _OPEN and len(segments) > len(out):
        extra, _, extra_pos = segments[len(out)]
        raise _error(text, extra_pos, f"'{'.'.join(out)}' is a {schema} field; it has no field '{extra}'")
    out.extend(s for s, _, _ in segments[len(out):])
    return tuple(out)


def _field_kind(path: tuple[str, ...]) -> str | None:
    """The declared type of a LogEntry scalar path, or None when types come from the JSON value."""
    schema: Any = _LOGENTRY
    for segment in path:
        if not isinstance(schema, dict) or segment not in schema:
            return None
        schema = schema[segment]
    return schema if isinstance(schema, str) and schema != _OPEN else None


# --------------------------------------------------------------------------------------------
# Value conversions (Google's "Values and conversions" table)

_DOUBLE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?i:infinity)|(?i:nan)")
_INTEGER = re.compile(r"[+-]?[0-9]{1,30}")
# The offset colon is optional: google-cloud-logging's list_entries adds timestamp>="...+0000".
_TIMESTAMP_TEXT = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?(?:([Zz])|([+-])([0-9]{2}):?([0-9]{2}))?)?")
_DURATION_TEXT = re.compile(r"([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(ns|us|µs|ms|s|m|h)")
_DURATION_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
                     "m": 60_000_000_000, "h": 3_600_000_000_000}
_EPOCH_ORDINAL = _dt.date(1970, 1, 1).toordinal()
_SEVERITIES = {"DEFAULT": 0, "DEBUG": 100, "INFO": 200, "NOTICE": 300, "WARNING": 400,
               "ERROR": 500, "CRITICAL": 600, "ALERT": 700, "EMERGENCY": 800}


def _fold(text: str) -> str:
    """Google normalises both sides of a string comparison with NFKC_Casefold."""
    if text.isascii():
        return text.lower()
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKD", text).casefold())


def _to_double(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and _DOUBLE.fullmatch(value):
        return float(value)
    return None


def _to_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)  # int64 fields arrive as JSON strings
    return None


def _to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return {"true": True, "false": False}.get(value.lower())
    return None


def _to_timestamp_ns(value: Any) -> int | None:
    """RFC 3339 (or a bare YYYY-MM-DD, which Google reads as midnight UTC) -> ns since epoch."""
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        delta = value - _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
    if not isinstance(value, str):
        return None
    m = _TIMESTAMP_TEXT.fullmatch(value)
    if m is None:
        return None
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = m.groups()
    try:
        ordinal = _dt.date(int(year), int(month), int(day)).toordinal()
    except ValueError:
        return None
    h, mi, s = int(hour or 0), int(minute or 0), int(second or 0)
    if h > 23 or mi > 59 or s > 60:
        return None
    offset = 0
    if sign:  # no zone at all is read as UTC (UNCONFIRMED for ISO 8601 local times)
        offset = (int(off_h) * 60 + int(off_m)) * 60 * (1 if sign == "+" else -1)
    seconds = (ordinal - _EPOCH_ORDINAL) * 86_400 + h * 3_600 + mi * 60 + s - offset
    nanos = int((fraction or "0")[:9].ljust(9, "0"))
    return seconds * 1_000_000_000 + nanos


def _to_duration_ns(value: Any) -> Decimal | None:
    if not isinstance(value, str):
        return None
    m = _DURATION_TEXT.fullmatch(value)
    if m is None:
        return None
    try:
        return Decimal(m.group(1)) * _DURATION_UNIT_NS[m.group(2)]
    except InvalidOperation:
        return None


def _to_severity(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        if value.upper() in _SEVERITIES:
            return _SEVERITIES[value.upper()]
        return _to_int(value)
    return None


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    _INT: _to_int, _BOOL: _to_bool, _TIMESTAMP: _to_timestamp_ns,
    _DURATION: _to_duration_ns, _SEVERITY: _to_severity,
}
_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


def _never(_value: Any) -> bool:
    return False


# --------------------------------------------------------------------------------------------
# Compiler: syntax tree -> closures (no tree walking or type questions left for match time)

_ABSENT = object()
Leaves = list  # the values a field path reaches in one entry (arrays flattened)


class _Compiler:
    def __init__(self, text: str):
        self.text = text

    def compile(self, node: Node) -> Callable[[Mapping[str, Any]], bool]:
        if isinstance(node, And):
            parts = tuple(self.compile(o) for o in node.operands)

            def all_of(entry: Mapping[str, Any]) -> bool:
                for part in parts:
                    if not part(entry):
                        return False
                return True
            return all_of
        if isinstance(node, Or):
            parts = tuple(self.compile(o) for o in node.operands)

            def any_of(entry: Mapping[str, Any]) -> bool:
                for part in parts:
                    if part(entry):
                        return True
                return False
            return any_of
        if isinstance(node, Not):
            inner = self.compile(node.operand)
            return lambda entry: not inner(entry)
        if isinstance(node, Exists):
            resolve = _resolver(node.path.segments, default=None)
            return lambda entry: bool(resolve(entry))
        if isinstance(node, LogId):
            return _log_id_predicate(node.log_id)
        return self.comparison(node)

    def comparison(self, node: Comparison) -> Callable[[Mapping[str, Any]], bool]:
        kind = _field_kind(node.path.segments)
        resolve = _resolver(node.path.segments, default=_DEFAULTS.get(kind) if kind else None)
        evaluate = self.value(node.value, node.op, kind)
        return lambda entry: evaluate(resolve(entry))

    def value(self, node: Any, op: str, kind: str | None) -> Callable[[Leaves], bool]:
        """Compile a value (or value group) into a test over the leaves one path reached."""
        if isinstance(node, Literal):
            test = self.leaf_test(node, op, kind)
            return lambda leaves: any(map(test, leaves))
        if isinstance(node, Not):
            inner = self.value(node.operand, op, kind)
            return lambda leaves: not inner(leaves)
        parts = tuple(self.value(o, op, kind) for o in node.operands)
        if isinstance(node, And):
            return lambda leaves: all(part(leaves) for part in parts)
        if op == "=" and kind in (None, _STRING) and all(isinstance(o, Literal) for o in node.operands):
            return self.equals_any(node.operands)
        return lambda leaves: any(part(leaves) for part in parts)

    def equals_any(self, literals: tuple[Literal, ...]) -> Callable[[Leaves], bool]:
        """``field=("a" OR "b" ...)``, the shape of most sink filters: one set lookup per string."""
        folded = frozenset(_fold(lit.text) for lit in literals if not lit.null)
        tests = tuple(self.leaf_test(lit, "=", None) for lit in literals)

        def equals_any(leaves: Leaves) -> bool:
            for leaf in leaves:
                if type(leaf) is str:
                    if _fold(leaf) in folded:
                        return True
                elif any(test(leaf) for test in tests):
                    return True
            return False
        return equals_any

    def leaf_test(self, lit: Literal, op: str, kind: str | None) -> Callable[[Any], bool]:
        if op in ("=~", "!~"):
            pattern_test = self.regex_test(lit, op)  # compiled (and checked) even when unused
            # Google: "Only fields of the string type can be matched with a regular expression."
            return pattern_test if kind in (None, _STRING) else _never
        if kind is not None and kind != _STRING:
            return _typed_test(lit, op, kind)
        return _inferred_test(lit, op)

    def regex_test(self, lit: Literal, op: str) -> Callable[[Any], bool]:
        if lit.null:
            return _never
        pattern = _compile_regex(self.text, lit)
        search = pattern.search
        if op == "=~":
            return lambda leaf: type(leaf) is str and search(leaf) is not None
        return lambda leaf: type(leaf) is str and search(leaf) is None


def _null_test(lit: Literal, op: str) -> Callable[[Any], bool] | None:
    """NULL_VALUE on the right: '=' matches JSON null only, '!=' anything else that is present."""
    if not lit.null:
        return None
    if op == "=":
        return lambda leaf: leaf is None
    if op == "!=":
        return lambda leaf: leaf is not None
    return _never


def _inferred_test(lit: Literal, op: str) -> Callable[[Any], bool]:
    """Payload and label fields: the JSON value's own type decides how to convert the literal."""
    null = _null_test(lit, op)
    if null is not None:
        return null
    text = _fold(lit.text)
    number, flag = _to_double(lit.text), _to_bool(lit.text)
    scalar_op = "=" if op == ":" and HAS_ON_SCALARS_MEANS_EQUALS else op
    compare = _ORDER.get(scalar_op)

    if op == ":":
        def string_test(leaf: str) -> bool:
            return text in _fold(leaf)
    else:
        string_compare = _ORDER[op]

        def string_test(leaf: str) -> bool:
            return string_compare(_fold(leaf), text)

    def test(leaf: Any) -> bool:
        t = type(leaf)
        if t is str:
            return string_test(leaf)
        if t is bool:
            return flag is not None and compare is not None and compare(leaf, flag)
        if t is int or t is float:
            return number is not None and compare is not None and compare(leaf, number)
        if t is dict and op == ":":  # "has" on an object searches every value inside it
            return _any_leaf(leaf, test)
        return False
    return test


def _any_leaf(node: Any, test: Callable[[Any], bool]) -> bool:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif item is not None and test(item):
            return True
    return False


def _typed_test(lit: Literal, op: str, kind: str) -> Callable[[Any], bool]:
    """LogEntry fields with a declared type: timestamps as instants, severity by level, ..."""
    null = _null_test(lit, op)
    if null is not None:
        return null
    convert = _CONVERTERS[kind]
    wanted = convert(lit.text)
    compare = _ORDER.get("=" if op == ":" and HAS_ON_SCALARS_MEANS_EQUALS else op)
    if wanted is None or compare is None:
        return _never  # "If an attempted conversion fails, then the comparison fails."

    def test(leaf: Any) -> bool:
        value = convert(leaf)
        return value is not None and compare(value, wanted)
    return test


_RE2_MISSING = (
    (re.compile(r"\(\?(?:=|!|<=|<!)"), "lookaround assertions"),
    (re.compile(r"\(\?P="), "backreferences"),
    (re.compile(r"\(\?>"), "atomic groups"),
    (re.compile(r"\(\?\("), "conditional groups"),
    (re.compile(r"\\[1-9]"), "backreferences"),
    (re.compile(r"[*+?}]\+"), "possessive quantifiers"),
)


def _compile_regex(text: str, lit: Literal) -> re.Pattern[str]:
    pattern = lit.text
    # RE2's end-of-text is \z; Python spells it \Z (which RE2 does not have).
    outside_classes = _mask_regex_literals(pattern)
    for probe, feature in _RE2_MISSING:
        found = probe.search(outside_classes)
        if found is not None:
            raise _error(text, lit.position, f"the regular expression {_quote(pattern)} uses {feature}, "
                                             "which RE2 (Cloud Logging's regex engine) does not support")
    if "\\Z" in outside_classes:
        raise _error(text, lit.position, f"the regular expression {_quote(pattern)} uses \\Z, which RE2 "
                                         "does not support (use \\z or $)")
    pieces, i = [], 0
    while i < len(pattern):
        if outside_classes.startswith("\\z", i):
            pieces.append("\\Z")
            i += 2
        else:
            pieces.append(pattern[i])
            i += 1
    translated = "".join(pieces)
    try:
        return re.compile(translated)
    except (re.error, OverflowError, RecursionError, ValueError) as exc:
        raise _error(text, lit.position, f"the regular expression {_quote(pattern)} is not valid: {exc}") from None


def _mask_regex_literals(pattern: str) -> str:
    """The pattern with escaped characters after '\\' and character-class bodies blanked to '_',
    so the RE2 checks only see real syntax. Same length as the pattern."""
    out = list(pattern)
    i, in_class = 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            if in_class:
                out[i] = out[i + 1] = "_"
            elif pattern[i + 1] not in "123456789zZ":
                out[i + 1] = "_"
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
            else:
                out[i] = "_"
        elif c == "[":
            in_class = True
            j = i + 1
            if pattern[j:j + 1] == "^":
                j += 1
            if pattern[j:j + 1] == "]":  # a ']' first in a class is a literal
                out[j] = "_"
                j += 1
            i = j
            continue
        i += 1
    return "".join(out)


def _log_id_predicate(log_id: str) -> Callable[[Mapping[str, Any]], bool]:
    # Google: log_id("cloudaudit.googleapis.com/activity") needs no URL escaping; logName has it.
    wanted = _fold(unquote(log_id))

    def matches_log_id(entry: Mapping[str, Any]) -> bool:
        log_name = entry.get("logName") if isinstance(entry, Mapping) else None
        if not isinstance(log_name, str):
            return False
        _, found, encoded = log_name.rpartition("/logs/")
        return bool(found) and _fold(unquote(encoded)) == wanted
    return matches_log_id


# --------------------------------------------------------------------------------------------
# Field resolution


def _resolver(path: tuple[str, ...], default: Any) -> Callable[[Mapping[str, Any]], Leaves]:
    """Compile a path into a function entry -> the values it reaches (arrays flattened).

    A missing field reaches nothing (so every comparison on it fails); a LogEntry-defined scalar
    that is absent reaches its default value, as Google's "defaulted" fields do."""
    steps: list[tuple[str, str | None]] = []
    fold = False
    for index, segment in enumerate(path):
        steps.append((segment, segment.casefold() if fold else None))
        if index == 0:
            fold = segment == "protoPayload"
        elif fold and segment.casefold() in _AUDITLOG_STRUCT_FIELDS:
            fold = False
    frozen_steps = tuple(steps)
    missing: Leaves = [] if default is None else [default]

    def resolve(entry: Mapping[str, Any]) -> Leaves:
        node: Any = entry
        for index, (key, folded) in enumerate(frozen_steps):
            if isinstance(node, dict):
                found = node.get(key, _ABSENT)
                if found is _ABSENT and folded is not None:
                    found = _lookup_folded(node, folded)
                if found is _ABSENT:
                    return list(missing)
                node = found
            elif isinstance(node, list):
                return _resolve_many(node, frozen_steps[index:])
            else:
                return list(missing)
        if isinstance(node, list):
            return _flatten(node)
        return [node]
    return resolve


def _lookup_folded(node: dict, folded: str) -> Any:
    for key, value in node.items():
        if isinstance(key, str) and key.casefold() == folded:
            return value
    return _ABSENT


def _flatten(items: list) -> Leaves:
    out: Leaves = []
    stack = [iter(items)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            out.append(item)
        else:
            stack.pop()
    return out


def _resolve_many(nodes: list, steps: tuple[tuple[str, str | None], ...]) -> Leaves:
    current = _flatten(nodes)
    for key, folded in steps:
        reached: Leaves = []
        for node in current:
            if not isinstance(node, dict):
                continue
            found = node.get(key, _ABSENT)
            if found is _ABSENT and folded is not None:
                found = _lookup_folded(node, folded)
            if found is _ABSENT:
                continue
            if isinstance(found, list):
                reached.extend(_flatten(found))
            else:
                reached.append(found)
        current = reached
    return current
