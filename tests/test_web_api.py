"""The JSON API answers what the CLI's --json answers, route by route, on SQLite and PostgreSQL;
its errors say what was wrong in one documented shape; its pages render."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from kb.web import create_app
from kb.web.app import ErrorBody
from tests.conftest import BACKENDS
from tests.web_support import cli, loaded_database


@pytest.fixture(scope="module", params=BACKENDS)
def loaded_url(request, tmp_path_factory):
    yield from loaded_database(request, request.param, tmp_path_factory)


@pytest.fixture(scope="module")
def client(loaded_url):
    app = create_app(loaded_url)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def cli_json(url: str, *args: str):
    return json.loads(cli(url, *args).output)


@pytest.mark.parametrize("path, command", [
    ("/api/search?q=home%20health%20aide", ("search", "home health aide", "--json")),
    ("/api/search?q=G015&limit=5", ("search", "G015", "--limit", "5", "--json")),
    ("/api/codes/G0156", ("code", "G0156", "--json")),
    ("/api/codes/R0070", ("code", "R0070", "--json")),  # with its pending request
    ("/api/codes/g0156?as_of=2005-01-01", ("code", "g0156", "--as-of", "2005-01-01", "--json")),
    ("/api/codes/G0279?as_of=2018-03-01&known_on=2017-12-01",
     ("code", "G0279", "--as-of", "2018-03-01", "--known-on", "2017-12-01", "--json")),
    ("/api/releases", ("releases", "--json")),
    ("/api/releases?source=hcpcs", ("releases", "--source", "hcpcs", "--json")),
    ("/api/diff/hcpcs?old=2017&new=2018", ("diff", "hcpcs", "2017", "2018", "--format", "json")),
    ("/api/diff/hhpps?old=2023&new=2024", ("diff", "hhpps", "2023", "2024", "--format", "json")),
    ("/api/review/2018", ("review", "2018", "--format", "json")),
    ("/api/params/2024-03-01", ("params", "2024-03-01", "--json")),
    ("/api/hipps/1FC11", ("hipps", "1FC11", "--json")),
    ("/api/hipps/1fc11?as_of=2022-06-01", ("hipps", "1fc11", "--as-of", "2022-06-01", "--json")),
    ("/api/cbsa/49700", ("wage-index", "49700", "--json")),
    ("/api/cbsa/49700?as_of=2023-05-01&policy=first", ("wage-index", "49700", "--as-of", "2023-05-01", "--policy", "first", "--json")),
    ("/api/rules", ("rules", "--json")),
    ("/api/rules?kind=hh_pps_rule", ("rules", "--kind", "hh_pps_rule", "--json")),
])
def test_each_route_answers_as_the_cli(client, loaded_url, path, command):
    response = client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == cli_json(loaded_url, *command)


def test_the_answers_carry_the_facts(client):
    search = client.get("/api/search", params={"q": "home health aide"}).json()
    assert "G0156" in [hit["code"] for hit in search["hits"]]
    assert client.get("/api/search", params={"q": "G0156"}).json()["hits"][0]["code"] == "G0156"  # the code first
    code = client.get("/api/codes/G0156", params={"as_of": "2018-05-01"}).json()
    assert code["version_in_force"] == 1 and "was in effect on 2018-05-01" in code["answer"]
    before = client.get("/api/codes/G0156", params={"as_of": "2005-01-01"}).json()
    assert before["version_in_force"] is None and "added 1999-07-01" in before["answer"]
    review = client.get("/api/review/2018").json()
    discontinued = [c for c in review["changes"] if c["change_type"] == "discontinued"]
    assert len(discontinued) > 100
    filtered = client.get("/api/review/2018", params={"change_type": "discontinued"}).json()
    assert filtered["total"] == len(discontinued)
    hipps = client.get("/api/hipps/1FC11").json()
    weights = {year["effective_from"][:4]: year["weight"] for year in hipps["years"]}
    assert weights["2023"] == "1.1009" and weights["2024"] == "1.0929" and len(weights) == 7
    cbsa = client.get("/api/cbsa/49700").json()
    assert any(value["listed_in_file"] == 2 for value in cbsa["values"])
    releases = client.get("/api/releases").json()["releases"]
    assert {"size", "loader_version", "sha256", "effective_date_basis"} <= set(releases[0])
    home = client.get("/api/home").json()
    assert {source["source"] for source in home["sources"]} >= {"hcpcs", "hhpps-hrg"}


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = ErrorBody.model_validate(response.json())
    assert "Traceback" not in response.text
    return body.error.model_dump()


def test_errors_say_what_was_wrong(client, loaded_url):
    missing = error_of(client.get("/api/codes/G015X"), 404)
    assert missing["message"] == "G015X is in no loaded release"
    assert "G0156" in missing["close_matches"]
    assert cli(loaded_url, "code", "G015X", ok=False).exit_code == 1
    assert "as_of" in error_of(client.get("/api/codes/G0156", params={"as_of": "2018-13-01"}), 400)["message"]
    assert "code" in error_of(client.get("/api/codes/TOO-LONG-CODE"), 400)["message"]
    assert "no HCPCS release matches '1990'" in error_of(client.get("/api/diff/hcpcs?old=1990&new=2018"), 404)["message"]
    assert "bogus" in error_of(client.get("/api/review/2018?change_type=bogus"), 400)["message"]
    assert "no HH PPS rate year in force on 2010-01-01" in error_of(client.get("/api/params/2010-01-01"), 404)["message"]
    assert "no case-mix table in force on 2019-06-01" in error_of(client.get("/api/hipps/1AA11?as_of=2019-06-01"), 404)["message"]
    assert "code" in error_of(client.get("/api/hipps/9ZZ99"), 400)["message"]
    assert "listed more than once" in error_of(client.get("/api/cbsa/49700?as_of=2023-05-01"), 404)["message"]
    assert error_of(client.get("/api/no-such-route"), 404)["message"] == "no page at /api/no-such-route"


@pytest.mark.parametrize("path, text", [
    ("/", "What is loaded"),
    ("/search?q=home+health+aide", "G0156"),
    ("/search?q=G015X", "No code matches"),
    ("/codes/G0156?as_of=2018-05-01", "was in effect on 2018-05-01"),
    ("/codes/R0070", 'Pending and proposed (not final)</h2>'),
    ("/codes/R0070", 'id="pending-HCPCS-R0070-portable-imaging"'),
    ("/releases", "2018 annual"),
    ("/diff/hcpcs?old=2017&new=2018", "HCPCS changes: 2017 annual to 2018 annual"),
    ("/diff/hhpps?old=2023&new=2024", "Case-mix weights changed"),
    ("/review/2018?change_type=discontinued&page=2", "page 2 of 2"),
    ("/params/2024-03-01", "CMS-1780-F"),
    ("/params?on=2024-03-01", "2038.13"),
    ("/hipps/1FC11", "1.0929"),
    ("/cbsa/49700", "listed 2 times"),
    ("/rules", "CMS-1780-F"),
])
def test_pages_render(client, path, text):
    response = client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert text in response.text


@pytest.mark.parametrize("path, status, text", [
    ("/codes/G015X", 404, "G015X is in no loaded release"),
    ("/codes/G0156?as_of=yesterday", 400, "as_of"),
    ("/review/3000", 400, "year"),
    ("/nowhere", 404, "no page at /nowhere"),
])
def test_error_pages_say_what_was_wrong(client, path, status, text):
    response = client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert text in response.text and "Traceback" not in response.text
