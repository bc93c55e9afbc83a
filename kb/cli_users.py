"""Commands for the web app's accounts and records: ``hhkb users add|list|disable|enable|set-role|
grant|revoke|password``, ``hhkb audit`` (the audit log as CSV) and ``hhkb signed-review`` (a review
exactly as it was signed).

Registered on the ``hhkb`` group by :func:`register`. Passwords are read from a hidden prompt (or
from ``HHKB_PASSWORD`` for scripts), never from the command line where ``ps`` would show them.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click
from rich.table import Table

from kb import accounts, audit
from kb.answers import audit_csv
from kb.cli_common import console
from kb.database import transaction
from reports.output import write_atomically
from reports.safety import echo
from sqlmodel import Session


def reports_account_errors(command):
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except accounts.AccountError as error:
            echo(f"error: {error}", err=True)
            sys.exit(2)

    return wrapper


def _describe(account: accounts.Account) -> str:
    agencies = ", ".join(account.agencies) or "none"
    return (f"{account.username}: {account.role}" + (" (disabled)" if account.disabled else "")
            + f"; agencies {agencies}")


@click.group("users")
def users_group():
    """Accounts of the web app (hhkb serve): roles viewer < coder < compliance < admin, and agencies."""


@users_group.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(accounts.ROLES), default="viewer", show_default=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, envvar="HHKB_PASSWORD",
              help="Asked for (hidden) when HHKB_PASSWORD is not set; at least 12 characters.")
@click.pass_obj
@reports_account_errors
def users_add(obj, username, role, password):
    """Add an account; its password is kept only as an Argon2id hash.

    Example: hhkb users add alice --role compliance
    """
    with transaction(obj.writer) as session:
        echo("added " + _describe(accounts.add_account(session, username, password, role=role)))


@users_group.command("list")
@click.pass_obj
def users_list(obj):
    """The accounts, their roles and agencies.

    Example: hhkb users list
    """
    table = Table("user", "role", "disabled", "agencies")
    with Session(obj.engine) as session:
        for account in accounts.list_accounts(session):
            table.add_row(account.username, account.role, "yes" if account.disabled else "",
                          ", ".join(account.agencies))
    console.print(table)


@users_group.command("disable")
@click.argument("username")
@click.pass_obj
@reports_account_errors
def users_disable(obj, username):
    """Disable an account: it can no longer log in (its record stays for the audit log).

    Example: hhkb users disable alice
    """
    with transaction(obj.writer) as session:
        echo(_describe(accounts.set_disabled(session, username, True)))


@users_group.command("enable")
@click.argument("username")
@click.pass_obj
@reports_account_errors
def users_enable(obj, username):
    """Enable a disabled account again.

    Example: hhkb users enable alice
    """
    with transaction(obj.writer) as session:
        echo(_describe(accounts.set_disabled(session, username, False)))


@users_group.command("set-role")
@click.argument("username")
@click.argument("role", type=click.Choice(accounts.ROLES))
@click.pass_obj
@reports_account_errors
def users_set_role(obj, username, role):
    """Change an account's role.

    Example: hhkb users set-role alice coder
    """
    with transaction(obj.writer) as session:
        echo(_describe(accounts.set_role(session, username, role)))


@users_group.command("password")
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, envvar="HHKB_PASSWORD",
              help="Asked for (hidden) when HHKB_PASSWORD is not set.")
@click.pass_obj
@reports_account_errors
def users_password(obj, username, password):
    """Set an account's password.

    Example: hhkb users password alice
    """
    with transaction(obj.writer) as session:
        accounts.set_password(session, username, password)
    echo(f"password of {username} changed")


@users_group.command("grant")
@click.argument("username")
@click.argument("agency")
@click.pass_obj
@reports_account_errors
def users_grant(obj, username, agency):
    """Let an account see an agency's claims (the agency's NPI).

    Example: hhkb users grant alice 9000000018
    """
    with transaction(obj.writer) as session:
        echo(_describe(accounts.grant(session, username, agency)))


@users_group.command("revoke")
@click.argument("username")
@click.argument("agency")
@click.pass_obj
@reports_account_errors
def users_revoke(obj, username, agency):
    """Take an agency back from an account.

    Example: hhkb users revoke alice 9000000018
    """
    with transaction(obj.writer) as session:
        echo(_describe(accounts.revoke(session, username, agency)))


@click.command("audit")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="The CSV file to write.")
@click.pass_obj
def audit_command(obj, out):
    """Write the web app's audit log (logins, uploads, views of claims, exports, sign-offs) as CSV.

    Example: hhkb audit --out audit.csv
    """
    with Session(obj.engine) as session:
        text = audit_csv(session)
    write_atomically(out, text)
    echo(f"wrote {out}")


@click.command("signed-review")
@click.argument("signoff_id", type=int)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="The JSON file to write.")
@click.pass_obj
def signed_review_command(obj, signoff_id, out):
    """Write a signed-off annual review exactly as it was signed (its sha256 printed to check).

    Example: hhkb signed-review 1 --out review-2024-signed.json
    """
    with Session(obj.engine) as session:
        signed = audit.signed_review(session, signoff_id)
    if signed is None:
        echo(f"error: no sign-off {signoff_id}", err=True)
        sys.exit(1)
    write_atomically(out, signed.content)
    echo(f"wrote {out}: review {signed.year} of agency {signed.agency_id}, signed by {signed.username} "
         f"({signed.role}) at {signed.signed_at.isoformat()}Z, sha256 {signed.content_sha256}")


def register(main: click.Group) -> None:
    main.add_command(users_group)
    main.add_command(audit_command)
    main.add_command(signed_review_command)
