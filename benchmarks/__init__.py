"""Latency, parameter and Multi-Adds measurement."""
