"""Who may see what, and the web's usual defences, as the framework's ecosystem does them.

Sessions
    Starlette's ``SessionMiddleware``: the session is a cookie signed with itsdangerous
    (HttpOnly, ``SameSite=Strict``, ``Secure`` with ``HHKB_WEB_HTTPS_ONLY=1``). It holds only the
    account's id and a CSRF token. The cookie is signed again on every answer and refused when its
    signature is older than the idle timeout, so an idle session ends by itself. The account is
    read from the database on every request: a disabled account or a changed role counts at once.

The secret key
    ``HHKB_SECRET_KEY``; otherwise, for a SQLite database, a file beside it
    (``<database>.web-secret-key``, made on first use, readable by its owner only), as the
    beneficiary key is kept. A PostgreSQL database without the variable gets a key made at start:
    sessions then end when the server restarts.

CSRF
    Every form that changes something carries the session's token (``csrf_token``); a POST without
    it, or with another, is refused with 403 before anything is read or written.

Logins
    After :data:`LOGIN_ATTEMPTS` failed logins within :data:`LOCKOUT` for one account name, or from
    one address, further attempts are refused until the window has passed (HTTP 429), whatever the
    password. Each login, failed login and refusal goes to the audit log.

Headers
    A strict Content-Security-Policy (no script or style but the templates' own inline blocks,
    allowed by their sha256, computed from the template files at start), ``frame-ancestors
    'none'``, ``nosniff``, no referrer, and ``no-store`` for every answer to a logged-in session.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from kb import accounts, audit
from kb.accounts import Account
from reports.templating import TEMPLATES

log = logging.getLogger("hhkb.web")

SECRET_KEY_VARIABLE = "HHKB_SECRET_KEY"
SECRET_KEY_SUFFIX = ".web-secret-key"
SESSION_COOKIE = "hhkb_session"
LOGIN_ATTEMPTS = 5
LOCKOUT = 15 * 60  # seconds
#: Paths anyone may ask for when the knowledge pages are behind the login.
OPEN_PATHS = ("/login",)


@dataclass(frozen=True)
class WebSettings:
    """How the app is run (from the environment by :meth:`from_environment`)."""

    public_knowledge: bool = True  # the knowledge pages without logging in (claims never)
    idle_minutes: int = 30
    https_only: bool = False
    upload_limit_bytes: int = 100 * 1024 * 1024

    @classmethod
    def from_environment(cls) -> WebSettings:
        environ = os.environ
        return cls(
            public_knowledge=environ.get("HHKB_WEB_PUBLIC", "1") not in ("0", "no", "false"),
            idle_minutes=int(environ.get("HHKB_WEB_IDLE_MINUTES", "30")),
            https_only=environ.get("HHKB_WEB_HTTPS_ONLY", "0") in ("1", "yes", "true"),
            upload_limit_bytes=int(environ.get("HHKB_WEB_UPLOAD_MB", "100")) * 1024 * 1024,
        )


def secret_key(engine: Engine) -> str:
    """The key that signs the session cookies of this database's app (see the module doc)."""
    value = os.environ.get(SECRET_KEY_VARIABLE)
    if value:
        return value
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        log.warning("%s is not set: sessions end when the server restarts", SECRET_KEY_VARIABLE)
        return secrets.token_hex(32)
    path = Path(database + SECRET_KEY_SUFFIX)
    if not path.exists():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as stream:
            stream.write(secrets.token_hex(32) + "\n")
    return path.read_text().strip()


# --- the Content-Security-Policy ------------------------------------------------------------------

_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.S)


def inline_hashes(folder: Path = TEMPLATES) -> dict[str, tuple[str, ...]]:
    """``'sha256-...'`` sources of the templates' inline scripts and styles (those without template
    syntax: a block that a value could reach is never allowed)."""
    found: dict[str, set[str]] = {"script": set(), "style": set()}
    for path in sorted(folder.rglob("*.html.j2")):
        for kind, body in _INLINE.findall(path.read_text(encoding="utf-8")):
            if "{{" in body or "{%" in body:
                continue
            digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii")
            found[kind].add(f"'sha256-{digest}'")
    return {kind: tuple(sorted(values)) for kind, values in found.items()}


def content_security_policy() -> str:
    hashes = inline_hashes()
    return "; ".join((
        "default-src 'none'",
        "script-src " + (" ".join(hashes["script"]) or "'none'"),
        "style-src " + (" ".join(hashes["style"]) or "'none'"),
        "img-src 'self' data:", "connect-src 'self'", "form-action 'self'",
        "frame-ancestors 'none'", "base-uri 'none'",
    ))


#: The interactive API documentation loads its scripts from a CDN; only that page allows it.
API_DOCS_POLICY = ("default-src 'none'; script-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; "
                   "style-src https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
                   "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'")


# --- logins ---------------------------------------------------------------------------------------


class LoginLimiter:
    """Failed logins per account name and per address in a sliding window (in this process)."""

    def __init__(self, attempts: int = LOGIN_ATTEMPTS, window: float = LOCKOUT, clock=time.monotonic):
        self.attempts, self.window, self.clock = attempts, window, clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: str) -> deque[float]:
        failures = self._failures[key]
        while failures and failures[0] <= self.clock() - self.window:
            failures.popleft()
        return failures

    def locked(self, username: str, address: str) -> bool:
        with self._lock:
            return any(len(self._recent(key)) >= self.attempts for key in (f"user:{username}", f"address:{address}"))

    def failed(self, username: str, address: str) -> None:
        with self._lock:
            for key in (f"user:{username}", f"address:{address}"):
                self._recent(key).append(self.clock())

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(f"user:{username}", None)


# --- who is asking --------------------------------------------------------------------------------


class LoginRequired(Exception):
    """No session: a page sends the browser to the login form, the API answers 401."""


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


def current_account(request: Request) -> Account | None:
    """The logged-in account, read again from the database (None when not logged in or disabled)."""
    if "account" in request.state._state:
        return request.state.account
    account = None
    account_id = request.session.get("account")
    if isinstance(account_id, int):
        with Session(request.app.state.engine) as session:
            account = accounts.account_by_id(session, account_id)
        if account is None or account.disabled:
            request.session.clear()
            account = None
    request.state.account = account
    return account


def require(role: str):
    """A dependency: the logged-in account, of ``role`` or above (403 otherwise)."""
    accounts.role_rank(role)

    def dependency(request: Request) -> Account:
        account = current_account(request)
        if account is None:
            raise LoginRequired()
        if not account.may(role):
            raise StarletteHTTPException(403, f"this needs the {role} role; your account is {account.role}")
        return account

    return dependency


def require_agency(account: Account, agency_id: str) -> None:
    """403 unless the account is granted the agency (the same answer whether or not it exists)."""
    if not account.sees(agency_id):
        raise StarletteHTTPException(403, "your account is not granted this agency")


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


async def check_csrf(request: Request) -> None:
    """A dependency of every POST: the form's ``csrf_token`` (or the ``X-CSRF-Token`` header) is the
    session's."""
    expected = request.session.get("csrf")
    given = request.headers.get("x-csrf-token")
    if given is None and request.headers.get("content-type", "").startswith(("multipart/form-data",
                                                                              "application/x-www-form-urlencoded")):
        given = (await request.form()).get("csrf_token")
    if not isinstance(expected, str) or not isinstance(given, str) or not secrets.compare_digest(expected, given):
        raise StarletteHTTPException(403, "the form's CSRF token is missing or out of date: reload the page and try again")


def log_in(request: Request, account: Account) -> None:
    request.session.clear()  # a new session for the new identity
    request.session["account"] = account.id
    request.session["csrf"] = secrets.token_urlsafe(32)
    request.state.account = account


def record(request: Request, username: str, action: str, *, agency_id: str | None = None, detail: str = "") -> None:
    """One row of the audit log, in its own transaction."""
    from kb.database import transaction

    with transaction(request.app.state.engine) as session:
        audit.record(session, username, action, agency_id=agency_id, address=client_address(request), detail=detail)


def install(app, engine: Engine, settings: WebSettings, error_body) -> None:
    """The session, the login gate of the knowledge pages, the headers, and the 401 answer.

    ``error_body(status, title, message)`` is the API's error document."""
    app.state.engine = engine
    app.state.settings = settings
    app.state.login_limiter = LoginLimiter()
    policy = content_security_policy()

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _error: LoginRequired):
        if request.url.path.startswith("/api/"):
            return JSONResponse(error_body(401, "Unauthorized", "log in first (POST /login)"), status_code=401)
        return RedirectResponse("/login", status_code=303)

    @app.middleware("http")
    async def knowledge_gate(request: Request, call_next):
        if (not settings.public_knowledge and request.url.path not in OPEN_PATHS
                and not isinstance(request.session.get("account"), int)):
            return await login_required(request, LoginRequired())
        return await call_next(request)

    app.add_middleware(SessionMiddleware, secret_key=secret_key(engine), session_cookie=SESSION_COOKIE,
                       max_age=settings.idle_minutes * 60, same_site="strict", https_only=settings.https_only)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response: Response = await call_next(request)
        headers = response.headers
        headers["Content-Security-Policy"] = API_DOCS_POLICY if request.url.path == "/api/docs" else policy
        headers["X-Content-Type-Options"] = "nosniff"
        headers["X-Frame-Options"] = "DENY"
        headers["Referrer-Policy"] = "no-referrer"
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
        headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        if "cookie" in request.headers or "set-cookie" in headers:
            headers["Cache-Control"] = "no-store"
        if settings.https_only:
            headers["Strict-Transport-Security"] = "max-age=31536000"
        return response
