"""HH PPS pricer tables

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 18:38:59.965816
"""
from alembic import op
import sqlalchemy as sa
import kb.models


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('hhpps_case_mix',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('release_id', sa.Integer(), nullable=False),
    sa.Column('hipps', sa.String(length=5), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('weight', kb.models.ExactDecimal(), nullable=False),
    sa.Column('lupa_threshold', sa.Integer(), nullable=False),
    sa.Column('source_row', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['release_id'], ['release.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('release_id', 'hipps', name='uq_hhpps_case_mix_release_hipps')
    )
    with op.batch_alter_table('hhpps_case_mix', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hhpps_case_mix_hipps'), ['hipps'], unique=False)
        batch_op.create_index(batch_op.f('ix_hhpps_case_mix_release_id'), ['release_id'], unique=False)

    op.create_table('hhpps_revenue_rate',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('release_id', sa.Integer(), nullable=False),
    sa.Column('revenue_code', sa.String(length=4), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('visit_rate', kb.models.ExactDecimal(), nullable=False),
    sa.Column('visit_rate_rural', kb.models.ExactDecimal(), nullable=False),
    sa.Column('visit_rate_no_quality', kb.models.ExactDecimal(), nullable=False),
    sa.Column('visit_rate_no_quality_rural', kb.models.ExactDecimal(), nullable=False),
    sa.Column('unit_rate', kb.models.ExactDecimal(), nullable=False),
    sa.Column('unit_rate_rural', kb.models.ExactDecimal(), nullable=False),
    sa.Column('unit_rate_no_quality', kb.models.ExactDecimal(), nullable=False),
    sa.Column('unit_rate_no_quality_rural', kb.models.ExactDecimal(), nullable=False),
    sa.Column('source_row', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['release_id'], ['release.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('release_id', 'revenue_code', name='uq_hhpps_revenue_rate_release_code')
    )
    with op.batch_alter_table('hhpps_revenue_rate', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hhpps_revenue_rate_release_id'), ['release_id'], unique=False)

    op.create_table('hhpps_rural_addon',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('release_id', sa.Integer(), nullable=False),
    sa.Column('county_fips', sa.String(length=5), nullable=False),
    sa.Column('category', sa.String(length=1), nullable=False),
    sa.Column('source_row', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['release_id'], ['release.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('release_id', 'county_fips', name='uq_hhpps_rural_addon_release_county')
    )
    with op.batch_alter_table('hhpps_rural_addon', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hhpps_rural_addon_county_fips'), ['county_fips'], unique=False)
        batch_op.create_index(batch_op.f('ix_hhpps_rural_addon_release_id'), ['release_id'], unique=False)

    op.create_table('hhpps_wage_index',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('release_id', sa.Integer(), nullable=False),
    sa.Column('cbsa', sa.String(length=5), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('wage_index', kb.models.ExactDecimal(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('name_flag', sa.String(length=200), nullable=True),
    sa.Column('imputed_floor_wage_index', kb.models.ExactDecimal(), nullable=True),
    sa.Column('reclassified_wage_index', kb.models.ExactDecimal(), nullable=True),
    sa.Column('rural_floor_wage_index', kb.models.ExactDecimal(), nullable=True),
    sa.Column('size', sa.String(length=20), nullable=True),
    sa.Column('source_row', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['release_id'], ['release.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('hhpps_wage_index', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hhpps_wage_index_cbsa'), ['cbsa'], unique=False)
        batch_op.create_index(batch_op.f('ix_hhpps_wage_index_release_id'), ['release_id'], unique=False)

    with op.batch_alter_table('release', schema=None) as batch_op:
        batch_op.add_column(sa.Column('regulation', sa.String(length=40), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('release', schema=None) as batch_op:
        batch_op.drop_column('regulation')

    with op.batch_alter_table('hhpps_wage_index', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hhpps_wage_index_release_id'))
        batch_op.drop_index(batch_op.f('ix_hhpps_wage_index_cbsa'))

    op.drop_table('hhpps_wage_index')
    with op.batch_alter_table('hhpps_rural_addon', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hhpps_rural_addon_release_id'))
        batch_op.drop_index(batch_op.f('ix_hhpps_rural_addon_county_fips'))

    op.drop_table('hhpps_rural_addon')
    with op.batch_alter_table('hhpps_revenue_rate', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hhpps_revenue_rate_release_id'))

    op.drop_table('hhpps_revenue_rate')
    with op.batch_alter_table('hhpps_case_mix', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hhpps_case_mix_release_id'))
        batch_op.drop_index(batch_op.f('ix_hhpps_case_mix_hipps'))

    op.drop_table('hhpps_case_mix')
