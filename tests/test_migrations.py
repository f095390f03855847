"""The Alembic head (bot/store/migrations) builds exactly the schema bot/store/schema.py declares.

Runs against the machine's PostgreSQL (a scratch database per run, dropped after); skipped
when no PostgreSQL answers.
"""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from bot.store.migrations import upgrade_to_head
from bot.store.schema import Base


def test_migration_head_matches_the_models(scratch_pg):
    upgrade_to_head(scratch_pg)
    upgrade_to_head(scratch_pg)          # idempotent: a second replica starting finds it done
    with scratch_pg.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                Base.metadata)
    assert diff == [], f"bot/store/schema.py changed: add a revision (python -m bot.store.migrations revision ...): {diff}"
    assert set(Base.metadata.tables) <= set(inspect(scratch_pg).get_table_names())
