"""Alembic environment: runs the migrations on the connection (or engine) that ``kb.database`` hands over."""

from alembic import context

from kb.models import SQLModel

target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:  # kb.database.upgrade: in its transaction, holding the write lock
        _run(connection)
        return
    with context.config.attributes["engine"].begin() as connection:
        _run(connection)


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
