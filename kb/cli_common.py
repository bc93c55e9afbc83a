"""What every ``hhkb`` command shares: the console it prints to, and how it reports a problem
(one line on stderr and an exit status).

Status 2: bad input (a file, a row, a field: ``LoadError``). Status 1: the knowledge base cannot
answer (a release, a parameter or a price it does not have).
"""

from __future__ import annotations

import sys
from functools import wraps

import click
from rich.console import Console

from kb.parameters import ParameterError
from kb.pricing import PricingError
from kb.review import ReviewError
from loaders.errors import LoadError


# A terminal gets tables fitted to its width; a pipe or file gets lines long enough not to wrap.
console = Console(width=None if sys.stdout.isatty() else 200)


def reports_errors(command):
    @wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except LoadError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(2)
        except (ParameterError, ReviewError, PricingError) as error:
            click.echo(f"error: {error.args[0] if error.args else error}", err=True)
            sys.exit(1)

    return wrapper
