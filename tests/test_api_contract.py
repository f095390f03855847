"""The gateway's HTTP surface: documented, guarded, and fuzzed without a 5xx.

The OpenAPI document (bot/gateway/openapi.yml, served at /openapi.json) must list every route
the app really has; every route it does not mark public must refuse an anonymous
request; and property-based requests built from its schemas never crash the gateway.
"""
import json
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis_jsonschema import from_schema

from bot.gateway.app import create_app, openapi_document
from bot.settings import Settings

METHODS = {"get", "post", "put", "patch", "delete"}


def spec_operations():
    for path, item in openapi_document()["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, op


def app_routes():
    app = create_app(Settings())
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix")
        if route.method != "HEAD" and path:
            yield path, route.method.lower()


def test_every_route_is_documented_and_every_documented_route_exists():
    documented = {(p, m) for p, m, _ in spec_operations()}
    real = set(app_routes())
    assert real - documented == set(), "routes missing from bot/gateway/openapi.yml"
    assert documented - real == set(), "documented routes the app does not have"


def request(url, method="GET", body=None, headers=None):
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method.upper(),
                                 headers={"Content-Type": "application/json", **(headers or {})})
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


@pytest.mark.e2e
def test_protected_routes_refuse_anonymous_requests(assistant):
    protected = [(p, m) for p, m, op in spec_operations() if not op.get("x-kefu-public")]
    for path, method in protected:
        status, _ = request(assistant.url + concrete(path), method, {} if method != "get" else None)
        assert status in (401, 403, 302, 303), f"{method.upper()} {path} answered {status} anonymously"


def _strategy_for(op):
    params = op.get("parameters", [])
    query = {p["name"]: p["schema"] for p in params if p["in"] == "query"}
    required = [p["name"] for p in params if p["in"] == "query" and p.get("required")]
    query_st = from_schema({"type": "object", "properties": query, "required": required,
                            "additionalProperties": False}) if query else st.just({})
    body = (op.get("requestBody") or {}).get("content", {}).get("application/json", {}).get("schema")
    body_st = st.one_of(from_schema(body), st.binary(max_size=200)) if body else st.none()
    return st.tuples(query_st, body_st)


FUZZED = [(p, m, op) for p, m, op in spec_operations() if p != "/"]


@pytest.mark.e2e
@pytest.mark.parametrize("path,method,op", FUZZED, ids=[f"{m} {p}" for p, m, _ in FUZZED])
def test_fuzzed_requests_never_get_a_5xx(assistant, path, method, op):
    documented = {int(code) for code in op["responses"]}

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(_strategy_for(op))
    def check(case):
        query, body = case
        qs = urllib.parse.urlencode({k: str(v) for k, v in query.items()})
        url = assistant.url + concrete(path) + (f"?{qs}" if qs else "")
        status, _ = request(url, method, body if method != "get" else None)
        assert status < 500, f"{method.upper()} {url} → {status}"
        if op.get("x-kefu-public"):
            assert status in documented, f"{method.upper()} {url} → undocumented {status}"

    check()
