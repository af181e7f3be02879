"""flows/validation.py and flows/checks.py: normalising, every failure at once, messages."""
from __future__ import annotations

from datetime import date

import pytest

from validation.checks import (date_within, decimal, email, integer, length, luhn, one_of, pattern, phone,
                          required)
from validation.forms import Field, Form, no_spaces, phone_chars, upper

SIGNUP = Form(
    Field("code", required(), pattern(r"[A-Z]{3}\d{2}"), normalise=[no_spaces, upper], echo=True),
    Field("email", required(), email()),
    Field("phone", phone(), normalise=[phone_chars]),  # optional
    Field("age", integer(min=18, max=120)),
    Field("plan", one_of(["basic", "pro"])),
    Field("nick", length(min=3, max=8), lambda v: "That name is taken" if v == "admin" else None),
)


def test_values_are_normalised_and_carried_forward():
    result = SIGNUP.validate({"code": " abc 12 ", "email": "a@b.io", "phone": "+1 (415) 555-0100",
                              "age": "42", "plan": "pro", "nick": "ana"})
    assert result.ok and result.snackbar is None
    assert result.values == {"code": "ABC12", "email": "a@b.io", "phone": "+14155550100", "age": 42,
                             "plan": "pro", "nick": "ana"}
    assert result.error_data()["code_value"] == "ABC12"


def test_every_failing_field_is_reported_at_once():
    result = SIGNUP.validate({"code": "", "email": "x@", "phone": "12", "age": "7", "plan": "gold",
                              "nick": "admin"})
    assert result.errors == {
        "code": "This field is required", "email": "Enter an email address like name@example.com",
        "phone": "Enter the number with its country code, like +14155550100", "age": "The minimum is 18",
        "plan": "Choose one of the options", "nick": "That name is taken",
    }
    assert result.snackbar == "Please fix the 6 highlighted fields."
    screen = result.screen("SIGNUP").to_json()
    assert screen["data"]["nick_error"] == "That name is taken"
    assert screen["data"]["error_message"] == "Please fix the 6 highlighted fields."


def test_one_failure_is_its_own_snackbar_and_passing_fields_get_empty_errors():
    result = SIGNUP.validate({"code": "ABC12", "email": "bad"})
    assert result.snackbar == "Enter an email address like name@example.com"
    assert result.error_data()["code_error"] == "" and result.error_data()["age_error"] == ""


def test_messages_per_check_and_per_locale():
    form = Form(Field("zip", required(), pattern(r"\d{5}"),
                      messages={"pattern": "Five digits, please"},
                      translations={"es": {"pattern": "Cinco cifras, por favor"}}))
    assert form.validate({"zip": "12"}).errors["zip"] == "Five digits, please"
    assert form.validate({"zip": "12"}, locale="es").errors["zip"] == "Cinco cifras, por favor"
    assert form.validate({}, locale="es").errors["zip"] == "Este campo es obligatorio"


def test_a_check_can_be_reworded_on_the_spot():
    form = Form(Field("zip", required().says("Tell us your ZIP", es="Dinos tu código postal"),
                      pattern(r"\d{5}")))
    assert form.validate({}).errors["zip"] == "Tell us your ZIP"
    assert form.validate({}, locale="es").errors["zip"] == "Dinos tu código postal"
    assert form.validate({"zip": "1"}).errors["zip"] == "This doesn't look right"


@pytest.mark.parametrize("raw", [["a"], {"a": 1}, True, "x" * 5000])
def test_hostile_values_are_field_errors_not_exceptions(raw):
    result = SIGNUP.validate({"code": raw, "email": "a@b.io"})
    assert set(result.errors) == {"code"}


def test_data_that_is_not_an_object_fails_every_required_field():
    assert set(SIGNUP.validate(["not", "a", "dict"]).errors) == {"code", "email"}


def test_neutral_values_are_never_null():
    assert SIGNUP.neutral({"code": "ABC12"}) == {
        "code_error": "", "email_error": "", "phone_error": "", "age_error": "", "plan_error": "",
        "nick_error": "", "code_value": "ABC12"}


@pytest.mark.parametrize("check, good, bad", [
    (luhn(), "4539 1488 0343 6467", "4539 1488 0343 6468"),
    (decimal(min=0, max=100), "12,5", "100.01"),
    (email(), "name@example.com", "name@example"),
    (phone(), "+442079460958", "02079460958"),
])
def test_builtin_checks(check, good, bad):
    form = Form(Field("v", required(), check, normalise=[no_spaces]))
    assert form.validate({"v": good}).ok
    assert not form.validate({"v": bad}).ok


def test_decimal_is_carried_as_a_quantised_string():
    assert Form(Field("v", decimal(places=2))).validate({"v": "12,5"}).values["v"] == "12.50"


def test_date_window():
    today = lambda: date(2030, 1, 10)  # noqa: E731
    form = Form(Field("d", required(), date_within(0, 30, today=today)))
    assert form.validate({"d": "2030-01-10"}).ok and form.validate({"d": "2030-02-09"}).ok
    assert form.validate({"d": "2030-02-10"}).errors["d"] == "Pick a date between 2030-01-10 and 2030-02-09"
    assert form.validate({"d": "20300110"}).errors["d"] == "Pick a date"
