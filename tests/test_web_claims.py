"""The claims half of the web app, with accounts: who sees what (roles, granted agencies), the
session, CSRF, login limits and headers; upload of good and bad files; claims, a claim's trace,
findings, impact, the review and its sign-off; the audit log; and no beneficiary data anywhere.
On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from kb import accounts, audit, database
from kb.database import transaction
from kb.sample_agency import synthetic_npi
from kb.web import create_app
from kb.web.auth import WebSettings
from tests.conftest import BACKENDS
from tests.web_support import cli, loaded_database

PASSWORD = "correct-horse-battery"
AGENCY = synthetic_npi(1)  # the sample agency
OTHER_AGENCY = synthetic_npi(2)
ROLES = ("viewer", "coder", "compliance", "admin")


@pytest.fixture(scope="module")
def sample_files(tmp_path_factory, request):
    """The sample agency's 837I (50 periods from 2024) and the same claims as a CSV; the names the
    837I carries, to look for later."""
    folder = tmp_path_factory.mktemp("claims")
    for url in loaded_database(request, "sqlite", tmp_path_factory):
        cli(url, "claims", "generate", "--periods", "40", "--year", "2024", "--out", str(folder / "agency.837i"))
        cli(url, "claims", "generate", "--periods", "5", "--year", "2024", "--agency-serial", "2", "--format", "csv",
            "--out", str(folder / "other.csv"))
    text = (folder / "agency.837i").read_text()
    names = set()
    for segment in text.split("~"):
        elements = segment.strip().split("*")
        if elements[0] == "NM1" and elements[1] in ("IL", "QC"):
            names.update(value for value in (elements[3], elements[4], elements[-1]) if len(value) > 3)
    return folder, names


@pytest.fixture(scope="module", params=BACKENDS)
def web(request, tmp_path_factory, sample_files):
    import os
    os.environ.setdefault("HHKB_BENEFICIARY_KEY", "test-key-of-the-web-claims-tests")
    for url in loaded_database(request, request.param, tmp_path_factory):
        engine = database.open_database(url)
        with transaction(engine) as session:
            for role in ROLES:
                accounts.add_account(session, role, PASSWORD, role=role)
                accounts.grant(session, role, AGENCY)
            accounts.add_account(session, "outsider", PASSWORD, role="admin")
            accounts.grant(session, "outsider", OTHER_AGENCY)
        app = create_app(engine, WebSettings(public_knowledge=True))
        admin = login(app, "admin")
        folder, _names = sample_files
        uploaded = upload(admin, AGENCY, folder / "agency.837i")
        assert uploaded.status_code == 200, uploaded.text
        yield app, engine
        engine.dispose()


def csrf_of(client: TestClient, path: str = "/login") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text).group(1)


def login(app, username: str, password: str = PASSWORD) -> TestClient:
    client = TestClient(app, raise_server_exceptions=False, headers={"x-forwarded-for": "unused"})
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": csrf_of(client)},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    return client


def upload(client: TestClient, agency: str, path, name: str | None = None):
    token = csrf_of(client, f"/agencies/{agency}/upload")
    with open(path, "rb") as stream:
        return client.post(f"/agencies/{agency}/upload", data={"csrf_token": token},
                           files={"claims_file": (name or path.name, stream, "application/octet-stream")})


def first_claim_pk(client: TestClient) -> int:
    return client.get(f"/api/agencies/{AGENCY}/claims").json()["claims"][0]["id"]


CLAIMS_ROUTES = ("/agencies/{a}/claims", "/api/agencies/{a}/claims", "/agencies/{a}/claims/{pk}",
                 "/api/agencies/{a}/claims/{pk}", "/agencies/{a}/findings", "/agencies/{a}/upload",
                 "/agencies/{a}/impact?from_year=2023&to_year=2024", "/agencies/{a}/review/2024")


def test_no_claims_route_answers_without_a_session(web):
    app, _engine = web
    pk = first_claim_pk(login(app, "coder"))
    anonymous = TestClient(app, raise_server_exceptions=False)
    for route in CLAIMS_ROUTES:
        response = anonymous.get(route.format(a=AGENCY, pk=pk), follow_redirects=False)
        if route.startswith("/api/"):
            assert response.status_code == 401 and response.json()["error"]["status"] == 401, route
        else:
            assert response.status_code == 303 and response.headers["location"] == "/login", route


def test_an_account_not_granted_the_agency_gets_403_on_every_claims_route(web):
    app, _engine = web
    pk = first_claim_pk(login(app, "coder"))
    outsider = login(app, "outsider")  # an admin, but of another agency
    for route in CLAIMS_ROUTES:
        assert outsider.get(route.format(a=AGENCY, pk=pk)).status_code == 403, route
    assert outsider.get(f"/agencies/{OTHER_AGENCY}/claims/{pk}").status_code == 404  # not that agency's claim


@pytest.mark.parametrize("role, allowed", [
    ("viewer", set()),
    ("coder", {"claims", "claim", "findings"}),
    ("compliance", {"claims", "claim", "findings", "impact", "review"}),
    ("admin", {"claims", "claim", "findings", "impact", "review", "upload", "audit"}),
])
def test_each_role_sees_what_it_may(web, role, allowed):
    app, _engine = web
    client = login(app, role)
    pk = first_claim_pk(login(app, "coder"))
    routes = {"claims": f"/agencies/{AGENCY}/claims", "claim": f"/api/agencies/{AGENCY}/claims/{pk}",
              "findings": f"/agencies/{AGENCY}/findings", "upload": f"/agencies/{AGENCY}/upload",
              "impact": f"/agencies/{AGENCY}/impact?from_year=2023&to_year=2024",
              "review": f"/agencies/{AGENCY}/review/2024", "audit": "/admin/audit"}
    for name, route in routes.items():
        status = client.get(route).status_code
        assert status == (200 if name in allowed else 403), (role, name, status)
    assert client.get("/codes/G0156").status_code == 200  # the knowledge pages for every role


def test_a_claim_page_shows_its_lines_and_the_same_trace_as_hhkb_price(web):
    app, engine = web
    client = login(app, "coder")
    listing = client.get(f"/api/agencies/{AGENCY}/claims").json()
    assert listing["total"] == 40
    claim = listing["claims"][0]
    answer = client.get(f"/api/agencies/{AGENCY}/claims/{claim['id']}").json()
    url = engine.url.render_as_string(hide_password=False)
    expected = json.loads(cli(url, "price", claim["claim_id"], "--agency", AGENCY, "--type-of-bill",
                              claim["type_of_bill"], "--json").output)
    assert answer["price"] == expected and answer["lines"] and expected["trace"]
    assert sum(1 for step in expected["trace"] if step["citation"]) >= len(expected["trace"]) // 2
    under_2025 = client.get(f"/api/agencies/{AGENCY}/claims/{claim['id']}", params={"rules_year": 2025}).json()
    assert under_2025["price"]["rules_on"] == "2025-01-01"
    page = client.get(f"/agencies/{AGENCY}/claims/{claim['id']}").text
    assert expected["total"] in page and page.count("class=\"step\"") == len(expected["trace"])
    hipps = claim["hipps"]
    filtered = client.get(f"/api/agencies/{AGENCY}/claims", params={"hipps": hipps}).json()
    assert filtered["total"] >= 1 and {c["hipps"] for c in filtered["claims"]} == {hipps}
    assert client.get(f"/api/agencies/{AGENCY}/claims", params={"type_of_bill": "0111"}).json()["total"] == 0


def test_a_bad_file_is_refused_with_the_cli_s_located_error_and_nothing_stored(web, tmp_path):
    app, engine = web
    admin = login(app, "admin")
    bad = tmp_path / "bad.csv"
    bad.write_text("agency_id,claim_id,type_of_bill\n")
    before = admin.get(f"/api/agencies/{AGENCY}/claims").json()["total"]
    refused = upload(admin, AGENCY, bad)
    url = engine.url.render_as_string(hide_password=False)
    cli_error = cli(url, "claims", "load", str(bad), ok=False).output.strip().removeprefix("error: ")
    assert refused.status_code == 400
    assert cli_error.replace(str(tmp_path) + "/", "") in refused.text.replace("&#39;", "'")
    assert admin.get(f"/api/agencies/{AGENCY}/claims").json()["total"] == before
    other = upload(admin, AGENCY, tmp_path.parent / "unused" if False else bad)  # the same refusal twice
    assert other.status_code == 400


def test_a_file_of_another_agency_is_refused_whole(web, sample_files):
    app, _engine = web
    folder, _names = sample_files
    admin = login(app, "admin")
    refused = upload(admin, AGENCY, folder / "other.csv")
    assert refused.status_code == 400 and f"not of {AGENCY}" in refused.text
    assert admin.get(f"/api/agencies/{AGENCY}/claims").json()["total"] == 40


def test_a_file_over_the_size_limit_is_refused(web, tmp_path):
    app, engine = web
    small = create_app(engine, WebSettings(upload_limit_bytes=1000))
    admin = login(small, "admin")
    big = tmp_path / "big.csv"
    big.write_text("agency_id,claim_id,type_of_bill\n" + "x" * 2000)
    assert upload(admin, AGENCY, big).status_code == 413


def test_forms_without_the_csrf_token_are_refused(web, sample_files):
    app, _engine = web
    folder, _names = sample_files
    client = TestClient(app, raise_server_exceptions=False)
    assert client.post("/login", data={"username": "admin", "password": PASSWORD}).status_code == 403
    admin = login(app, "admin")
    with open(folder / "agency.837i", "rb") as stream:
        assert admin.post(f"/agencies/{AGENCY}/upload", files={"claims_file": ("a.837i", stream)}).status_code == 403
    assert admin.post(f"/agencies/{AGENCY}/review/2024/sign-off", data={"csrf_token": "forged"}).status_code == 403
    assert admin.post("/logout").status_code == 403


def test_the_session_cookie_and_the_headers(web):
    app, _engine = web
    client = TestClient(app, raise_server_exceptions=False)
    token = csrf_of(client)
    response = client.post("/login", data={"username": "coder", "password": PASSWORD, "csrf_token": token},
                           follow_redirects=False)
    cookie = response.headers["set-cookie"].lower()
    assert "hhkb_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie and "max-age=1800" in cookie
    page = client.get(f"/agencies/{AGENCY}/claims")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"


def test_knowledge_pages_behind_the_login_when_set(web):
    app, engine = web
    private = create_app(engine, WebSettings(public_knowledge=False))
    anonymous = TestClient(private, raise_server_exceptions=False)
    assert anonymous.get("/codes/G0156", follow_redirects=False).status_code == 303
    assert anonymous.get("/api/codes/G0156").status_code == 401
    assert login(private, "viewer").get("/api/codes/G0156").status_code == 200


def test_repeated_failed_logins_lock_the_account_name(web):
    app, engine = web
    fresh = create_app(engine, WebSettings())
    client = TestClient(fresh, raise_server_exceptions=False)
    for _ in range(5):
        assert client.post("/login", data={"username": "viewer", "password": "wrong password!",
                                           "csrf_token": csrf_of(client)}).status_code == 401
    locked = client.post("/login", data={"username": "viewer", "password": PASSWORD, "csrf_token": csrf_of(client)})
    assert locked.status_code == 429 and "too many failed logins" in locked.text
    with Session(engine) as session:
        actions = [event.action for event in audit.events(session, limit=6) if event.username == "viewer"]
    assert actions[0] == "login_locked" and actions.count("login_failed") == 5
    # the password never reaches the log
    with Session(engine) as session:
        assert not any("wrong password" in event.detail or PASSWORD in event.detail for event in audit.events(session))


def test_sign_off_stores_the_review_as_signed_and_it_downloads_exactly(web):
    app, engine = web
    compliance = login(app, "compliance")
    review = compliance.get(f"/agencies/{AGENCY}/review/2024")
    assert review.status_code == 200 and "Not signed off yet" in review.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', review.text).group(1)
    signed = compliance.post(f"/agencies/{AGENCY}/review/2024/sign-off", data={"csrf_token": token})
    assert signed.status_code == 200 and "Signed by <strong>compliance</strong> (compliance)" in signed.text
    link = re.search(r'href="(/agencies/[^"]+/signed/\d+)"', signed.text).group(1)
    copy = compliance.get(link)
    digest = hashlib.sha256(copy.content).hexdigest()
    assert digest == copy.headers["x-content-sha256"] and digest in signed.text
    document = json.loads(copy.content)
    assert document["agency_id"] == AGENCY and document["year"] == 2024 and document["review"]["total"] > 0
    with Session(engine) as session:
        rows = audit.sign_offs(session, agency_id=AGENCY, year=2024)
        assert rows[-1].content_sha256 == digest and rows[-1].username == "compliance"
        assert any(e.action == "sign_off" and digest in e.detail for e in audit.events(session))


def test_the_audit_log_records_each_action_and_exports_csv(web):
    app, engine = web
    coder = login(app, "coder")
    pk = first_claim_pk(coder)
    coder.get(f"/agencies/{AGENCY}/claims/{pk}")
    coder.get(f"/agencies/{AGENCY}/findings", params={"format": "csv"})
    admin = login(app, "admin")
    csv_text = admin.get("/admin/audit.csv").text
    for action in ("login", "upload", "view_claims", "view_claim", "export"):
        assert f",{action}," in csv_text, action
    assert f",coder,view_claim,{AGENCY}," in csv_text
    assert "/admin/audit.csv" not in csv_text and "audit log CSV" in csv_text
    assert login(app, "compliance").get("/admin/audit.csv").status_code == 403


def test_no_beneficiary_data_in_any_page_answer_or_audit_row(web, sample_files):
    app, engine = web
    _folder, names = sample_files
    assert names  # the generated 837I carries names to look for
    client = login(app, "admin")
    pk = first_claim_pk(client)
    texts = [client.get(route.format(a=AGENCY, pk=pk)).text for route in CLAIMS_ROUTES]
    texts.append(client.get("/admin/audit.csv").text)
    for text in texts:
        for name in names:
            assert name not in text
