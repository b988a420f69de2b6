"""CloudWatch Logs filter patterns: what FilterLogEvents' `filterPattern` selects.

Supported (AWS "Filter pattern syntax for metric filters, subscription filters, filter log
events and Live Tail"):

* ``""`` matches every event.
* Terms: ``ERROR timeout`` matches events containing every term (case-sensitive substrings, in
  any order); ``"Failed to connect"`` is one term with its spaces; ``-term`` excludes events
  containing it; ``?ERROR ?WARN`` matches events containing at least one of the ``?`` terms.
* JSON: ``{ $.level = "ERROR" }``, ``{ $.latency > 100 }``, ``!=``, ``<``, ``<=``, ``>=``,
  ``&&``, ``||``, parentheses, ``$.a.b[0].c`` selectors, ``*`` wildcards in string values,
  ``IS TRUE`` / ``IS FALSE`` / ``IS NULL``, ``EXISTS`` / ``NOT EXISTS``. Only events whose
  message is a JSON object can match.
* Regular expressions: ``%ERROR|WARN%`` (AWS's regex terms; Python's `re` syntax here).

Space-delimited patterns (``[ip, user, ...]``) are refused as invalid (not implemented).

A parsed pattern also offers `prefilter`: literals at least one of which every matching
message contains, so that a scan can skip non-candidates at memchr speed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from lamina.errors import InvalidParameter


class InvalidFilterPattern(InvalidParameter):
    """The filter pattern cannot be parsed (AWS: InvalidParameterException)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"Invalid filter pattern: {reason}")


@dataclass(frozen=True, slots=True)
class Pattern:
    """A compiled filter pattern."""

    text: str
    matches: Callable[[str], bool]
    # Every matching message contains at least one of these (empty: no such guarantee).
    prefilter: tuple[str, ...] = ()

    @property
    def matches_all(self) -> bool:
        return not self.text.strip()


def compile_pattern(text: str) -> Pattern:
    """Parse `text`; raises InvalidFilterPattern."""
    stripped = text.strip()
    if not stripped:
        return Pattern(text, lambda message: True)
    if stripped.startswith("{"):
        return _json_pattern(text, stripped)
    if stripped.startswith("["):
        raise InvalidFilterPattern("space-delimited patterns are not supported by Lamina")
    if len(stripped) >= 2 and stripped.startswith("%") and stripped.endswith("%"):
        return _regex_pattern(text, stripped[1:-1])
    return _term_pattern(text, stripped)


# --- terms ---------------------------------------------------------------------------------------


def _split_terms(text: str) -> list[tuple[str, str]]:
    """(operator, term) pairs: operator is '' (required), '-' (excluded) or '?' (optional)."""
    terms: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        operator = ""
        if text[i] in "-?":
            operator = text[i]
            i += 1
        if i < n and text[i] == '"':
            term, i = _quoted(text, i)
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] != '"':
                i += 1
            term = text[start:i]
        if not term:
            raise InvalidFilterPattern(f"empty term after '{operator}'" if operator else "empty")
        terms.append((operator, term))
    return terms


def _quoted(text: str, i: int) -> tuple[str, int]:
    """The string starting at the quote text[i], unescaped, and the index after its end."""
    out: list[str] = []
    i += 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if char == '"':
            return "".join(out), i + 1
        out.append(char)
        i += 1
    raise InvalidFilterPattern("unterminated quoted string")


def _term_pattern(text: str, stripped: str) -> Pattern:
    terms = _split_terms(stripped)
    required = tuple(t for op, t in terms if op == "")
    excluded = tuple(t for op, t in terms if op == "-")
    optional = tuple(t for op, t in terms if op == "?")

    def matches(message: str) -> bool:
        return (
            all(t in message for t in required)
            and not any(t in message for t in excluded)
            and (not optional or any(t in message for t in optional))
        )

    if required:
        prefilter: tuple[str, ...] = (max(required, key=len),)
    else:
        prefilter = optional
    return Pattern(text, matches, prefilter)


def _regex_pattern(text: str, regex: str) -> Pattern:
    try:
        compiled = re.compile(regex)
    except re.error as error:
        raise InvalidFilterPattern(f"bad regular expression: {error}") from None
    return Pattern(text, lambda message: compiled.search(message) is not None)


# --- JSON ----------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<op>&&|\|\||!=|<=|>=|=|<|>|\(|\)|\{|\})
      | (?P<selector>\$(?:\.[A-Za-z0-9_@\-]+|\[\d+\])*)
      | (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![A-Za-z0-9_*]))
      | (?P<word>[^\s(){}&|=!<>"]+)
    )""",
    re.VERBOSE,
)
_MISSING = object()
Predicate = Callable[[Any], bool]


@dataclass
class _Tokens:
    items: list[tuple[str, str]]
    at: int = 0

    def peek(self) -> tuple[str, str] | None:
        return self.items[self.at] if self.at < len(self.items) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise InvalidFilterPattern("unexpected end of the pattern")
        self.at += 1
        return token

    def expect(self, value: str) -> None:
        kind, got = self.take()
        if got != value or kind == "string":
            raise InvalidFilterPattern(f"expected '{value}' but found '{got}'")


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    i = 0
    while i < len(text):
        match = _TOKEN.match(text, i)
        if match is None or match.end() == i:
            if text[i:].strip() == "":
                break
            raise InvalidFilterPattern(f"unexpected character at '{text[i : i + 20]}'")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        i = match.end()
    return tokens


def _json_pattern(text: str, stripped: str) -> Pattern:
    tokens = _Tokens(_tokenize(stripped))
    tokens.expect("{")
    predicate, literals = _parse_or(tokens)
    tokens.expect("}")
    if tokens.peek() is not None:
        raise InvalidFilterPattern(f"unexpected '{tokens.take()[1]}' after the closing brace")

    def matches(message: str) -> bool:
        if not message.lstrip().startswith("{"):
            return False
        try:
            document = orjson.loads(message)
        except orjson.JSONDecodeError:
            return False
        return isinstance(document, dict) and predicate(document)

    return Pattern(text, matches, literals or ("{",))


# Each parse step returns the predicate and the literals one of which a match must contain
# (empty: nothing known).


def _parse_or(tokens: _Tokens) -> tuple[Predicate, tuple[str, ...]]:
    parts = [_parse_and(tokens)]
    while tokens.peek() == ("op", "||"):
        tokens.take()
        parts.append(_parse_and(tokens))
    if len(parts) == 1:
        return parts[0]
    predicates = [p for p, _ in parts]
    literals: tuple[str, ...] = ()
    if all(lits for _, lits in parts):
        literals = tuple(lit for _, lits in parts for lit in lits)
    return (lambda doc: any(p(doc) for p in predicates)), literals


def _parse_and(tokens: _Tokens) -> tuple[Predicate, tuple[str, ...]]:
    parts = [_parse_unary(tokens)]
    while tokens.peek() == ("op", "&&"):
        tokens.take()
        parts.append(_parse_unary(tokens))
    if len(parts) == 1:
        return parts[0]
    predicates = [p for p, _ in parts]
    known = [lits for _, lits in parts if lits]
    literals = min(known, key=len) if known else ()
    return (lambda doc: all(p(doc) for p in predicates)), literals


def _parse_unary(tokens: _Tokens) -> tuple[Predicate, tuple[str, ...]]:
    if tokens.peek() == ("op", "("):
        tokens.take()
        inner = _parse_or(tokens)
        tokens.expect(")")
        return inner
    kind, selector = tokens.take()
    if kind != "selector":
        raise InvalidFilterPattern(f"expected a selector like $.field but found '{selector}'")
    path = _selector_path(selector)
    kind, operator = tokens.take()
    if kind == "word":
        return _keyword_condition(tokens, path, operator), ()
    if kind != "op" or operator not in ("=", "!=", "<", ">", "<=", ">="):
        raise InvalidFilterPattern(f"expected a comparison after {selector}")
    return _comparison(path, operator, tokens.take())


def _keyword_condition(tokens: _Tokens, path: list[str | int], word: str) -> Predicate:
    keyword = word.upper()
    if keyword == "EXISTS":
        return lambda doc: _lookup(doc, path) is not _MISSING
    if keyword == "NOT":
        if tokens.take()[1].upper() != "EXISTS":
            raise InvalidFilterPattern("expected EXISTS after NOT")
        return lambda doc: _lookup(doc, path) is _MISSING
    if keyword != "IS":
        raise InvalidFilterPattern(f"unexpected '{word}'")
    value = tokens.take()[1].upper()
    wanted: dict[str, object] = {"TRUE": True, "FALSE": False, "NULL": None}
    if value not in wanted:
        raise InvalidFilterPattern("IS must be followed by TRUE, FALSE or NULL")
    target = wanted[value]
    return lambda doc: _lookup(doc, path) is target


def _comparison(
    path: list[str | int], operator: str, operand: tuple[str, str]
) -> tuple[Predicate, tuple[str, ...]]:
    kind, raw = operand
    if kind == "number":
        number = float(raw)
        compare = _NUMERIC[operator]

        def numeric(doc: Any) -> bool:
            value = _lookup(doc, path)
            is_number = isinstance(value, int | float) and not isinstance(value, bool)
            return is_number and compare(float(value), number)

        return numeric, ()
    if kind not in ("string", "word"):
        raise InvalidFilterPattern(f"expected a value after '{operator}'")
    if operator not in ("=", "!="):
        raise InvalidFilterPattern(f"'{operator}' compares numbers only")
    text = _quoted(raw, 0)[0] if kind == "string" else raw
    equal = _string_matcher(text)
    if operator == "!=":
        return (lambda doc: not equal(_lookup(doc, path))), ()
    literals = (text,) if "*" not in text and text.isascii() and '"' not in text else ()
    return (lambda doc: equal(_lookup(doc, path))), literals


def _string_matcher(text: str) -> Predicate:
    if "*" in text:
        regex = re.compile(".*".join(re.escape(part) for part in text.split("*")), re.DOTALL)
        return lambda value: isinstance(value, str) and regex.fullmatch(value) is not None
    return lambda value: isinstance(value, str) and value == text


_NUMERIC: dict[str, Callable[[float, float], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


def _selector_path(selector: str) -> list[str | int]:
    return [
        match.group(1) if match.group(1) is not None else int(match.group(2))
        for match in re.finditer(r"\.([A-Za-z0-9_@\-]+)|\[(\d+)\]", selector)
    ]


def _lookup(document: Any, path: list[str | int]) -> Any:
    value = document
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                return _MISSING
            value = value[step]
        else:
            if not isinstance(value, dict) or step not in value:
                return _MISSING
            value = value[step]
    return value
