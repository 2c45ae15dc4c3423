"""HTTP routes: parse, call the session service, return schemas."""
