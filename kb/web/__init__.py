"""hhkb in a browser: ``hhkb serve`` serves :func:`create_app` (pages, and the JSON API at ``/api``)."""

from kb.web.app import create_app

__all__ = ["create_app"]
