"""personal data at rest (issue 18 item 11): transcript lines, ticket descriptions and notes
keep a masked copy in their column and the clear text as a Fernet token beside it; the
erasure audit log. Existing rows are sealed here (KEFU_DATA_KEY, as the gateway uses).

Revision ID: 3b9d6f2a8c41
Revises: 7c3f9e1a2b64
Create Date: 2026-12-02 09:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '3b9d6f2a8c41'
down_revision = '7c3f9e1a2b64'
branch_labels = None
depends_on = None

# (table, clear column, token column)
SEALED = (("messages", "text", "text_encrypted"),
          ("tickets", "description", "description_encrypted"),
          ("ticket_events", "note", "note_encrypted"))
BATCH = 500


def _seal_existing(table: str, column: str, token: str) -> None:
    from bot.store.sealing import seal

    conn = op.get_bind()
    t = sa.table(table, sa.column("id", sa.Integer), sa.column(column, sa.Text),
                 sa.column(token, sa.Text))
    last = 0
    while True:
        rows = conn.execute(sa.select(t.c.id, t.c[column]).where(
            t.c.id > last, t.c[token].is_(None), t.c[column].is_not(None))
            .order_by(t.c.id).limit(BATCH)).all()
        if not rows:
            return
        for row_id, text in rows:
            masked, sealed = seal(text)
            if sealed is not None:
                conn.execute(t.update().where(t.c.id == row_id)
                             .values({column: masked, token: sealed}))
        last = rows[-1][0]


def _unseal_existing(table: str, column: str, token: str) -> None:
    from bot.profile.privacy import decrypt

    conn = op.get_bind()
    t = sa.table(table, sa.column("id", sa.Integer), sa.column(column, sa.Text),
                 sa.column(token, sa.Text))
    for row_id, sealed in conn.execute(sa.select(t.c.id, t.c[token]).where(
            t.c[token].is_not(None))).all():
        conn.execute(t.update().where(t.c.id == row_id).values({column: decrypt(sealed)}))


def upgrade() -> None:
    for table, column, token in SEALED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column(token, sa.Text(), nullable=True))
        _seal_existing(table, column, token)
    op.create_table('erasures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('via', sa.String(length=8), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('erasures')
    for table, column, token in SEALED:
        _unseal_existing(table, column, token)
        with op.batch_alter_table(table) as batch:
            batch.drop_column(token)
