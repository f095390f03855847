"""The service team's workspace: ticket search/assignment columns, SLA clocks, return calls,
satisfaction with its source, the bot's misses, and the indexes the reports read through

Revision ID: 0e5b7a3c9d21
Revises: 9a4d7c2e6b13
Create Date: 2026-12-01 22:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0e5b7a3c9d21'
down_revision = '9a4d7c2e6b13'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tickets') as batch:
        batch.add_column(sa.Column('phone_last4', sa.String(length=4), nullable=True))
        batch.add_column(sa.Column('assignee_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True))
        batch.create_foreign_key('tickets_assignee_id_fkey', 'agents', ['assignee_id'], ['id'])
    op.create_index('ix_tickets_created', 'tickets', ['created_at'], unique=False)
    op.create_index('ix_tickets_phone_last4', 'tickets', ['phone_last4'], unique=False)
    op.create_index('ix_tickets_order', 'tickets', ['order_id'], unique=False)
    op.create_index('ix_tickets_assignee', 'tickets', ['assignee_id', 'status'], unique=False)
    op.create_index('ix_tickets_kind_status', 'tickets', ['kind', 'status', 'id'], unique=False)
    op.create_index('ix_messages_author_at', 'messages', ['author', 'at'], unique=False)
    with op.batch_alter_table('handoffs') as batch:
        batch.add_column(sa.Column('first_reply_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_handoffs_created', 'handoffs', ['created_at'], unique=False)

    op.create_table('sla_clocks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('clock', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('calendar', sa.Integer(), nullable=False),
    sa.Column('budget_s', sa.Float(), nullable=False),
    sa.Column('used_s', sa.Float(), nullable=False),
    sa.Column('running_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('stopped_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('breached_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('ticket_id', 'clock', name='uq_sla_clock')
    )
    op.create_index('ix_sla_clocks_due', 'sla_clocks', ['state', 'due_at'], unique=False)
    op.create_table('return_calls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=12), nullable=True),
    sa.Column('score', sa.Integer(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], ),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_return_calls_status_due', 'return_calls', ['status', 'due_at'], unique=False)
    op.create_index('ix_return_calls_ticket', 'return_calls', ['ticket_id'], unique=False)
    op.create_index('ix_return_calls_created', 'return_calls', ['created_at'], unique=False)
    op.create_table('satisfaction',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('handoff_id', sa.Integer(), nullable=True),
    sa.Column('conversation_id', sa.String(length=128), nullable=True),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=12), nullable=False),
    sa.Column('score', sa.Integer(), nullable=True),
    sa.Column('asked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_satisfaction_asked', 'satisfaction', ['asked_at'], unique=False)
    op.create_index('ix_satisfaction_ticket', 'satisfaction', ['ticket_id'], unique=False)
    op.create_index('ix_satisfaction_conversation', 'satisfaction', ['conversation_id', 'id'],
                    unique=False)
    op.create_table('bot_misses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.String(length=128), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_bot_misses_at', 'bot_misses', ['at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_bot_misses_at', table_name='bot_misses')
    op.drop_table('bot_misses')
    op.drop_index('ix_satisfaction_conversation', table_name='satisfaction')
    op.drop_index('ix_satisfaction_ticket', table_name='satisfaction')
    op.drop_index('ix_satisfaction_asked', table_name='satisfaction')
    op.drop_table('satisfaction')
    op.drop_index('ix_return_calls_created', table_name='return_calls')
    op.drop_index('ix_return_calls_ticket', table_name='return_calls')
    op.drop_index('ix_return_calls_status_due', table_name='return_calls')
    op.drop_table('return_calls')
    op.drop_index('ix_sla_clocks_due', table_name='sla_clocks')
    op.drop_table('sla_clocks')
    op.drop_index('ix_handoffs_created', table_name='handoffs')
    with op.batch_alter_table('handoffs') as batch:
        batch.drop_column('first_reply_at')
    op.drop_index('ix_messages_author_at', table_name='messages')
    for name in ('ix_tickets_kind_status', 'ix_tickets_assignee', 'ix_tickets_order',
                 'ix_tickets_phone_last4', 'ix_tickets_created'):
        op.drop_index(name, table_name='tickets')
    with op.batch_alter_table('tickets') as batch:
        batch.drop_constraint('tickets_assignee_id_fkey', type_='foreignkey')
        for column in ('escalated_at', 'closed_at', 'resolved_at', 'assignee_id', 'phone_last4'):
            batch.drop_column(column)
