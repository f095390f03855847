"""retraining from real conversations: annotations, training runs, model activations

Revision ID: 5c1e2a7d9b01
Revises: 378fe50fa75a
Create Date: 2026-11-27 19:50:00
"""
from alembic import op
import sqlalchemy as sa


revision = '5c1e2a7d9b01'
down_revision = '378fe50fa75a'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('annotations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.String(length=128), nullable=False),
    sa.Column('intent', sa.String(length=64), nullable=False),
    sa.Column('example', sa.Text(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_id')
    )
    op.create_table('training_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('mode', sa.String(length=12), nullable=False),
    sa.Column('requested_by', sa.String(length=64), nullable=False),
    sa.Column('base_model', sa.Text(), nullable=True),
    sa.Column('model', sa.Text(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('seconds', sa.Float(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('model_activations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('model', sa.Text(), nullable=False),
    sa.Column('previous_model', sa.Text(), nullable=True),
    sa.Column('scores', sa.JSON(), nullable=True),
    sa.Column('override_reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('model_activations')
    op.drop_table('training_runs')
    op.drop_table('annotations')
