"""hardening: one outbox for every outbound message (retries per row, dead letters), sign-in
throttle counters, named leases; Telegram-provisioned agents deactivated

Revision ID: 4e8b1d0c7a52
Revises: 0e5b7a3c9d21 (0005_workspace, the head when this was written)
Create Date: 2026-12-01 21:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '4e8b1d0c7a52'
down_revision = '0e5b7a3c9d21'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('target', sa.String(length=40), nullable=False),
    sa.Column('handoff_id', sa.Integer(), nullable=True),
    sa.Column('order_key', sa.String(length=160), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=300), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('dead_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_outbox_waiting', 'outbox', ['target', 'delivered_at', 'dead_at', 'id'], unique=False)
    op.create_index('ix_outbox_dead', 'outbox', ['dead_at'], unique=False)
    # rows still waiting in the old agent-side outbox move over, in order, per handoff
    op.execute("INSERT INTO outbox (target, handoff_id, order_key, payload, created_at, attempts) "
               "SELECT target, handoff_id, CASE WHEN handoff_id IS NULL THEN NULL "
               "ELSE 'handoff:' || CAST(handoff_id AS VARCHAR) END, payload, created_at, 0 "
               "FROM agent_outbox WHERE delivered_at IS NULL ORDER BY id")
    op.drop_index('ix_outbox_pending', table_name='agent_outbox')
    op.drop_table('agent_outbox')
    op.create_table('sign_in_throttle',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('last_failure_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('not_before', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('leases',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('owner', sa.String(length=64), nullable=True),
    sa.Column('until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cursor', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('name')
    )
    # Anyone who pressed Claim in the agents' group used to become an agent "tg-<id>" without
    # a password. Only admins make agents now: those accounts stop until an admin re-activates one.
    op.execute("UPDATE agents SET active = 0 WHERE name LIKE 'tg-%' AND password_hash IS NULL")


def downgrade() -> None:
    op.drop_table('leases')
    op.drop_table('sign_in_throttle')
    op.create_table('agent_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('target', sa.String(length=16), nullable=False),
    sa.Column('handoff_id', sa.Integer(), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_outbox_pending', 'agent_outbox', ['target', 'delivered_at', 'id'], unique=False)
    op.execute("INSERT INTO agent_outbox (target, handoff_id, payload, created_at, attempts) "
               "SELECT target, handoff_id, payload, created_at, attempts FROM outbox "
               "WHERE delivered_at IS NULL AND dead_at IS NULL AND target NOT LIKE 'customer:%' "
               "ORDER BY id")
    op.drop_index('ix_outbox_dead', table_name='outbox')
    op.drop_index('ix_outbox_waiting', table_name='outbox')
    op.drop_table('outbox')
