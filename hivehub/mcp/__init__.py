"""The hive's MCP server (Model Context Protocol, the official ``mcp`` SDK): tools for
AI assistants over the hub's API, at ``/mcp`` on the hub's port and over stdio."""
