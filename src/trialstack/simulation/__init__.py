"""Simulated trial activity for demos and benchmarks, driven through the real command handlers."""
