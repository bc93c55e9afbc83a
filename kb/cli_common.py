"""What every ``hhkb`` command shares: the console it prints to, and how it reports a problem
(one line on stderr and an exit status).

Status 2: bad input (a file, a row, a field: ``LoadError``). Status 1: the knowledge base cannot
answer (a release, a parameter or a price it does not have).
"""

from __future__ import annotations

import sys
from functools import wraps


from kb.parameters import ParameterError
from kb.pricing import PricingError
from kb.review import ReviewError
from loaders.errors import LoadError
from reports.safety import echo, make_console

# Prints text as it is (never as markup): see reports.safety.
console = make_console()


def reports_errors(command):
    @wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except LoadError as error:
            echo(f"error: {error}", err=True)
            sys.exit(2)
        except (ParameterError, ReviewError, PricingError) as error:
            echo(f"error: {error.args[0] if error.args else error}", err=True)
            sys.exit(1)

    return wrapper
