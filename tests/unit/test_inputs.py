"""Unit tests of app/inputs.py: bodies into plain values, every failure a 400 invalid_request."""

from __future__ import annotations

from typing import Any

import pytest
from sanic import Request, Sanic
from sanic.compat import Header

from app.errors import InvalidRequest
from app.inputs import is_storable, read_json, read_params, required_string, string

_app = Sanic("inputs_unit_test")


def request(body: bytes, content_type: str | None = "application/json") -> Request:
    """A real sanic Request holding `body`, as the server builds one."""
    headers = Header({"content-type": content_type} if content_type else {})
    made = Request(b"/auth/token", headers, "1.1", "POST", None, _app)
    made.body = body
    return made


def refused(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(InvalidRequest) as caught:
        call(*args, **kwargs)
    assert caught.value.status == 400 and caught.value.error == "invalid_request"
    return caught.value.error_description


def test_read_json_reads_an_object() -> None:
    assert read_json(request(b'{"a": 1, "b": {"c": [1]}}')) == {"a": 1, "b": {"c": [1]}}


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_read_json_ignores_the_content_type(content_type: str | None) -> None:
    # curl -d sends a form type with a JSON body
    assert read_json(request(b'{"a": "b"}', content_type)) == {"a": "b"}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"", "empty"),
        (b"{", "not a valid JSON"),
        (b"\xff\xfe", "not a valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b"null", "must be a JSON object"),
        (b"[" * 100_000, "not a valid JSON"),
    ],
)
def test_read_json_refuses(body: bytes, says: str) -> None:
    assert says in refused(read_json, request(body))


FORM = "application/x-www-form-urlencoded"


def test_read_params_reads_a_form() -> None:
    body = b"grant_type=password&username=al%20ice&password=a+b&scope="
    assert read_params(request(body, FORM)) == {
        "grant_type": "password",
        "username": "al ice",
        "password": "a b",
        "scope": "",
    }


def test_read_params_with_a_charset_parameter() -> None:
    body = b"token=abc"
    assert read_params(request(body, "Application/X-WWW-Form-URLEncoded; charset=UTF-8")) == {
        "token": "abc"
    }


@pytest.mark.parametrize("content_type", ["application/json", None])
def test_read_params_reads_json_otherwise(content_type: str | None) -> None:
    assert read_params(request(b'{"token": "abc"}', content_type)) == {"token": "abc"}


def test_read_params_reads_json_sent_as_a_form() -> None:
    assert read_params(request(b'  {"token": "abc"}', FORM)) == {"token": "abc"}


def test_read_params_refuses_a_repeated_parameter() -> None:
    assert "repeated" in refused(read_params, request(b"token=a&token=b", FORM))


def test_read_params_refuses_a_form_that_is_not_utf8() -> None:
    assert "UTF-8" in refused(read_params, request(b"token=\xff", FORM))


# -- fields ---------------------------------------------------------------------------------


def test_string_returns_the_value() -> None:
    assert string({"a": "x"}, "a") == "x"
    assert required_string({"a": "x"}, "a") == "x"


@pytest.mark.parametrize("body", [{}, {"a": None}])
def test_a_missing_optional_string_is_none(body: dict[str, Any]) -> None:
    assert string(body, "a", required=False) is None


@pytest.mark.parametrize("body", [{}, {"a": None}])
def test_a_missing_required_string_is_refused(body: dict[str, Any]) -> None:
    assert "required" in refused(required_string, body, "a")


@pytest.mark.parametrize("value", [1, 1.5, True, ["x"], {"x": 1}])
def test_a_string_of_another_type_is_refused(value: Any) -> None:
    assert "must be a string" in refused(string, {"a": value}, "a")


def test_empty_strings() -> None:
    assert "must not be empty" in refused(required_string, {"a": ""}, "a")
    assert string({"a": ""}, "a", allow_empty=True) == ""
    assert string({"a": ""}, "a", required=False) == ""


def test_max_length_counts_characters() -> None:
    assert string({"a": "é" * 5}, "a", max_length=5) == "é" * 5
    assert "longer than 5" in refused(string, {"a": "x" * 6}, "a", max_length=5)


@pytest.mark.parametrize("value", ["a\x00b", "\ud800", "x\udfff"])
def test_text_that_cannot_be_stored_is_refused(value: str) -> None:
    assert not is_storable(value)
    assert "NUL or an unpaired surrogate" in refused(string, {"a": value}, "a")


@pytest.mark.parametrize("value", ["plain", "ünïcödé", "😀", "tab\tnew\nline"])
def test_ordinary_text_is_storable(value: str) -> None:
    assert is_storable(value)
