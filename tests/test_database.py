"""The schema is made by the Alembic migrations alone, and matches the models, on both databases."""

from decimal import Decimal

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from kb import database
from kb.models import ExactDecimal, SQLModel


def test_migrations_build_exactly_the_models(engine):
    assert database.current_revision(engine) == database.head_revision()
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_downgrade_to_base_and_up_again(engine):
    database.upgrade(engine, "head")
    from alembic import command

    command.downgrade(database.alembic_config(engine), "base")
    assert database.current_revision(engine) is None
    assert "release" not in sa.inspect(engine).get_table_names()
    database.upgrade(engine)
    assert database.current_revision(engine) == database.head_revision()


def test_open_database_upgrades_a_new_sqlite_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.sqlite3'}"
    engine = database.open_database(url)
    assert database.current_revision(engine) == database.head_revision()
    assert "hcpcs_version" in sa.inspect(engine).get_table_names()


def test_default_url_is_a_sqlite_file_in_the_data_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("HHKB_DATABASE_URL", raising=False)
    monkeypatch.setenv("HHKB_HOME", str(tmp_path / "home"))
    assert database.default_database_url() == f"sqlite:///{tmp_path / 'home' / 'hhkb.sqlite3'}"
    monkeypatch.setenv("HHKB_DATABASE_URL", "postgresql://somewhere/hhkb")
    assert database.default_database_url() == "postgresql://somewhere/hhkb"


def test_decimals_survive_exactly(engine):
    table = sa.Table("decimal_probe", sa.MetaData(), sa.Column("value", ExactDecimal()))
    table.create(engine)
    values = [Decimal("1.0124"), Decimal("2038.13"), Decimal("0.10000000000000000555"), Decimal("-0.749")]
    with engine.begin() as connection:
        connection.execute(table.insert(), [{"value": v} for v in values])
        read = [row[0] for row in connection.execute(sa.select(table.c.value))]
    assert read == values
    table.drop(engine)
