"""Database triggers that note which hours' rows the lead's dashboard counts have changed.

Every insert, delete and relevant update of a ticket, SLA clock, customer line, handoff,
return call or satisfaction answer writes one ``report_marks`` row: the UTC hour (hours since
1970) of the time the row is counted by (a ticket's and its clocks' ``created_at``, a line's
``at``, a handoff's ``created_at``, a 回访's ``created_at``, an answer's ``asked_at``) and whether it is read by earlier days' figures.
bot/store/report_days.py turns the marks into stale days of the roll-ups. Triggers, not
application hooks: bulk ``UPDATE``s, erasure and other processes are seen the same way.

SQLite gets the triggers with ``create_all`` (:func:`install_sqlite`, idempotent);
PostgreSQL through the Alembic revision 0007 (:data:`PG_UP`, :data:`PG_DOWN`).
"""
from __future__ import annotations

from typing import List

# table -> (the time column it is counted by, the columns whose update matters, wide: the row
# is read by conversations of earlier days too (a repeat contact, a handoff or callback ticket
# that belongs to a conversation begun before; "callback": only tickets of that kind); narrow
# rows count on their own day only)
WATCHED = {
    "tickets": ("created_at", ("kind", "customer_id", "created_at", "assignee_id"), "callback"),
    "sla_clocks": (None, ("ticket_id", "clock", "state", "used_s", "stopped_at"), 0),
    "messages": ("at", ("conversation_id", "author", "at"), 1),
    "handoffs": ("created_at", ("conversation_id", "agent_id", "created_at", "first_reply_at"), 1),
    "return_calls": ("created_at", ("status", "created_at"), 0),
    "satisfaction": ("asked_at", ("source", "score", "agent_id", "asked_at"), 0),
}


def _sqlite_hour(expr: str) -> str:
    return f"CAST(strftime('%s', {expr}) AS INTEGER) / 3600"


def _sqlite_rows(table: str, rows: tuple) -> str:
    column, _, wide = WATCHED[table]
    if column is None:                  # a clock counts by its ticket's creation
        ids = ", ".join(f"{r}.ticket_id" for r in rows)
        return (f"INSERT INTO report_marks (hour, wide) SELECT DISTINCT "
                f"{_sqlite_hour('created_at')}, {wide} FROM tickets WHERE id IN ({ids});")
    hours = " UNION ".join(f"SELECT {_sqlite_hour(f'{r}.{column}')} AS h, "
                           f"{_sqlite_wide(wide, r)} AS w" for r in rows)
    return (f"INSERT INTO report_marks (hour, wide) SELECT h, w FROM ({hours}) "
            f"WHERE h IS NOT NULL;")


def _sqlite_wide(wide, row: str) -> str:
    return f"CASE WHEN {row}.kind = 'callback' THEN 1 ELSE 0 END" if wide == "callback" else str(wide)


def sqlite_statements() -> List[str]:
    out = []
    for table, (_, columns, _) in WATCHED.items():
        customer = {"NEW": "NEW.author = 'customer'", "OLD": "OLD.author = 'customer'"}
        for event, rows in (("INSERT", ("NEW",)), ("DELETE", ("OLD",)),
                            (f"UPDATE OF {', '.join(columns)}", ("NEW", "OLD"))):
            when = ""
            if table == "messages":
                when = " WHEN " + " OR ".join(customer[r] for r in rows)
            name = f"report_mark_{table}_{event.split()[0].lower()}"
            out.append(f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {event} ON {table}"
                       f" FOR EACH ROW{when} BEGIN {_sqlite_rows(table, rows)} END")
    return out


def install_sqlite(connection) -> None:
    """Create the triggers on a SQLite database (after ``create_all``; a no-op when present)."""
    from sqlalchemy import text

    for statement in sqlite_statements():
        connection.execute(text(statement))


PG_FUNCTION = """
CREATE OR REPLACE FUNCTION report_mark() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r jsonb;
    at_ timestamptz;
    wide_ integer;
BEGIN
    FOREACH r IN ARRAY (CASE TG_OP WHEN 'INSERT' THEN ARRAY[to_jsonb(NEW)]
                                   WHEN 'DELETE' THEN ARRAY[to_jsonb(OLD)]
                                   ELSE ARRAY[to_jsonb(NEW), to_jsonb(OLD)] END) LOOP
        IF TG_TABLE_NAME = 'messages' AND r->>'author' IS DISTINCT FROM 'customer' THEN
            CONTINUE;
        END IF;
        IF TG_ARGV[0] = '-' THEN
            SELECT created_at INTO at_ FROM tickets WHERE id = (r->>'ticket_id')::integer;
        ELSE
            at_ := (r->>TG_ARGV[0])::timestamptz;
        END IF;
        IF TG_ARGV[1] = 'callback' THEN
            wide_ := CASE WHEN r->>'kind' = 'callback' THEN 1 ELSE 0 END;
        ELSE
            wide_ := TG_ARGV[1]::integer;
        END IF;
        IF at_ IS NOT NULL THEN
            INSERT INTO report_marks (hour, wide)
                VALUES (floor(extract(epoch FROM at_) / 3600)::integer, wide_);
        END IF;
    END LOOP;
    RETURN NULL;
END $$
"""


def pg_up() -> List[str]:
    out = [PG_FUNCTION]
    for table, (column, columns, wide) in WATCHED.items():
        out.append(f"CREATE TRIGGER report_mark_{table} AFTER INSERT OR DELETE OR UPDATE OF "
                   f"{', '.join(columns)} ON {table} FOR EACH ROW EXECUTE FUNCTION "
                   f"report_mark('{column or '-'}', '{wide}')")
    return out


def pg_down() -> List[str]:
    return [f"DROP TRIGGER IF EXISTS report_mark_{t} ON {t}" for t in WATCHED] + [
        "DROP FUNCTION IF EXISTS report_mark()"]
