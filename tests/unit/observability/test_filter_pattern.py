"""CloudWatch Logs filter patterns: terms, phrases, exclusions, alternatives, JSON, regex."""

from __future__ import annotations

import pytest

from lamina.errors import InvalidParameter
from lamina.observability.filter_pattern import InvalidFilterPattern, compile_pattern


def matches(pattern: str, message: str) -> bool:
    return compile_pattern(pattern).matches(message)


@pytest.mark.parametrize(
    ("pattern", "message", "expected"),
    [
        ("", "anything", True),
        ("   ", "anything", True),
        ("ERROR", "[ERROR] boom", True),
        ("ERROR", "[error] boom", False),  # case-sensitive
        ("ERROR", "ERRORS happen", True),  # a substring
        ("ERROR timeout", "timeout then ERROR", True),  # every term, any order
        ("ERROR timeout", "ERROR only", False),
        ('"Failed to connect"', "x Failed to connect y", True),
        ('"Failed to connect"', "Failed to  connect", False),
        ('"say \\"hi\\""', 'they say "hi"', True),
        ("ERROR -retrying", "ERROR fatal", True),
        ("ERROR -retrying", "ERROR retrying", False),
        ("?ERROR ?WARN", "a WARN b", True),
        ("?ERROR ?WARN", "INFO", False),
        ("?ERROR ?WARN", "ERROR", True),
        ("%ERR(OR)?%", "ERR x", True),
        ("%^START%", "x START", False),
    ],
)
def test_terms(pattern: str, message: str, expected: bool) -> None:
    assert matches(pattern, message) is expected


@pytest.mark.parametrize(
    ("pattern", "message", "expected"),
    [
        ('{ $.level = "ERROR" }', '{"level": "ERROR", "n": 1}', True),
        ('{ $.level = "ERROR" }', '{"level": "INFO"}', False),
        ('{ $.level = "ERROR" }', "level ERROR, not JSON", False),
        ("{ $.level = ERROR }", '{"level": "ERROR"}', True),
        ('{ $.level != "ERROR" }', '{"level": "INFO"}', True),
        ('{ $.level = "ERR*" }', '{"level": "ERROR"}', True),
        ('{ $.level = "*RR*" }', '{"level": "ERROR"}', True),
        ('{ $.level = "ERR*" }', '{"level": "WARN"}', False),
        ("{ $.latency > 100 }", '{"latency": 150}', True),
        ("{ $.latency > 100 }", '{"latency": 50}', False),
        ("{ $.latency > 100 }", '{"latency": "150"}', False),  # a string is not a number
        ("{ $.latency >= 1.5e2 }", '{"latency": 150}', True),
        ("{ $.latency <= 10 }", '{"latency": 10.0}', True),
        ("{ $.latency < -1 }", '{"latency": -2}', True),
        ("{ $.code = 200 }", '{"code": 200}', True),
        ("{ $.code != 200 }", '{"code": 500}', True),
        ("{ $.a.b[1].c = 3 }", '{"a": {"b": [{"c": 1}, {"c": 3}]}}', True),
        ("{ $.a.b[5].c = 3 }", '{"a": {"b": []}}', False),
        ('{ $.x = 1 && $.y = "z" }', '{"x": 1, "y": "z"}', True),
        ('{ $.x = 1 && $.y = "z" }', '{"x": 1, "y": "w"}', False),
        ('{ $.x = 1 || $.y = "z" }', '{"x": 2, "y": "z"}', True),
        ("{ ($.x = 1 || $.x = 2) && $.ok IS TRUE }", '{"x": 2, "ok": true}', True),
        ("{ ($.x = 1 || $.x = 2) && $.ok IS TRUE }", '{"x": 2, "ok": false}', False),
        ("{ $.ok IS FALSE }", '{"ok": false}', True),
        ("{ $.gone IS NULL }", '{"gone": null}', True),
        ("{ $.gone NOT EXISTS }", '{"other": 1}', True),
        ("{ $.gone NOT EXISTS }", '{"gone": 1}', False),
        ("{ $.here EXISTS }", '{"here": 0}', True),
        ("{ $.level = 1 }", "[1, 2]", False),  # only objects
    ],
)
def test_json(pattern: str, message: str, expected: bool) -> None:
    assert matches(pattern, message) is expected


@pytest.mark.parametrize(
    "pattern",
    [
        '"unterminated',
        "ERROR -",
        "?",
        "{ $.level = }",
        '{ $.level = "x"',
        '{ level = "x" }',
        '{ $.level > "x" }',
        "{ $.x = 1 } trailing",
        "{ $.x IS MAYBE }",
        "%[%",
        "[ip, user]",
    ],
)
def test_invalid_patterns_raise(pattern: str) -> None:
    with pytest.raises(InvalidFilterPattern) as raised:
        compile_pattern(pattern)
    assert isinstance(raised.value, InvalidParameter)  # AWS: InvalidParameterException


def test_prefilter_literals() -> None:
    assert compile_pattern("ERROR timeout").prefilter == ("timeout",)  # the longest term
    assert compile_pattern("?ERROR ?WARN").prefilter == ("ERROR", "WARN")
    assert compile_pattern("-noise").prefilter == ()
    assert compile_pattern('{ $.level = "ERROR" }').prefilter == ("ERROR",)
    assert compile_pattern('{ $.level = "ERR*" }').prefilter == ("{",)
    assert compile_pattern("").prefilter == ()
