"""Logging in and out, the account page, and the audit log for admins (page and CSV).

The pages render ``reports/templates/web`` with the logged-in account and the session's CSRF
token in the context; every form that changes something posts that token back.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from kb import accounts, audit
from kb.answers import audit_csv
from kb.accounts import Account
from kb.web import auth
from reports.templating import environment

AUDIT_ROWS_SHOWN = 500


def page(request: Request, template: str, status_code: int = 200, **context) -> HTMLResponse:
    """A page of ``reports/templates/web`` with who is logged in and the CSRF token."""
    context.setdefault("today_year", date.today().year)
    context.setdefault("account", auth.current_account(request))
    context.setdefault("csrf_token", auth.csrf_token(request))
    return HTMLResponse(environment().get_template(template).render(**context), status_code=status_code)


def router() -> APIRouter:
    routes = APIRouter(include_in_schema=False)

    @routes.get("/login", response_class=HTMLResponse)
    def login_form(request: Request):
        return page(request, "web/login.html.j2", problem=None, username="")

    @routes.post("/login", dependencies=[Depends(auth.check_csrf)])
    def login(request: Request, username: Annotated[str, Form(max_length=64)],
              password: Annotated[str, Form(max_length=1024)]):
        limiter: auth.LoginLimiter = request.app.state.login_limiter
        address = auth.client_address(request)
        if limiter.locked(username, address):
            auth.record(request, username, "login_locked")
            return page(request, "web/login.html.j2", status_code=429, username=username,
                        problem=f"too many failed logins: try again in {auth.LOCKOUT // 60} minutes")
        with Session(request.app.state.engine) as session:
            account = accounts.authenticate(session, username, password)
            session.commit()  # a rehashed password
        if account is None:
            limiter.failed(username, address)
            auth.record(request, username, "login_failed")
            return page(request, "web/login.html.j2", status_code=401, username=username,
                        problem="the user name or the password is wrong, or the account is disabled")
        limiter.succeeded(username)
        auth.log_in(request, account)
        auth.record(request, account.username, "login")
        return RedirectResponse("/account", status_code=303)

    @routes.post("/logout", dependencies=[Depends(auth.check_csrf)])
    def logout(request: Request):
        account = auth.current_account(request)
        if account is not None:
            auth.record(request, account.username, "logout")
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    @routes.get("/account", response_class=HTMLResponse)
    def account_page(request: Request, account: Annotated[Account, Depends(auth.require("viewer"))]):
        return page(request, "web/account.html.j2", account=account)

    @routes.get("/admin/audit", response_class=HTMLResponse)
    def audit_page(request: Request, account: Annotated[Account, Depends(auth.require("admin"))]):
        with Session(request.app.state.engine) as session:
            rows = audit.events(session, limit=AUDIT_ROWS_SHOWN)
        return page(request, "web/audit.html.j2", events=rows, shown=AUDIT_ROWS_SHOWN)

    @routes.get("/admin/audit.csv")
    def audit_export(request: Request, account: Annotated[Account, Depends(auth.require("admin"))]):
        auth.record(request, account.username, "export", detail="audit log CSV")
        with Session(request.app.state.engine) as session:
            text = audit_csv(session)
        return Response(text, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="hhkb-audit.csv"'})

    return routes
