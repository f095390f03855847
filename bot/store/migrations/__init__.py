"""Alembic migrations for the ticket store's schema (PostgreSQL deployments).

SQLite (one machine) keeps ``create_all``; on PostgreSQL :func:`upgrade_to_head` runs
from :func:`bot.store.engine.engine_for`, under an advisory lock so replicas starting together
migrate once. New tables in ``bot/store/schema.py`` need a revision:
``.venv/bin/python -m bot.store.migrations revision "what changed"`` (autogenerate against a
scratch database), and ``tests/test_migrations.py`` fails until the head matches the models.
"""
from __future__ import annotations

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Engine

HERE = Path(__file__).resolve().parent
ADVISORY_LOCK = 7_202_611   # any constant, the same in every replica


def alembic_config(connection=None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade_to_head(engine: Engine) -> None:
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK})
        try:
            command.upgrade(alembic_config(conn), "head")
            conn.commit()
        finally:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK})
                conn.commit()


def main(argv) -> int:
    """``revision "message"``: autogenerate a revision against ``KEFU_DATABASE_URL`` at head."""
    from bot.store.engine import database_url
    from sqlalchemy import create_engine

    if len(argv) != 2 or argv[0] != "revision":
        print(__doc__)
        return 2
    engine = create_engine(database_url(), future=True)
    upgrade_to_head(engine)
    with engine.connect() as conn:
        command.revision(alembic_config(conn), message=argv[1], autogenerate=True)
        conn.commit()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
