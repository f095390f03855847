"""the lead's dashboard roll-ups (issue 15): one row of figures per closed shop-local day
(report_days), the triggers' change marks (report_marks) and the invalidation counter
(report_state); triggers on the counted tables (bot/store/report_marks.py)

Revision ID: 8d2a6f4c1e57
Revises: 3b9d6f2a8c41
Create Date: 2026-12-02 02:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '8d2a6f4c1e57'
down_revision = '3b9d6f2a8c41'
branch_labels = None
depends_on = None


def upgrade() -> None:
    from bot.store import report_marks

    op.create_table('report_days',
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('rules', sa.String(length=64), nullable=False),
    sa.Column('figures', sa.Text(), nullable=True),
    sa.Column('stale_gen', sa.Integer(), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('day')
    )
    op.create_table('report_marks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('hour', sa.Integer(), nullable=False),
    sa.Column('wide', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('report_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('gen', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in report_marks.pg_up():
            op.execute(statement)
    else:
        report_marks.install_sqlite(op.get_bind())


def downgrade() -> None:
    from bot.store import report_marks

    if op.get_bind().dialect.name == "postgresql":
        for statement in report_marks.pg_down():
            op.execute(statement)
    else:
        for statement in report_marks.sqlite_statements():
            name = statement.split("IF NOT EXISTS ")[1].split()[0]
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table('report_state')
    op.drop_table('report_marks')
    op.drop_table('report_days')
