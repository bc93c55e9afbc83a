"""The Jinja2 environments every report renders with: HTML templates autoescaped, Markdown
templates with every ``{{ value }}`` passed through the Markdown escape of ``reports.safety``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from reports.safety import markdown_text

TEMPLATES = Path(__file__).resolve().parent / "templates"

_OPTIONS = dict(undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


@lru_cache(maxsize=1)
def environment() -> Environment:
    """Templates from ``reports/templates``: HTML autoescaped, an unknown name is an error."""
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=True, default=False),
        **_OPTIONS,
    )


@lru_cache(maxsize=1)
def markdown_environment() -> Environment:
    """Templates ``*.md.j2``: every expression's value is written as Markdown text (escaped), so
    no value from the data can add markup; the template's own text is the only markup."""
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=False, finalize=markdown_text, **_OPTIONS)


def render(template: str, **context) -> str:
    chosen = markdown_environment() if template.endswith(".md.j2") else environment()
    return chosen.get_template(template).render(**context)
