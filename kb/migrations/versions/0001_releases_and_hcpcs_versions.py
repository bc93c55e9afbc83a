"""releases and HCPCS versions

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 18:36:42.565783
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('hcpcs_code',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=5), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code')
    )
    op.create_table('release',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('label', sa.String(length=80), nullable=False),
    sa.Column('file_format', sa.String(length=20), nullable=False),
    sa.Column('file_name', sa.String(length=400), nullable=False),
    sa.Column('member', sa.String(length=400), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('effective_date', sa.Date(), nullable=False),
    sa.Column('effective_date_basis', sa.String(length=400), nullable=False),
    sa.Column('published_date', sa.Date(), nullable=False),
    sa.Column('published_date_basis', sa.String(length=400), nullable=False),
    sa.Column('loader_version', sa.String(length=40), nullable=False),
    sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('record_count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'sha256', name='uq_release_source_sha256')
    )
    with op.batch_alter_table('release', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_release_source'), ['source'], unique=False)

    op.create_table('hcpcs_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code_id', sa.Integer(), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('effective_to', sa.Date(), nullable=True),
    sa.Column('effective_to_known_from', sa.Date(), nullable=True),
    sa.Column('known_from', sa.Date(), nullable=False),
    sa.Column('known_to', sa.Date(), nullable=True),
    sa.Column('first_release_id', sa.Integer(), nullable=False),
    sa.Column('action_code', sa.String(length=1), nullable=False),
    sa.Column('action_effective_date', sa.Date(), nullable=True),
    sa.Column('long_description', sa.Text(), nullable=False),
    sa.Column('short_description', sa.String(length=40), nullable=False),
    sa.Column('pricing_indicators', sa.String(length=20), nullable=False),
    sa.Column('multiple_pricing_indicator', sa.String(length=1), nullable=False),
    sa.Column('coverage_issues_refs', sa.String(length=30), nullable=False),
    sa.Column('carriers_manual_refs', sa.String(length=40), nullable=False),
    sa.Column('statute', sa.String(length=10), nullable=False),
    sa.Column('lab_certifications', sa.String(length=40), nullable=False),
    sa.Column('cross_references', sa.String(length=40), nullable=False),
    sa.Column('coverage_code', sa.String(length=1), nullable=False),
    sa.Column('asc_group', sa.String(length=2), nullable=False),
    sa.Column('asc_effective_date', sa.Date(), nullable=True),
    sa.Column('opps_group', sa.String(length=3), nullable=False),
    sa.Column('opps_payment_indicator', sa.String(length=1), nullable=False),
    sa.Column('opps_effective_date', sa.Date(), nullable=True),
    sa.Column('processing_note', sa.String(length=4), nullable=False),
    sa.Column('betos', sa.String(length=3), nullable=False),
    sa.Column('type_of_service', sa.String(length=10), nullable=False),
    sa.Column('anesthesia_base_units', sa.String(length=3), nullable=False),
    sa.Column('added_date', sa.Date(), nullable=True),
    sa.Column('termination_date', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['code_id'], ['hcpcs_code.id'], ),
    sa.ForeignKeyConstraint(['first_release_id'], ['release.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('hcpcs_version', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hcpcs_version_code_id'), ['code_id'], unique=False)

    op.create_table('hcpcs_listing',
    sa.Column('release_id', sa.Integer(), nullable=False),
    sa.Column('code_id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('action_code', sa.String(length=1), nullable=False),
    sa.Column('action_effective_date', sa.Date(), nullable=True),
    sa.Column('sequence_number', sa.Integer(), nullable=False),
    sa.Column('source_line', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['code_id'], ['hcpcs_code.id'], ),
    sa.ForeignKeyConstraint(['release_id'], ['release.id'], ),
    sa.ForeignKeyConstraint(['version_id'], ['hcpcs_version.id'], ),
    sa.PrimaryKeyConstraint('release_id', 'code_id')
    )
    with op.batch_alter_table('hcpcs_listing', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hcpcs_listing_version_id'), ['version_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('hcpcs_listing', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hcpcs_listing_version_id'))

    op.drop_table('hcpcs_listing')
    with op.batch_alter_table('hcpcs_version', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hcpcs_version_code_id'))

    op.drop_table('hcpcs_version')
    with op.batch_alter_table('release', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_release_source'))

    op.drop_table('release')
    op.drop_table('hcpcs_code')
