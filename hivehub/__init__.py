"""Hive Hub: a real-time orchestration hub for AI agents."""

__version__ = "0.1.0"
