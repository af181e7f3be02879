"""Hostile input on the API routes, by hypothesis, over real HTTP to a live server on loopback.

Query parameters are whole numbers in ASCII digits within bounds, or a 400 that names the
parameter (``"²".isdigit()`` is true, ``int("²")`` raises: that was a 500); JSON bodies nested
too deep, of the wrong type or with strings that are not Unicode get a 400 naming the part, on
every JSON route (deep nesting used to escape ``get_json(silent=True)`` as a RecursionError).
Never a 500 and never a traceback. ``HYPOTHESIS_PROFILE=chaos`` runs 10,000 cases per property.
"""
from __future__ import annotations

import base64
import json
import string

import pytest
import redis as redis_lib
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import create_app
from blueprints.params import MAX_JSON_DEPTH
from conftest import APP_SECRET, LiveServer, served_settings

API_TOKEN = "api-token-input-3c"
PASSWORD = "dash-pass-input-9"
BEARER = {"Authorization": f"Bearer {API_TOKEN}"}
BASIC = {"Authorization": "Basic " + base64.b64encode(f"ops:{PASSWORD}".encode()).decode()}
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                     HealthCheck.too_slow])


@pytest.fixture(scope="module")
def api(redis_server, keypair, tmp_path_factory):
    """The app behind a real HTTP server, and a keep-alive client session for thousands of cases.
    Its Redis starts empty, whatever a module before it left (the counts below start at 0)."""
    redis_lib.Redis.from_url(redis_server.url).flushall()
    app = create_app({"APP_ENV": "production", "REDIS_URL": redis_server.url,
                      "INSTANCE_DIR": str(tmp_path_factory.mktemp("instance")),
                      "FLOW_PRIVATE_KEY": keypair[0], "WHATSAPP_APP_SECRET": APP_SECRET,
                      "API_TOKEN": API_TOKEN, "DASHBOARD_PASSWORD": PASSWORD,
                      **served_settings(DEMO_FLOWS=True)})
    with LiveServer(app) as server, requests.Session() as http:
        yield Api(server.url, http)


class Api:
    def __init__(self, base: str, http: requests.Session):
        self.base, self.http = base, http

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        resp = self.http.request(method, self.base + path, timeout=30, allow_redirects=False, **kwargs)
        assert resp.status_code != 500, resp.text[:300]
        assert "Traceback" not in resp.text
        return resp

    def send(self, body: bytes, flow: str = "member_check") -> requests.Response:
        return self.call("POST", f"/api/flows/{flow}/send", data=body,
                         headers={**BEARER, "Content-Type": "application/json"})


def bad_parameter(resp, name: str) -> bool:
    return (resp.status_code == 400 and resp.json().get("parameter") == name
            and name in resp.json()["description"])


# --- query parameters ----------------------------------------------------------------------------

def strict_int(raw: str, low: int, high: int) -> bool:
    """The oracle: ASCII digits only, and in bounds (leading zeros are harmless)."""
    if raw == "" or any(c not in string.digits for c in raw):
        return False
    significant = raw.lstrip("0") or "0"
    return len(significant) < 20 and low <= int(significant) <= high


numbers_as_text = st.one_of(
    st.integers(min_value=-10**30, max_value=10**30).map(str),
    st.integers(min_value=1, max_value=500).map(lambda n: f" {n}"),  # padded
    st.integers(min_value=1, max_value=500).map(lambda n: f"+{n}"),
    st.integers(min_value=1, max_value=99).map(lambda n: f"{n}.0"),
    st.text(st.characters(categories=["Nd", "No", "Nl"]), min_size=1, max_size=6),  # ², ٣, Ⅻ, ¼
    st.sampled_from(["²", "٣", "1_0", "0x10", "1e2", "", "9" * 5000, "0", "00050", "٥٠"]),
    st.text(max_size=20),
)


def test_unicode_digit_limit_is_a_400_naming_the_parameter(api):
    resp = api.call("GET", "/api/submissions", params={"limit": "²"}, headers=BEARER)
    assert bad_parameter(resp, "limit")
    assert api.call("GET", "/api/submissions", params={"limit": "3"}, headers=BEARER).json()["count"] == 0


@settings(**SETTINGS)
@given(raw=numbers_as_text)
def test_submissions_limit_is_strict(api, raw):
    resp = api.call("GET", "/api/submissions", params={"limit": raw}, headers=BEARER)
    if strict_int(raw, 1, 500):
        assert resp.status_code == 200 and "submissions" in resp.json()
    else:
        assert bad_parameter(resp, "limit"), (raw, resp.status_code, resp.text[:200])


@settings(**SETTINGS)
@given(raw=numbers_as_text)
def test_dashboard_days_is_strict(api, raw):
    resp = api.call("GET", "/dashboard/metrics.json", params={"days": raw}, headers=BASIC)
    if strict_int(raw, 1, 35):
        assert resp.status_code == 200
    else:
        assert bad_parameter(resp, "days"), (raw, resp.status_code, resp.text[:200])


GET_ROUTES = ("/api/submissions", "/api/submissions/x", "/dashboard", "/dashboard/metrics.json", "/metrics",
              "/health", "/media/0123456789abcdef0123456789abcdef", "/webhooks/whatsapp", "/demo-api/members",
              "/demo-api/calendar", "/dashboard/login")
param_names = st.sampled_from(["limit", "days", "exp", "sig", "key", "next", "hub.mode", "hub.challenge",
                               "hub.verify_token", "requeued", "missing"]) | st.text(max_size=8)


@settings(**SETTINGS)
@given(path=st.sampled_from(GET_ROUTES), query=st.lists(st.tuples(param_names, numbers_as_text), max_size=4))
def test_any_query_on_any_get_route_is_never_a_500(api, path, query):
    headers = BASIC if path.startswith(("/dashboard", "/metrics")) else BEARER
    assert api.call("GET", path, params=query, headers=headers).status_code < 500


@settings(**SETTINGS)
@given(sid=st.text(min_size=1, max_size=200).filter(lambda s: s not in (".", "..")))
def test_any_submission_id_is_a_clean_404(api, sid):
    resp = api.call("GET", "/api/submissions/" + requests.utils.quote(sid, safe=""), headers=BEARER)
    assert resp.status_code in (404, 308), resp.text[:200]  # 308: werkzeug's own slash redirect


# --- JSON bodies --------------------------------------------------------------------------------

def nested(depth: int, opener: str) -> str:
    closer = {"[": "]", "{\"a\":": "}"}[opener]
    return opener * depth + "1" + closer * depth


def test_deep_json_is_a_400_not_a_500(api):
    resp = api.send(nested(100_000, "[").encode())
    assert bad_parameter(resp, "body")
    inner = json.dumps({"to": "+15550001234", "data": "@"}).replace('"@"', nested(50_000, "[")).encode()
    assert bad_parameter(api.send(inner), "body")


@settings(**SETTINGS)
@given(depth=st.integers(min_value=MAX_JSON_DEPTH, max_value=200_000),
       opener=st.sampled_from(["[", "{\"a\":"]), where=st.sampled_from(["root", "data"]))
def test_json_nested_deeper_than_the_limit_is_refused(api, depth, opener, where):
    deep = nested(depth, opener)  # depth + 1 levels with the value itself
    body = deep if where == "root" else '{"to": "+15550001234", "data": {"x": ' + deep + "}}"
    assert bad_parameter(api.send(body.encode()), "body")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (st.lists(children, max_size=3)
                      | st.dictionaries(st.text(max_size=8), children, max_size=3)),
    max_leaves=12,
)
phones = st.from_regex(r"\+?[0-9]{6,15}", fullmatch=True)


@settings(**SETTINGS)
@given(to=phones | json_values | st.text(st.characters(categories=["Nd"]), min_size=6, max_size=15),
       data=st.dictionaries(st.text(max_size=8), json_values, max_size=3) | json_values,
       extra=st.dictionaries(st.text(max_size=8), json_values, max_size=2))
def test_send_bodies_of_any_shape(api, to, data, extra):
    body = {**extra, "to": to, "data": data}
    resp = api.send(json.dumps(body).encode())
    digits = to.lstrip("+") if isinstance(to, str) else ""
    plain_number = digits.isascii() and digits.isdigit() and 6 <= len(digits) <= 15
    if not isinstance(to, str) or not to.isascii() or (to.isdigit() and not plain_number):
        assert bad_parameter(resp, "to"), (to, resp.text[:200])
    elif plain_number and not isinstance(data, dict):
        assert bad_parameter(resp, "data"), (data, resp.text[:200])
    elif plain_number:
        assert resp.status_code == 202, resp.text[:200]
    else:  # ASCII with separators: "+1 (555) 000-1234" is a number, "--" is not
        assert resp.status_code == 202 or bad_parameter(resp, "to") or bad_parameter(resp, "data")


@settings(**SETTINGS)
@given(root=json_values.filter(lambda v: not isinstance(v, dict)))
def test_a_body_that_is_not_an_object(api, root):
    assert bad_parameter(api.send(json.dumps(root).encode()), "body")


@pytest.mark.parametrize("raw", [
    b'{"to": "+15550001234", "data": {"\\ud800": 1}}',  # a lone surrogate as a key
    b'{"to": "+15550001234", "data": {"x": "\\udfff"}}',
    b'{"to": "+15550001234", "data": {"x": 1' + b"0" * 5000 + b"}}",  # past int()'s digit limit
    b"\xff\xfe not utf-8", b"", b"null", b'"text"', b"[1, 2]", b"NaN",
])
def test_bodies_python_would_half_accept(api, raw):
    assert bad_parameter(api.send(raw), "body")


def test_wrong_types_name_the_field(api):
    for body, name in (({"to": 15550001234}, "to"), ({"to": ["+15550001234"]}, "to"), ({}, "to"),
                       ({"to": "٥٥٥٠٠٠١٢٣٤"}, "to"), ({"to": "+15550001234", "data": [1]}, "data"),
                       ({"to": "+15550001234", "data": "x"}, "data"), ({"to": "+1" + "5" * 40}, "to")):
        assert bad_parameter(api.send(json.dumps(body).encode()), name), body
    assert api.send(json.dumps({"to": "+1 (555) 000-1234",
                                "data": {"member_id": "MEM123"}}).encode()).status_code == 202
