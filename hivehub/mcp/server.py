"""The MCP server itself: the ``mcp`` SDK's low-level ``Server`` over :mod:`.tools`.

The low-level ``Server`` rather than ``MCPServer`` (the v2 name of FastMCP): our
tools are a table with hand-written JSON schemas and must answer every failure
with the hub's stable ``code`` (``unknown_tool`` and ``invalid_input`` included),
which ``MCPServer``'s decorators would turn into their own text-only errors.

How a tool reaches the hub is the caller's business (:data:`Connect`): at ``/mcp``
a ``HiveClient`` to the hub's own port with the token of the HTTP request
(``mount.py``), over stdio one client for the process (``stdio.py``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError

from .. import __version__
from ..client import HiveClient, HiveError
from . import tools as T

log = logging.getLogger("hivehub.mcp")

#: one hub client for one request (``ctx`` carries the HTTP request, if any)
Connect = Callable[[ServerRequestContext[Any, Any]], AbstractAsyncContextManager[HiveClient]]

INSTRUCTIONS = (
    "Hive Hub runs tasks on a pool of agents chosen by capability, with retries and durable state. "
    "submit_task returns a task id at once; wait_for_task follows it (with progress) up to a bound; "
    "get_task and list_tasks read; inbox lists tasks waiting for a person (approve_task, reject_task, "
    "answer_task). Errors carry the hub's stable code in structuredContent.error.code."
)

RESOURCE_TEMPLATES = (
    types.ResourceTemplate(
        name="task",
        title="A hive task",
        uri_template="hive://tasks/{id}",
        description="One task as the hub reports it (status, progress, result or error, attempts).",
        mime_type="application/json",
    ),
    types.ResourceTemplate(
        name="agent",
        title="A hive agent",
        uri_template="hive://agents/{id}",
        description="One agent: status, capabilities with declared and learned proficiency, load.",
        mime_type="application/json",
    ),
)
_RESOURCE_URI = re.compile(r"^hive://(tasks|agents)/([^/?#]+)$")


def _text(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)


def tool_listing() -> list[types.Tool]:
    return [
        types.Tool(
            name=t.name,
            title=t.title,
            description=t.description,
            input_schema=t.schema,
            annotations=types.ToolAnnotations(
                title=t.title,
                read_only_hint=not t.write,
                destructive_hint=t.destructive if t.write else None,
                idempotent_hint=t.idempotent,
                open_world_hint=False,
            ),
        )
        for t in T.TOOLS
    ]


def failure_result(exc: T.ToolFailure) -> types.CallToolResult:
    body = exc.body()
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=_text(body))], structured_content=body, is_error=True
    )


def build_server(connect: Connect, name: str = "hive-hub") -> Server[Any]:
    """The MCP server; each tool call and resource read opens a hub client with ``connect``."""
    listing = tool_listing()

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=listing)

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        async def progress(value: float, total: float | None, message: str | None) -> None:
            await ctx.session.report_progress(value, total, message)

        try:
            async with connect(ctx) as client:
                out = await T.call(client, params.name, params.arguments, progress)
        except T.ToolFailure as exc:
            return failure_result(exc)
        except HiveError as exc:  # from connect: e.g. a malformed Authorization header
            return failure_result(T.ToolFailure(exc.code, exc.message, exc.details))
        except Exception:
            # a bug: logged with its traceback, answered without internals
            log.exception("MCP tool %s failed", params.name)
            return failure_result(T.ToolFailure("internal_error", f"{params.name} failed inside the hub"))
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=_text(out))], structured_content=out
        )

    async def list_resources(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        # tasks and agents are many and change: they are templates, not a list
        return types.ListResourcesResult(resources=[])

    async def list_templates(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=list(RESOURCE_TEMPLATES))

    async def read_resource(
        ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = str(params.uri)
        m = _RESOURCE_URI.match(uri)
        if m is None:
            raise MCPError(
                types.INVALID_PARAMS,
                f"unknown resource {uri!r}: hive://tasks/{{id}} or hive://agents/{{id}}",
                {"code": "invalid_input", "uri": uri},
            )
        kind, ident = m.groups()
        try:
            async with connect(ctx) as client:
                obj = await (client.get_task(ident) if kind == "tasks" else client.get_agent(ident))
        except HiveError as exc:
            # a missing resource is -32602 (SEP-2164); the hub's code rides in ``data``
            rpc = types.INVALID_PARAMS if getattr(exc, "status", None) == 404 else types.INTERNAL_ERROR
            raise MCPError(rpc, exc.message, {"code": exc.code, "uri": uri, **exc.details}) from exc
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=uri, mime_type="application/json", text=_text(obj))]
        )

    return Server(
        name,
        version=__version__,
        title="Hive Hub",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
        get_tool_input_schema=lambda n: T.BY_NAME[n].schema if n in T.BY_NAME else None,
    )
