"""微信客服 (WeCom customer service): sync_msg cursors with their lease, customers' sessions, the reply outbox

Revision ID: 9a4d7c2e6b13
Revises: 5c1e2a7d9b01
Create Date: 2026-11-29 22:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '9a4d7c2e6b13'
down_revision = '5c1e2a7d9b01'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('kf_cursors',
    sa.Column('open_kfid', sa.String(length=64), nullable=False),
    sa.Column('cursor', sa.String(length=128), nullable=True),
    sa.Column('sync_token', sa.String(length=160), nullable=True),
    sa.Column('token_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('requested', sa.Integer(), nullable=False),
    sa.Column('served', sa.Integer(), nullable=False),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('open_kfid')
    )
    op.create_table('kf_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('open_kfid', sa.String(length=64), nullable=False),
    sa.Column('external_userid', sa.String(length=128), nullable=False),
    sa.Column('service_state', sa.Integer(), nullable=True),
    sa.Column('state_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('servicer_userid', sa.String(length=64), nullable=True),
    sa.Column('last_customer_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('replies', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('open_kfid', 'external_userid', name='uq_kf_session')
    )
    op.create_index('ix_kf_sessions_user', 'kf_sessions', ['external_userid', 'last_customer_at'],
                    unique=False)
    op.create_table('kf_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('open_kfid', sa.String(length=64), nullable=False),
    sa.Column('external_userid', sa.String(length=128), nullable=False),
    sa.Column('conversation_id', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('code', sa.String(length=128), nullable=True),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('msgid', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('reserved', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_kf_outbox_status', 'kf_outbox', ['status', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_kf_outbox_status', table_name='kf_outbox')
    op.drop_table('kf_outbox')
    op.drop_index('ix_kf_sessions_user', table_name='kf_sessions')
    op.drop_table('kf_sessions')
    op.drop_table('kf_cursors')
