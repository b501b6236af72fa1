"""Every setting against values no one should run with: empty, of the wrong type, out of range, huge and
injection-like. Each is refused with one line naming the variable, the value (a secret's masked, a long one cut)
and what is accepted; none is accepted silently. (The CLI's exit status 2 for such a line is
tests/integration/test_cli_settings.py's.)"""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from app.exceptions import SettingsError
from app.settings import SECRETS, SHOWN_CHARACTERS, Settings, load_settings

HUGE = "9" * 5_000
INJECTION = ("x'; drop table users; --", "$(reboot)", "a\nb", "a\x00b", "<script>alert(1)</script>")
NUMBERS = ("abc", "nan", "inf", "-inf", "1e309", HUGE, "-" + HUGE, "0x10", "1,5", *INJECTION)
#: Values of the fields taken as unset when empty (their default: unset).
UNSET_WHEN_EMPTY = {"max_events", "random_seed", "burst_capacity"}


def _bad_values(name: str) -> tuple[str, ...]:
    """What ``name`` must refuse, by its type."""
    annotation = Settings.model_fields[name].annotation
    default = Settings.model_fields[name].default
    if annotation is bool:
        return ("maybe", "2", "truee", "-1", HUGE, *INJECTION)
    if isinstance(default, bool):
        return ("maybe",)
    if annotation in (int, float, int | None, float | None) or isinstance(default, int | float):
        return (*NUMBERS, "1.5") if annotation in (int, int | None) else NUMBERS
    if name == "data_dir":  # any path, but no control character and not without end
        return ("a\nb", "a\x00b", "x" * 2_000)
    if isinstance(default, SecretStr):
        return ("abc", "'; drop table users; --", "host=x", HUGE)
    return (HUGE, " ", *INJECTION)


CASES = [(name, value) for name in Settings.model_fields for value in _bad_values(name)]


@pytest.mark.parametrize(("name", "value"), CASES, ids=[f"{name}-{index}" for index, (name, _) in enumerate(CASES)])
def test_every_bad_value_is_refused_in_one_line(name: str, value: str) -> None:
    variable = name.upper()
    with pytest.raises(SettingsError) as refused:
        load_settings({variable: value})
    message = str(refused.value)
    assert refused.value.variable == variable
    assert "\n" not in message
    assert "\x00" not in message
    assert message.startswith(f"invalid setting {variable}=")
    assert "expected" in message
    assert len(message) < 600, message
    if name in SECRETS:
        assert f"{variable}='<hidden>'" in message
    elif len(value) > SHOWN_CHARACTERS:
        assert "more characters" in message


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_an_empty_value_is_the_default(name: str) -> None:
    settings = load_settings({name.upper(): ""})
    assert getattr(settings, name) == Settings.model_fields[name].default or name in UNSET_WHEN_EMPTY


def test_a_secret_in_a_refused_value_is_masked() -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({"PG_DSN": "host=db user=admin password=hunter2"})  # no dbname
    assert "hunter2" not in str(refused.value)
    with pytest.raises(SettingsError) as refused:
        load_settings({"SCHEMA_REGISTRY_URL": "http://user:hunter2@registry:8081/a b"})
    assert "hunter2" not in str(refused.value)
    # Set where nothing uses them, and a user name with a space.
    for variable, value in (
        ("KAFKA_SASL_PASSWORD", "hunter2"),
        ("KAFKA_SSL_KEY_PASSWORD", "hunter2"),
        ("SCHEMA_REGISTRY_BASIC_AUTH", "us er:hunter2"),
    ):
        with pytest.raises(SettingsError) as refused:
            load_settings({variable: value})
        assert "hunter2" not in str(refused.value)
        assert variable in str(refused.value)
