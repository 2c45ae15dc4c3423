"""Simulated neurons and the closed loop over HTTP with them, and the demo."""
