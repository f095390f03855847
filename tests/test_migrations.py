"""The Alembic head (bot/migrations) builds exactly the schema bot/models.py declares.

Runs against the machine's PostgreSQL (a scratch database per run, dropped after); skipped
when no PostgreSQL answers.
"""
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from bot.migrations import upgrade_to_head
from bot.models import Base

PG = "postgresql://postgres@127.0.0.1:5432/{}"


@pytest.fixture
def scratch_pg():
    admin = create_engine(PG.format("postgres"), future=True, isolation_level="AUTOCOMMIT")
    name = f"kefu_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:   # pragma: no cover - machine without PostgreSQL
        pytest.skip(f"no PostgreSQL: {exc}")
    engine = create_engine(PG.format(name), future=True)
    yield engine
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_migration_head_matches_the_models(scratch_pg):
    upgrade_to_head(scratch_pg)
    upgrade_to_head(scratch_pg)          # idempotent: a second replica starting finds it done
    with scratch_pg.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                Base.metadata)
    assert diff == [], f"bot/models.py changed: add a revision (python -m bot.migrations revision ...): {diff}"
    assert set(Base.metadata.tables) <= set(inspect(scratch_pg).get_table_names())
