"""hcpcs correction changes: each correction row keeps what it changes, so it can be applied again

A corrections document that arrives before its release, or a release that arrives after files
published later, makes the HCPCS versions be recomputed from the stored files in publication
order; the field changes of each correction row (and the release a revert goes back to) are kept
for that.

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('hcpcs_correction') as batch_op:
        batch_op.add_column(sa.Column('changes', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('revert_to_year', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('hcpcs_correction') as batch_op:
        batch_op.drop_column('revert_to_year')
        batch_op.drop_column('changes')
