"""agency claims

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 18:42:57.122294
"""
from alembic import op
import sqlalchemy as sa
import kb.models


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('claim',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('release_id', sa.Integer(), nullable=False),
    sa.Column('agency_id', sa.String(length=20), nullable=False),
    sa.Column('claim_id', sa.String(length=40), nullable=False),
    sa.Column('type_of_bill', sa.String(length=4), nullable=False),
    sa.Column('period_from', sa.Date(), nullable=False),
    sa.Column('period_through', sa.Date(), nullable=False),
    sa.Column('admission_date', sa.Date(), nullable=True),
    sa.Column('admission_source', sa.String(length=2), nullable=True),
    sa.Column('patient_status', sa.String(length=2), nullable=True),
    sa.Column('hipps', sa.String(length=5), nullable=True),
    sa.Column('cbsa', sa.String(length=5), nullable=True),
    sa.Column('fips_county', sa.String(length=5), nullable=True),
    sa.Column('quality_data_submitted', sa.Boolean(), nullable=False),
    sa.Column('review_tracking_number', sa.String(length=50), nullable=True),
    sa.Column('state', sa.String(length=2), nullable=True),
    sa.Column('diagnoses', sa.String(length=400), nullable=False),
    sa.Column('condition_codes', sa.String(length=100), nullable=False),
    sa.Column('occurrence_codes', sa.String(length=400), nullable=False),
    sa.Column('value_codes', sa.String(length=400), nullable=False),
    sa.Column('beneficiary_key', sa.String(length=64), nullable=False),
    sa.Column('source_segment', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['release_id'], ['release.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('agency_id', 'claim_id', 'type_of_bill', name='uq_claim_agency_claim_bill')
    )
    with op.batch_alter_table('claim', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_claim_agency_id'), ['agency_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_claim_cbsa'), ['cbsa'], unique=False)
        batch_op.create_index(batch_op.f('ix_claim_hipps'), ['hipps'], unique=False)
        batch_op.create_index(batch_op.f('ix_claim_period_from'), ['period_from'], unique=False)
        batch_op.create_index(batch_op.f('ix_claim_release_id'), ['release_id'], unique=False)

    op.create_table('claim_line',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('claim_pk', sa.Integer(), nullable=False),
    sa.Column('line_number', sa.Integer(), nullable=False),
    sa.Column('revenue_code', sa.String(length=4), nullable=False),
    sa.Column('hcpcs', sa.String(length=5), nullable=True),
    sa.Column('hipps', sa.String(length=5), nullable=True),
    sa.Column('modifiers', sa.String(length=20), nullable=False),
    sa.Column('units', kb.models.ExactDecimal(), nullable=False),
    sa.Column('charge', kb.models.ExactDecimal(), nullable=False),
    sa.Column('service_date', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['claim_pk'], ['claim.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('claim_line', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_claim_line_claim_pk'), ['claim_pk'], unique=False)
        batch_op.create_index(batch_op.f('ix_claim_line_hcpcs'), ['hcpcs'], unique=False)
        batch_op.create_index(batch_op.f('ix_claim_line_revenue_code'), ['revenue_code'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('claim_line', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_claim_line_revenue_code'))
        batch_op.drop_index(batch_op.f('ix_claim_line_hcpcs'))
        batch_op.drop_index(batch_op.f('ix_claim_line_claim_pk'))

    op.drop_table('claim_line')
    with op.batch_alter_table('claim', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_claim_release_id'))
        batch_op.drop_index(batch_op.f('ix_claim_period_from'))
        batch_op.drop_index(batch_op.f('ix_claim_hipps'))
        batch_op.drop_index(batch_op.f('ix_claim_cbsa'))
        batch_op.drop_index(batch_op.f('ix_claim_agency_id'))

    op.drop_table('claim')
