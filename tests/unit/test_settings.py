"""Settings from LAMINA_* variables: a bad value names its variable."""

from __future__ import annotations

import pytest

from lamina.settings import load_settings


@pytest.mark.parametrize(
    ("variable", "value", "detail"),
    [
        ("LAMINA_CONCURRENCY_LIMIT", "abc", "invalid literal for int()"),
        ("LAMINA_PORT", "80a", "invalid literal for int()"),
        ("LAMINA_ASYNC_DELAY_SCALE", "fast", "could not convert string to float"),
        ("LAMINA_ACCESS_KEYS", "no-separator", "is not of the form KEY_ID:SECRET"),
    ],
)
def test_a_value_that_does_not_parse_names_its_variable(
    variable: str, value: str, detail: str
) -> None:
    with pytest.raises(ValueError, match=rf"^{variable} is not valid: .*{detail}"):
        load_settings({variable: value})


def test_values_that_parse_are_used() -> None:
    settings = load_settings({"LAMINA_CONCURRENCY_LIMIT": "150", "LAMINA_PORT": "9123"})
    assert (settings.concurrency_limit, settings.port) == (150, 9123)
