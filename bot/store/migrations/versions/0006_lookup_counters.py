"""lookup counters: attempts per hashed key in a fixed window, shared by every process
(customers' ticket look-ups by number, issue 18 item 5)

Revision ID: 7c3f9e1a2b64
Revises: 4e8b1d0c7a52
Create Date: 2026-12-01 23:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '7c3f9e1a2b64'
down_revision = '4e8b1d0c7a52'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('lookup_counters',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )


def downgrade() -> None:
    op.drop_table('lookup_counters')
