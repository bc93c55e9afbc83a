"""supplied pricing inputs: NOA receipt dates and readmissions by claim, VBP factors by agency and year

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 10:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import kb.models


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('claim_supplied_input',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('release_id', sa.Integer(), nullable=False),
    sa.Column('agency_id', sa.String(length=20), nullable=False),
    sa.Column('claim_id', sa.String(length=40), nullable=False),
    sa.Column('noa_received', sa.Date(), nullable=True),
    sa.Column('readmitted_in_period', sa.Boolean(), nullable=True),
    sa.Column('source_row', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['release_id'], ['release.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('release_id', 'agency_id', 'claim_id', name='uq_claim_supplied_input_release_claim')
    )
    with op.batch_alter_table('claim_supplied_input', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_claim_supplied_input_release_id'), ['release_id'], unique=False)

    op.create_table('agency_vbp_factor',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('release_id', sa.Integer(), nullable=False),
    sa.Column('agency_id', sa.String(length=20), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('factor', kb.models.ExactDecimal(), nullable=False),
    sa.Column('source_row', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['release_id'], ['release.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('release_id', 'agency_id', 'year', name='uq_agency_vbp_factor_release_year')
    )
    with op.batch_alter_table('agency_vbp_factor', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agency_vbp_factor_release_id'), ['release_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_agency_vbp_factor_agency_id'), ['agency_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('agency_vbp_factor', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agency_vbp_factor_agency_id'))
        batch_op.drop_index(batch_op.f('ix_agency_vbp_factor_release_id'))
    op.drop_table('agency_vbp_factor')
    with op.batch_alter_table('claim_supplied_input', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_claim_supplied_input_release_id'))
    op.drop_table('claim_supplied_input')
