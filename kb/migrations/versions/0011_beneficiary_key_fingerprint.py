"""beneficiary key fingerprint: the database remembers which key hashed its beneficiaries

An HMAC-SHA256 of a fixed text under the key (never the key): a claims load under another key, or
after the key file was lost and a new one made, is refused instead of giving the same beneficiaries
other hashes.

Revision ID: 0011
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'beneficiary_key_fingerprint',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )


def downgrade() -> None:
    op.drop_table('beneficiary_key_fingerprint')
