"""web accounts, their agencies, the audit log and review sign-offs

Local accounts of the web app (an Argon2id hash, never the password), the agencies each may see,
an append-only audit log and append-only sign-offs of a year's review. "Append-only" is the
database's own rule: triggers refuse an UPDATE or a DELETE of either table on SQLite and PostgreSQL.

Revision ID: 0010
Revises: 0009
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

APPEND_ONLY = ('audit_event', 'review_signoff')


def upgrade() -> None:
    op.create_table('web_account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('username')
    )
    op.create_table('web_account_agency',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('agency_id', sa.String(length=20), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['web_account.id'], ),
    sa.PrimaryKeyConstraint('account_id', 'agency_id')
    )
    op.create_table('audit_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('agency_id', sa.String(length=20), nullable=True),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('detail', sa.String(length=400), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_event_at'), ['at'], unique=False)
    op.create_table('review_signoff',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agency_id', sa.String(length=20), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('signed_at', sa.DateTime(), nullable=False),
    sa.Column('content_sha256', sa.String(length=64), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('review_signoff', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_review_signoff_agency_id'), ['agency_id'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("CREATE FUNCTION hhkb_append_only() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$")
        for table in APPEND_ONLY:
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION hhkb_append_only()")
    else:
        for table in APPEND_ONLY:
            for action in ('UPDATE', 'DELETE'):
                op.execute(f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                           f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        op.execute("DROP FUNCTION hhkb_append_only()")
    else:
        for table in APPEND_ONLY:
            for action in ('update', 'delete'):
                op.execute(f"DROP TRIGGER {table}_no_{action}")
    with op.batch_alter_table('review_signoff', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_review_signoff_agency_id'))
    op.drop_table('review_signoff')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_event_at'))
    op.drop_table('audit_event')
    op.drop_table('web_account_agency')
    op.drop_table('web_account')
