"""HCPCS corrections

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 18:42:53.243242
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('hcpcs_correction',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('release_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=5), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('action_text', sa.String(length=400), nullable=False),
    sa.Column('source_row', sa.Integer(), nullable=False),
    sa.Column('effective_date', sa.Date(), nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.String(length=400), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['release_id'], ['release.id'], ),
    sa.ForeignKeyConstraint(['version_id'], ['hcpcs_version.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('hcpcs_correction', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hcpcs_correction_code'), ['code'], unique=False)
        batch_op.create_index(batch_op.f('ix_hcpcs_correction_release_id'), ['release_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('hcpcs_correction', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hcpcs_correction_release_id'))
        batch_op.drop_index(batch_op.f('ix_hcpcs_correction_code'))

    op.drop_table('hcpcs_correction')
