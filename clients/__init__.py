"""Clients of the evostim server: the Python client, simulated neurons, the in-silico loop and the demo."""
