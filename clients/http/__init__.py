"""The HTTP client (sync and async), its errors, DataFrames of a session, a local server for notebooks."""
