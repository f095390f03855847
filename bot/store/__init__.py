"""The durable store (SQLAlchemy; SQLite by default, PostgreSQL scaled): one module per support noun. Imported by every process."""
