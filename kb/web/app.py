"""The web app: server-rendered pages and, at a matching ``/api/...`` route, the same answer as
JSON (the document the CLI prints with ``--json`` / ``--format json``).

Routes are thin: they check the URL's values, call the library function the CLI calls
(``kb.answers``, ``kb.review``), and render a template of ``reports/templates`` with the answer.
Errors say what was wrong, as a page or as ``{"error": {"status", "title", "message", ...}}``;
no answer carries a stack trace.
"""

import logging
from datetime import date
from functools import lru_cache
from typing import Annotated, Literal
from urllib.parse import parse_qsl, urlencode

from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from kb import answers, database, queries
from kb.parameters import ParameterError
from kb.review import HOME_HEALTH_WATCH_LIST, ReviewError, annual_review
from kb.store import catalogue_of
from kb.web import auth, pages
from kb.web.cache import AnswerCache
from reports import changes as change_reports
from reports.templating import environment

log = logging.getLogger("hhkb.web")

PER_PAGE = 100
CODE_PATTERN = r"^[A-Za-z0-9]{1,5}$"
HIPPS_PATTERN = r"^[1-4][A-La-l][A-Ca-c][1-3]1$"
CBSA_PATTERN = r"^[0-9]{5}$"
Policy = Literal["first", "last", "refuse"]
Source = Literal["hcpcs", "hcpcs_corrections", "hhpps"]


class ErrorDetail(BaseModel):
    status: int
    title: str
    message: str
    close_matches: list[str] = []


class ErrorBody(BaseModel):
    """Every error of the API: what was wrong, in words."""

    error: ErrorDetail


ERRORS = {400: {"model": ErrorBody, "description": "A value in the URL is not valid"},
          404: {"model": ErrorBody, "description": "The knowledge base holds no such thing"}}
TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
          413: "Too large", 429: "Too many requests", 500: "Internal error"}


class WebError(Exception):
    def __init__(self, status: int, message: str, close_matches: list[str] | None = None):
        super().__init__(message)
        self.status, self.message, self.close_matches = status, message, close_matches or []


def create_app(engine: Engine | str, settings: "auth.WebSettings | None" = None) -> FastAPI:
    """The app over one knowledge base (an engine, or a database URL opened and upgraded here);
    ``settings`` default to the environment's (``kb.web.auth.WebSettings``)."""
    if isinstance(engine, str):
        engine = database.open_database(engine)
    app = FastAPI(title="hhkb", version="1", summary="A cited, versioned knowledge base of CMS home health "
                  "coding and payment rules", docs_url="/api/docs", redoc_url=None, openapi_url="/openapi.json")
    templates = environment()

    @app.middleware("http")
    async def drop_empty_query_values(request: Request, call_next):
        """A form's empty field (``known_on=``) means the value was not given."""
        if b"=&" in request.scope["query_string"] + b"&":
            kept = [(name, value) for name, value in parse_qsl(request.scope["query_string"].decode("latin-1"),
                                                                keep_blank_values=True) if value != ""]
            request.scope["query_string"] = urlencode(kept).encode("latin-1")
        return await call_next(request)

    def session() -> Session:
        return Session(engine)

    # One statement needs no transaction: on PostgreSQL that saves the BEGIN and ROLLBACK round trips.
    reader = engine.execution_options(isolation_level="AUTOCOMMIT") if engine.dialect.name == "postgresql" else engine

    def knowledge_state() -> tuple:
        with reader.connect() as connection:
            return queries.knowledge_state(connection)

    def page(template: str, status_code: int = 200, **context) -> HTMLResponse:
        context.setdefault("today_year", date.today().year)
        return HTMLResponse(templates.get_template(template).render(md=str, **context), status_code=status_code)

    def is_api(request: Request) -> bool:
        return request.url.path.startswith("/api/") or request.url.path == "/api"

    def error_response(request: Request, status: int, message: str, close_matches=()) -> Response:
        if is_api(request):
            body = ErrorBody(error=ErrorDetail(status=status, title=TITLES.get(status, "Error"), message=message,
                                               close_matches=list(close_matches)))
            return JSONResponse(body.model_dump(), status_code=status)
        return page("web/error.html.j2", status_code=status, status=status, title=TITLES.get(status, "Error"), message=message,
                    close_matches=list(close_matches))

    @app.exception_handler(WebError)
    async def web_error(request: Request, error: WebError):
        return error_response(request, error.status, error.message, error.close_matches)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError):
        problems = []
        for problem in error.errors():
            where = ".".join(str(part) for part in problem.get("loc", ())[1:]) or "request"
            given = problem.get("input")
            problems.append(f"{where}: {problem.get('msg', 'not valid')}"
                            + (f" (given {given!r})" if isinstance(given, str | int) else ""))
        return error_response(request, 400, "; ".join(problems) or "the request is not valid")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        message = f"no page at {request.url.path}" if error.status_code == 404 else str(error.detail)
        return error_response(request, error.status_code, message)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception):
        log.exception("unexpected error on %s", request.url.path)
        return error_response(request, 500, "the server could not answer this request; it is logged")

    def ask(question, *args, **kwargs):
        """Run one library question; its refusals become 404s with the library's own words."""
        with session() as db:
            try:
                return question(db, *args, **kwargs)
            except answers.NotFound as error:
                raise WebError(404, str(error), error.close_matches) from None
            except (ReviewError, ParameterError) as error:
                raise WebError(404, str(error.args[0] if error.args else error)) from None

    # --- the annual review is computed once per year, policy and set of loaded files --------------

    @lru_cache(maxsize=16)
    def cached_review(year: int, policy: str, state: tuple):
        return ask(lambda db: annual_review(db, catalogue_of(db), year, conflict_policy=policy))

    def review_of(year: int, policy: str):
        return cached_review(year, policy, knowledge_state())

    # --- home ----------------------------------------------------------------------------------

    def home_answer(db: Session, today: date) -> dict:
        releases = answers.releases_answer(db)["releases"]
        latest: dict[str, dict] = {}
        for release in releases:
            if release["effective_date"] <= today:
                latest[release["source"]] = release
        upcoming_rules = [rule for rule in answers.rules_answer(db)["rules"]
                          if rule["effective"] and rule["effective"] > today]
        return {
            "today": today,
            "sources": [{"source": source, "releases": sum(1 for r in releases if r["source"] == source),
                         "latest": latest.get(source)} for source in sorted({r["source"] for r in releases})],
            "upcoming_releases": [r for r in releases if r["effective_date"] > today],
            "upcoming_rules": upcoming_rules,
            "review_year": today.year,
        }

    @app.get("/api/home", tags=["home"], responses=ERRORS)
    def api_home() -> JSONResponse:
        """What is loaded (each source's latest release in force), and what takes effect next."""
        return JSONResponse(answers.jsonable(ask(home_answer, date.today())))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home_page():
        return page("web/home.html.j2", home=ask(home_answer, date.today()))

    # --- search --------------------------------------------------------------------------------

    SearchText = Annotated[str, Query(min_length=1, max_length=200, description="A code, a prefix or words")]
    Limit = Annotated[int, Query(ge=1, le=500)]

    @app.get("/api/search", tags=["codes"], responses=ERRORS)
    def api_search(q: SearchText, limit: Limit = 50) -> JSONResponse:
        """Codes by code, prefix or words of their latest descriptions, ranked (``hhkb search Q --json``)."""
        return JSONResponse(answers.jsonable(ask(answers.search_answer, q, limit=limit)))

    @app.get("/search", response_class=HTMLResponse, include_in_schema=False)
    def search_page(q: Annotated[str, Query(max_length=200)] = "", limit: Limit = 50):
        found = ask(answers.search_answer, q, limit=limit) if q.strip() else None
        return page("web/search.html.j2", q=q, found=found)

    # --- a code --------------------------------------------------------------------------------

    Code = Annotated[str, Path(pattern=CODE_PATTERN, description="A HCPCS code or modifier")]
    AsOf = Annotated[date | None, Query(description="The effective date asked about (YYYY-MM-DD)")]
    KnownOn = Annotated[date | None, Query(description="Answer as CMS's files said on this date (YYYY-MM-DD)")]

    @app.get("/api/codes/{code}", tags=["codes"], responses=ERRORS)
    def api_code(code: Code, as_of: AsOf = None, known_on: KnownOn = None) -> JSONResponse:
        """A code's history, and with ``as_of``/``known_on`` the version in force (``hhkb code X --json``)."""
        return JSONResponse(answers.jsonable(ask(answers.code_answer, code, as_of=as_of, known_on=known_on)))

    @app.get("/codes/{code}", response_class=HTMLResponse, include_in_schema=False)
    def code_page(code: Code, as_of: AsOf = None, known_on: KnownOn = None):
        answer = ask(answers.code_answer, code, as_of=as_of, known_on=known_on)
        return page("web/code.html.j2", answer=answer, timeline=pages.timeline(answer, today=date.today()),
                    changed=pages.changed_fields(answer["versions"]), compared=pages.COMPARED_FIELDS)

    # --- releases, diff, review ----------------------------------------------------------------

    SourceName = Annotated[str | None, Query(max_length=40, description="Only this source (e.g. hcpcs)")]

    @app.get("/api/releases", tags=["releases"], responses=ERRORS)
    def api_releases(source: SourceName = None) -> JSONResponse:
        """Every loaded file with its provenance (``hhkb releases --json``)."""
        return JSONResponse(answers.jsonable(ask(answers.releases_answer, source)))

    @app.get("/releases", response_class=HTMLResponse, include_in_schema=False)
    def releases_page(source: SourceName = None):
        return page("web/releases.html.j2", answer=ask(answers.releases_answer, source))

    ReleaseRef = Annotated[str, Query(min_length=1, max_length=40, description="A year, label, month or date")]
    ChangeSource = Annotated[Source | None, Query(description="Only changes of this source")]
    ChangeType = Annotated[str | None, Query(max_length=60, description="Only changes of this type")]
    Watched = Annotated[bool, Query(description="Only changes touching a watched code")]
    Text = Annotated[str | None, Query(max_length=200, description="Only changes holding every word")]
    PageNumber = Annotated[int, Query(ge=1, le=100000)]
    Year = Annotated[int, Path(ge=1990, le=2100)]
    YearQuery = Annotated[int, Query(ge=1990, le=2100)]

    def filters(source, change_type, watched, text) -> dict:
        if change_type and change_type not in change_reports.CHANGE_TYPE_TITLES:
            known = ", ".join(change_reports.CHANGE_TYPE_TITLES)
            raise WebError(400, f"change_type: {change_type!r} is not a change type; one of {known}")
        return {"source": source, "change_type": change_type or None, "watched": watched, "text": text or None}

    def json_report(report) -> Response:
        return Response(change_reports.render_json(report), media_type="application/json")

    def report_page(request: Request, report, kind: str, number: int, chosen: dict, **context) -> HTMLResponse:
        return page("web/changes.html.j2", report=report, kind=kind, page=pages.report_page(report, number, PER_PAGE),
                    chosen=chosen, change_types=change_reports.CHANGE_TYPE_TITLES,
                    sources=change_reports.SOURCE_TITLES, query=dict(request.query_params), **context)

    @app.get("/api/diff/hcpcs", tags=["changes"], responses=ERRORS)
    def api_diff_hcpcs(old: ReleaseRef, new: ReleaseRef, source: ChangeSource = None, change_type: ChangeType = None,
                       watched: Watched = False, text: Text = None) -> Response:
        """The changes between two HCPCS releases (``hhkb diff hcpcs OLD NEW --format json``)."""
        return json_report(ask(answers.hcpcs_diff_report, old, new, **filters(source, change_type, watched, text)))

    @app.get("/diff/hcpcs", response_class=HTMLResponse, include_in_schema=False)
    def diff_hcpcs_page(request: Request, old: ReleaseRef, new: ReleaseRef, source: ChangeSource = None,
                        change_type: ChangeType = None, watched: Watched = False, text: Text = None,
                        page_number: Annotated[int, Query(alias="page", ge=1, le=100000)] = 1):
        chosen = filters(source, change_type, watched, text)
        report = ask(answers.hcpcs_diff_report, old, new, **chosen)
        return report_page(request, report, "diff-hcpcs", page_number, chosen, fixed={"old": old, "new": new})

    @app.get("/api/diff/hhpps", tags=["changes"], responses=ERRORS)
    def api_diff_hhpps(old: YearQuery, new: YearQuery, policy: Policy = "first", change_type: ChangeType = None,
                       text: Text = None) -> Response:
        """The HH PPS changes from one rule year to another (``hhkb diff hhpps OLD NEW --format json``)."""
        return json_report(ask(answers.hhpps_diff_report, old, new, policy=policy,
                               **filters(None, change_type, False, text)))

    @app.get("/diff/hhpps", response_class=HTMLResponse, include_in_schema=False)
    def diff_hhpps_page(request: Request, old: YearQuery, new: YearQuery, policy: Policy = "first",
                        change_type: ChangeType = None, text: Text = None,
                        page_number: Annotated[int, Query(alias="page", ge=1, le=100000)] = 1):
        chosen = filters(None, change_type, False, text)
        report = ask(answers.hhpps_diff_report, old, new, policy=policy, **chosen)
        return report_page(request, report, "diff-hhpps", page_number, chosen,
                           fixed={"old": old, "new": new, "policy": policy})

    @app.get("/api/review/{year}", tags=["changes"], responses=ERRORS)
    def api_review(year: Year, policy: Policy = "first", source: ChangeSource = None, change_type: ChangeType = None,
                   watched: Watched = False, text: Text = None) -> Response:
        """Everything taking effect in a year, cited (``hhkb review YEAR --format json``)."""
        chosen = filters(source, change_type, watched, text)
        return json_report(answers.review_report(review_of(year, policy), **chosen))

    @app.get("/review/{year}", response_class=HTMLResponse, include_in_schema=False)
    def review_page(request: Request, year: Year, policy: Policy = "first", source: ChangeSource = None,
                    change_type: ChangeType = None, watched: Watched = False, text: Text = None,
                    page_number: Annotated[int, Query(alias="page", ge=1, le=100000)] = 1):
        chosen = filters(source, change_type, watched, text)
        report = answers.review_report(review_of(year, policy), **chosen)
        return report_page(request, report, "review", page_number, chosen, fixed={"policy": policy})

    # --- HH PPS --------------------------------------------------------------------------------

    @app.get("/api/params/{on}", tags=["hh pps"], responses=ERRORS)
    def api_params(on: Annotated[date, Path(description="YYYY-MM-DD")], known_on: KnownOn = None) -> JSONResponse:
        """The HH PPS parameters in force on a date, cited (``hhkb params DATE --json``)."""
        return JSONResponse(answers.jsonable(ask(answers.params_answer, on, known_on=known_on)))

    @app.get("/params", response_class=HTMLResponse, include_in_schema=False)
    def params_form(on: Annotated[date | None, Query()] = None, known_on: KnownOn = None):
        try:
            answer = ask(answers.params_answer, on or date.today(), known_on=known_on)
        except WebError as error:
            if on is not None:
                raise
            return page("web/params.html.j2", answer=None, problem=error.message, on=date.today(), known_on=known_on)
        return page("web/params.html.j2", answer=answer, problem=None, on=on, known_on=known_on)

    @app.get("/params/{on}", response_class=HTMLResponse, include_in_schema=False)
    def params_page(on: Annotated[date, Path()], known_on: KnownOn = None):
        return params_form(on, known_on)

    Hipps = Annotated[str, Path(pattern=HIPPS_PATTERN, description="A PDGM HIPPS code, e.g. 1FC11")]

    @app.get("/api/hipps/{code}", tags=["hh pps"], responses=ERRORS)
    def api_hipps(code: Hipps, as_of: AsOf = None) -> JSONResponse:
        """A HIPPS code's positions, and its weight and LUPA threshold by year (``hhkb hipps X --json``)."""
        return JSONResponse(answers.jsonable(ask(answers.hipps_answer, code, as_of=as_of)))

    @app.get("/hipps/{code}", response_class=HTMLResponse, include_in_schema=False)
    def hipps_page(code: Hipps, as_of: AsOf = None):
        answer = answers.jsonable(ask(answers.hipps_answer, code, as_of=as_of))
        return page("web/hipps.html.j2", answer=answer, chart=pages.weight_chart(answer["years"], answer["hipps"]))

    Cbsa = Annotated[str, Path(pattern=CBSA_PATTERN, description="A five-digit CBSA (or 999xx rural state code)")]

    @app.get("/api/cbsa/{cbsa}", tags=["hh pps"], responses=ERRORS)
    def api_cbsa(cbsa: Cbsa, as_of: AsOf = None, policy: Policy = "refuse") -> JSONResponse:
        """A CBSA's wage index by year, duplicate rows shown (``hhkb wage-index CBSA --json``)."""
        return JSONResponse(answers.jsonable(ask(answers.wage_index_answer, cbsa, as_of=as_of, policy=policy)))

    @app.get("/cbsa/{cbsa}", response_class=HTMLResponse, include_in_schema=False)
    def cbsa_page(cbsa: Cbsa, as_of: AsOf = None, policy: Policy = "refuse"):
        answer = ask(answers.wage_index_answer, cbsa, as_of=as_of, policy=policy)
        return page("web/cbsa.html.j2", answer=answer)

    Kind = Annotated[str | None, Query(max_length=40, description="Only entries of this kind")]

    @app.get("/api/rules", tags=["hh pps"], responses=ERRORS)
    def api_rules(kind: Kind = None) -> JSONResponse:
        """The regulation catalogue (``hhkb rules --json``)."""
        return JSONResponse(answers.jsonable(ask(answers.rules_answer, kind)))

    @app.get("/rules", response_class=HTMLResponse, include_in_schema=False)
    def rules_page(kind: Kind = None):
        return page("web/rules.html.j2", answer=ask(answers.rules_answer, kind))

    def openapi() -> dict:
        """The schema, with the 400 error shape in place of the framework's 422 validation body."""
        if app.openapi_schema:
            return app.openapi_schema
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
        for operations in schema["paths"].values():
            for operation in operations.values():
                operation["responses"].pop("422", None)
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi
    auth.install(app, engine, settings or auth.WebSettings.from_environment(),
                 lambda status, title, message: ErrorBody(error=ErrorDetail(status=status, title=title,
                                                                            message=message)).model_dump())
    # The kept answers stand outside the session layer, so they see every cookie it sets: an answer
    # that starts a session (a form with its CSRF token) is never kept for another visitor.
    app.add_middleware(AnswerCache, state=knowledge_state)
    from kb.web import account_pages, claims_pages  # they use this module's error shapes

    app.include_router(account_pages.router())
    app.include_router(claims_pages.router())
    return app

