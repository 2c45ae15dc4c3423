"""Running it as a service: bearer tokens, JSON logs, Prometheus metrics."""
