"""Answers kept until a file is loaded: the pages and the JSON of the web app are computed from the
knowledge base alone (and today's date), so the same URL gets the same bytes for as long as the
loaded files stay the same.

:class:`AnswerCache` is an ASGI middleware in front of the app. For each GET it reads the state of
the knowledge base (``kb.queries.knowledge_state``: one small query, so a file loaded by another
process is seen at the next request), and answers from what it kept for that URL in that state
and on that day; otherwise the app answers and a 200 is kept. Requests for a URL whose answer is
being computed wait for it rather than compute it again. What it keeps is bounded in bytes
(least recently used first out) and dropped whole when the state or the day changes.

Like a shared HTTP cache (RFC 9111, section 3.5), it neither answers nor keeps a request that
carries credentials (``Authorization``, ``Cookie``), nor keeps an answer that sets a cookie or
says ``Cache-Control: private`` or ``no-store``: what one reader is shown is never served to another.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_CREDENTIALS = (b"authorization", b"cookie")


@dataclass(frozen=True, slots=True)
class _Kept:
    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


class AnswerCache:
    """Keeps the 200 answers to GETs, per URL, for one state of the knowledge base and one day."""

    def __init__(self, app: ASGIApp, *, state: Callable[[], tuple], max_bytes: int = 64 << 20,
                 max_answer_bytes: int = 4 << 20):
        self.app, self.state = app, state
        self.max_bytes, self.max_answer_bytes = max_bytes, max_answer_bytes
        self.kept: OrderedDict[tuple[str, bytes], _Kept] = OrderedDict()
        self.kept_for: tuple | None = None  # (state, day) of what is kept
        self.kept_bytes = 0
        self.hits = self.misses = 0
        self.computing: dict[tuple[str, bytes], tuple[tuple, asyncio.Event]] = {}  # URL -> (state, done)
        self.arrivals = 0  # GETs counted as they arrive
        self.reading: tuple[int, asyncio.Future] | None = None  # the read of the state under way, and
        # the number of arrivals before it began

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or any(
                name in _CREDENTIALS for name, _ in scope["headers"]):
            await self.app(scope, receive, send)
            return
        generation = (await self._state_now(), date.today())
        if generation != self.kept_for:
            self.kept.clear()
            self.kept_bytes, self.kept_for = 0, generation
        key = (scope["path"], scope["query_string"])
        computing = self.computing.get(key)
        if computing is not None and computing[0] == generation:  # the same answer is being computed:
            await computing[1].wait()  # wait for it rather than compute it again
        kept = self.kept.get(key) if generation == self.kept_for else None
        if kept is not None:
            self.hits += 1
            self.kept.move_to_end(key)
            await send({"type": "http.response.start", "status": kept.status, "headers": list(kept.headers)})
            await send({"type": "http.response.body", "body": kept.body})
            return
        self.misses += 1
        done = asyncio.Event()
        self.computing.setdefault(key, (generation, done))
        started: dict = {}
        body: list[bytes] = []

        async def keep_and_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                started.update(message)
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))
                if not message.get("more_body", False):
                    self._keep(generation, key, started, b"".join(body))
            await send(message)

        try:
            await self.app(scope, receive, keep_and_send)
        finally:
            done.set()
            if self.computing.get(key, (None, None))[1] is done:
                del self.computing[key]

    async def _state_now(self) -> tuple:
        """The state of the knowledge base read after this request arrived. Requests arriving
        together share one read (``self.state`` runs in a worker thread, one at a time): with 20
        clients that is one database connection rather than 20."""
        self.arrivals += 1
        arrival = self.arrivals
        while True:
            if self.reading is None or self.reading[1].done():
                self.reading = (self.arrivals, asyncio.ensure_future(anyio.to_thread.run_sync(self.state)))
            covers, read = self.reading
            if covers >= arrival:  # the read began after this request arrived
                return await asyncio.shield(read)
            await asyncio.wait([read])  # began before: wait for it, then start or share the next

    def _keep(self, generation: tuple, key: tuple[str, bytes], started: Message, body: bytes) -> None:
        headers = tuple((bytes(name).lower(), bytes(value)) for name, value in started.get("headers", ()))
        cache_control = b",".join(value for name, value in headers if name == b"cache-control").lower()
        if (started.get("status") != 200 or generation != self.kept_for or len(body) > self.max_answer_bytes
                or any(name == b"set-cookie" for name, _ in headers)
                or b"private" in cache_control or b"no-store" in cache_control):
            return
        if key in self.kept:
            self.kept_bytes -= len(self.kept.pop(key).body)
        self.kept[key] = _Kept(200, headers, body)
        self.kept_bytes += len(body)
        while self.kept_bytes > self.max_bytes:
            self.kept_bytes -= len(self.kept.popitem(last=False)[1].body)
