"""Backups at the database edge: which tables hold the truth, and reading them at one
position (or writing them into an empty store) on SQLite and PostgreSQL."""
