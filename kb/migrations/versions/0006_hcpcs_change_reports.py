"""hcpcs change reports: CMS's own list of what a release changed, stored as its own source

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 20:15:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'hcpcs_change_report_row',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('release_id', sa.Integer(), nullable=False),
        sa.Column('code', sa.String(length=5), nullable=False),
        sa.Column('action_code', sa.String(length=1), nullable=False),
        sa.Column('change_description', sa.Text(), nullable=False),
        sa.Column('short_description', sa.Text(), nullable=True),
        sa.Column('long_description', sa.Text(), nullable=True),
        sa.Column('source_line', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['release_id'], ['release.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_hcpcs_change_report_row_release_id', 'hcpcs_change_report_row', ['release_id'])
    op.create_index('ix_hcpcs_change_report_row_code', 'hcpcs_change_report_row', ['code'])


def downgrade() -> None:
    op.drop_index('ix_hcpcs_change_report_row_code', table_name='hcpcs_change_report_row')
    op.drop_index('ix_hcpcs_change_report_row_release_id', table_name='hcpcs_change_report_row')
    op.drop_table('hcpcs_change_report_row')
