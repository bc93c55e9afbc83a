"""The API's own OpenAPI schema is valid, and the API fuzzed from it never fails with a 5xx and
answers every error in the documented shape."""

from __future__ import annotations

import re
import string
from datetime import date

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate

from kb.web import create_app
from kb.web.app import ErrorBody
from tests.conftest import BACKENDS
from tests.web_support import loaded_database


@pytest.fixture(scope="module", params=BACKENDS)
def client(request, tmp_path_factory):
    for url in loaded_database(request, request.param, tmp_path_factory):
        with TestClient(create_app(url), raise_server_exceptions=False) as client:
            yield client


@pytest.fixture(scope="module")
def schema(client):
    return client.get("/openapi.json").json()


def test_the_schema_is_valid_openapi_and_documents_every_api_route(schema):
    validate(schema)
    assert set(schema["paths"]) == {
        "/api/home", "/api/search", "/api/codes/{code}", "/api/releases", "/api/diff/hcpcs", "/api/diff/hhpps",
        "/api/review/{year}", "/api/params/{on}", "/api/hipps/{code}", "/api/cbsa/{cbsa}", "/api/rules",
        "/api/agencies/{agency}/claims", "/api/agencies/{agency}/claims/{claim_pk}"}
    for path, operations in schema["paths"].items():
        responses = operations["get"]["responses"]
        assert "422" not in responses, path
        if operations["get"].get("parameters"):
            assert responses["400"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}


_TEXT = st.text(alphabet=string.ascii_letters + string.digits + " -_.%/?&#é'\"<>", max_size=12)


def value_strategy(parameter: dict) -> st.SearchStrategy:
    """Values a client could send for one parameter: valid ones drawn from its schema, and junk."""
    schema = parameter["schema"]
    options = schema.get("anyOf", [schema])
    valid = []
    for option in options:
        if "enum" in option:
            valid.append(st.sampled_from(option["enum"]))
        elif option.get("format") == "date":
            valid.append(st.dates(date(1995, 1, 1), date(2030, 12, 31)).map(date.isoformat))
        elif option.get("type") == "integer":
            valid.append(st.integers(option.get("minimum", -10**6) - 5, option.get("maximum", 10**6) + 5).map(str))
        elif option.get("type") == "boolean":
            valid.append(st.sampled_from(["true", "false"]))
        elif "pattern" in option:
            valid.append(st.from_regex(re.compile(option["pattern"]), fullmatch=True))
        elif option.get("type") == "string":
            valid.append(st.sampled_from(["2018", "2017", "G0156", "hcpcs", "discontinued", "aide", "2020 APR"]))
    return st.one_of(*valid, _TEXT)


def request_strategy(path: str, operation: dict) -> st.SearchStrategy:
    parameters = operation.get("parameters", [])

    @st.composite
    def build(draw):
        url = path
        query = {}
        for parameter in parameters:
            if parameter["in"] == "path":
                value = draw(value_strategy(parameter).filter(lambda v: v.strip() and "/" not in v and v not in (".", "..")))
                url = url.replace("{" + parameter["name"] + "}", value)
            elif parameter.get("required") or draw(st.booleans()):
                query[parameter["name"]] = draw(value_strategy(parameter))
        return url, query

    return build()


def check(client, url, query):
    response = client.get(url, params=query)
    assert response.status_code < 500, (url, query, response.text)
    assert "Traceback" not in response.text
    if response.status_code >= 400:
        ErrorBody.model_validate(response.json())
    else:
        assert isinstance(response.json(), dict)


@pytest.mark.parametrize("path", [
    "/api/search", "/api/codes/{code}", "/api/releases", "/api/diff/hcpcs", "/api/review/{year}",
    "/api/params/{on}", "/api/hipps/{code}", "/api/cbsa/{cbsa}", "/api/rules", "/api/diff/hhpps",
])
def test_the_api_fuzzed_from_its_schema_never_fails(client, schema, path):
    operation = schema["paths"][path]["get"]
    examples = 12 if path in ("/api/review/{year}", "/api/diff/hhpps", "/api/diff/hcpcs") else 40

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(request_strategy(path, operation))
    def fuzz(request):
        check(client, *request)

    fuzz()
