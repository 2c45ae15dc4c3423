"""Durable storage: the SQLAlchemy store, its errors and its schema migrations."""
