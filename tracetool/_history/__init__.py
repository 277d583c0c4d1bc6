"""The run history: every run's metrics kept in SQLite or PostgreSQL, trends and regressions."""
