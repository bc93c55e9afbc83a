"""release notes: what a release's file lacked or held beyond what was read

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 20:05:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('release') as batch:
        batch.add_column(sa.Column('notes', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('release') as batch:
        batch.drop_column('notes')
