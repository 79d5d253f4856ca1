"""The I/O-free hive core: commands in, events out, clock injected.

Nothing in this package imports asyncio, aiohttp, sqlite3 or socket, or reads a
clock; ``tests/core/test_purity.py`` enforces that.
"""
