"""The web app keeps its answers until a file is loaded: the same URL gets the same bytes, a load
(by another process too) is seen by the next request, and nothing carrying credentials or setting a
cookie is kept. On SQLite and PostgreSQL for the app; the middleware's rules on a small app."""

from __future__ import annotations

import asyncio
import time

import httpx
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from kb.web import create_app
from kb.web.cache import AnswerCache
from tests.conftest import HCPCS_DIR
from tests.web_support import cli

HCPCS_2018 = HCPCS_DIR / "2018-Alpha-Numeric-HCPCS-File.zip"
HCPCS_2019 = HCPCS_DIR / "2019-Alpha-Numeric-HCPCS-File.zip"


def cache_of(app) -> AnswerCache:
    found = app.middleware_stack
    while not isinstance(found, AnswerCache):
        found = found.app
    return found


def test_a_load_by_another_process_is_seen_by_the_next_request(database_url):
    cli(database_url, "load", str(HCPCS_2018))
    app = create_app(database_url)
    with TestClient(app) as client:
        first = client.get("/search", params={"q": "infusion drug in home"})
        api = client.get("/api/releases").json()
        assert "G0068" not in first.text and len(api["releases"]) == 1
        cache = cache_of(app)
        hits = cache.hits
        again = client.get("/search", params={"q": "infusion drug in home"})
        assert again.text == first.text and cache.hits == hits + 1
        cli(database_url, "load", str(HCPCS_2019))  # the CLI, as another process would
        after = client.get("/search", params={"q": "infusion drug in home"})
        assert "G0068" in after.text and cache.hits == hits + 1
        assert len(client.get("/api/releases").json()["releases"]) == 2
        code = client.get("/api/codes/G0068").json()
        assert code["versions"][0]["first_release"] == "2019 annual"


def test_a_kept_answer_is_the_answer(database_url):
    cli(database_url, "load", str(HCPCS_2018))
    app = create_app(database_url)
    with TestClient(app) as client:
        computed = client.get("/codes/G0156?as_of=2018-05-01")
        kept = client.get("/codes/G0156?as_of=2018-05-01")
        assert kept.status_code == computed.status_code == 200
        assert kept.content == computed.content
        assert kept.headers["content-type"] == computed.headers["content-type"] == "text/html; charset=utf-8"
        missing = client.get("/api/codes/G0157X")  # an error is computed each time, never kept
        assert missing.status_code == 400 and client.get("/api/codes/G0157X").status_code == 400
        assert ("/api/codes/G0157X", b"") not in cache_of(app).kept


def small_app(calls: list[str], state: list[int], **options):
    def answer(request):
        calls.append(request.url.path)
        if request.url.path == "/missing":
            return PlainTextResponse("no", status_code=404)
        response = PlainTextResponse(f"{request.url.path} in state {state[0]} " + "x" * 100)
        if request.url.path == "/private":
            response.headers["cache-control"] = "private"
        if request.url.path == "/login":
            response.set_cookie("session", "1")
        return response

    inner = Starlette(routes=[Route("/{name}", answer, methods=["GET", "POST"])])
    return AnswerCache(inner, state=lambda: (state[0],), **options)


def test_kept_per_url_and_state_never_with_credentials_nor_a_cookie_set():
    calls, state = [], [1]
    client = TestClient(small_app(calls, state))
    assert client.get("/a").text == client.get("/a").text == "/a in state 1 " + "x" * 100
    assert calls == ["/a"]
    client.get("/a?page=2")
    assert calls == ["/a", "/a"]  # another query string is another answer
    state[0] = 2
    assert client.get("/a").text.startswith("/a in state 2") and calls == ["/a"] * 3
    calls.clear()
    for path in ("/missing", "/private", "/login", "/missing", "/private", "/login"):
        client.get(path)
    assert calls == ["/missing", "/private", "/login"] * 2
    calls.clear()
    client.get("/b")
    client.get("/b", headers={"Authorization": "Basic eDp5"})
    client.get("/b", headers={"Cookie": "session=1"})
    client.post("/b")
    assert calls == ["/b"] * 4


def test_what_is_kept_is_bounded_in_bytes():
    calls, state = [], [1]
    app = small_app(calls, state, max_bytes=400, max_answer_bytes=150)
    client = TestClient(app)
    for path in ("/a", "/b", "/c", "/d", "/a"):
        client.get(path)
    assert app.kept_bytes <= 400 and list(app.kept)[-1] == ("/a", b"")
    assert calls == ["/a", "/b", "/c", "/d", "/a"]  # /a was the least recently used, so it went first
    client.get("/" + "e" * 60)  # a body over max_answer_bytes is answered, not kept
    assert ("/" + "e" * 60, b"") not in app.kept


def test_requests_arriving_together_share_one_read_of_the_state_and_one_computation():
    reads: list[int] = []
    computed: list[int] = []
    state = [1]

    def read_state() -> tuple:
        reads.append(state[0])
        return (state[0],)

    def answer(request):
        computed.append(state[0])
        time.sleep(0.05)  # long enough for the others to arrive while it is computed
        return PlainTextResponse(f"state {state[0]}")

    inner = Starlette(routes=[Route("/{name}", answer)])
    app = AnswerCache(inner, state=read_state)

    async def together() -> list[str]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answers = await asyncio.gather(*(client.get("/a") for _ in range(20)))
            state[0] = 2  # a load: the next request reads the state again and sees it
            answers.append(await client.get("/a"))
        return [answer.text for answer in answers]

    texts = asyncio.run(together())
    assert texts[:20] == ["state 1"] * 20 and texts[20] == "state 2"
    assert 2 <= len(reads) < 20
    assert computed == [1, 2]
