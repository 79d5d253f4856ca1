"""The aiohttp adapter around the core: REST, /ws stream, agent gateway."""
