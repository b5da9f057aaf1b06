"""SQLAlchemy Core tables, engine, unit of work, repositories and batch readers."""
