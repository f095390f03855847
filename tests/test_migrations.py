"""The Alembic head (bot/migrations) builds exactly the schema bot/models.py declares.

Runs against the machine's PostgreSQL (a scratch database per run, dropped after); skipped
when no PostgreSQL answers.
"""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from bot.migrations import upgrade_to_head
from bot.models import Base


def test_migration_head_matches_the_models(scratch_pg):
    upgrade_to_head(scratch_pg)
    upgrade_to_head(scratch_pg)          # idempotent: a second replica starting finds it done
    with scratch_pg.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                Base.metadata)
    assert diff == [], f"bot/models.py changed: add a revision (python -m bot.migrations revision ...): {diff}"
    assert set(Base.metadata.tables) <= set(inspect(scratch_pg).get_table_names())
