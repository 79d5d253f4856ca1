"""The hive as an A2A agent: an ``a2a-sdk`` ``RequestHandler`` over the hub's own API
and log, and the Starlette app (Agent Card + JSON-RPC) that ``server_mount`` mounts.

Every method that changes something (send, cancel, answer) calls the hub's REST API
with :class:`~hivehub.client.HiveClient` on the hub's loopback URL and the caller's
own token, so the hub's roles, validation and errors apply as to any client. Streams
follow the hub's ``/ws`` stream of the task from its ``task_created`` (``since=``),
which the client resumes on its own, without gaps or duplicates; every A2A event
carries its position (``metadata.hive.position``), and a ``SubscribeToTask`` with a
``Last-Event-ID: <position>`` header gets exactly the events after it. The card and
a task's history are read in-process (the card is public; the history is the
task's own events in the log).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import msgspec
from a2a.server.context import ServerCallContext
from a2a.server.events.event_queue import Event
from a2a.server.request_handlers.request_handler import RequestHandler
from a2a.server.request_handlers.response_helpers import agent_card_to_dict
from a2a.server.routes import DefaultServerCallContextBuilder, create_jsonrpc_routes
from a2a.types.a2a_pb2 import (
    AgentCard,
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetExtendedAgentCardRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    ListTaskPushNotificationConfigsResponse,
    ListTasksRequest,
    ListTasksResponse,
    Message,
    SendMessageRequest,
    SubscribeToTaskRequest,
    Task,
    TaskPushNotificationConfig,
    TaskState,
)
from a2a.utils import errors as A
from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH
from google.protobuf.json_format import MessageToDict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .. import __version__
from ..client import HiveClient
from ..core import errors as E
from ..server.asgi import loopback_url
from ..server.hub import Hub
from . import server_mapping as M
from .paths import RPC_PATH

log = logging.getLogger("hivehub.a2a.server")

#: the header a resubscribe names its last position in (SSE's own resume header)
LAST_EVENT_ID = "last-event-id"
#: states where a blocking SendMessage returns: the task needs someone
INTERRUPTED = frozenset({TaskState.TASK_STATE_INPUT_REQUIRED})
_dec = msgspec.json.Decoder()


def _token(headers: Any, query: Any) -> str | None:
    h = headers.get("authorization", "")
    if h.lower().startswith("bearer "):
        return str(h[7:].strip())
    k = headers.get("x-api-key")
    if k:
        return str(k.strip())
    return query.get("token") or None


class HiveContextBuilder(DefaultServerCallContextBuilder):
    """Adds what the handler needs from the HTTP request: the hub's loopback URL,
    the caller's token and the ``Last-Event-ID`` header."""

    def build(self, request: Request) -> ServerCallContext:
        ctx = super().build(request)
        ctx.state["hub_url"] = loopback_url(request.scope)
        ctx.state["token"] = _token(request.headers, request.query_params)
        ctx.state["last_event_id"] = request.headers.get(LAST_EVENT_ID)
        return ctx


class HiveRequestHandler(RequestHandler):
    """The A2A methods over the hub (see the module docstring)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    # ----------------------------------------------------------- helpers

    @contextlib.asynccontextmanager
    async def _client(self, ctx: ServerCallContext) -> AsyncIterator[HiveClient]:
        client = HiveClient(ctx.state["hub_url"], ctx.state.get("token"))
        try:
            yield client
        except E.HiveError as exc:
            raise M.a2a_error(exc) from exc
        finally:
            await client.close()

    async def online_agents(self) -> list[dict[str, Any]]:
        """The agents as the card needs them, at the committed sequence."""

        def build(r: Any) -> list[dict[str, Any]]:
            return [
                {
                    "status": str(a.status),
                    "draining": a.draining,
                    "capabilities": [{"name": c.name, "proficiency": c.proficiency} for c in a.capabilities],
                }
                for a in r.agents()
            ]

        return await self.hub.view.read(build)

    async def card(self, base_url: str) -> AgentCard:
        return M.agent_card(base_url, await self.online_agents(), __version__)

    async def _skills(self) -> list[str]:
        return [s.id for s in M.skills_of(await self.online_agents())]

    async def _task_history(self, task: dict[str, Any]) -> list[Message]:
        """The task's A2A history: its message, then each status message, from its
        own events in the log (committed rows only: the store holds nothing else)."""
        rows = await self.hub.service.store.task_events(str(task["id"]))
        tr = M.TaskTranslator(str(task["id"]))
        events: list[M.A2AEvent] = []
        for r in rows:
            events.extend(e for _, e in tr.feed(_dec.decode(r.body)))
        return M.history_of(events, M.user_message(task))

    async def _follow(
        self, client: HiveClient, task: dict[str, Any], after: M.Position | None
    ) -> AsyncGenerator[M.A2AEvent]:
        """The task's A2A events after ``after`` (``None``: all, from its Task), until
        a final or input-required status while the task is in that state."""
        tid = str(task["id"])
        created = int(task.get("created_sequence") or 0)
        tr = M.TaskTranslator(tid)
        # the whole task from its task_created: the fold needs every event (which
        # attempt's output is open); only what is after ``after`` is sent
        async with client.stream(task_id=tid, since=max(0, created - 1)) as events:
            async for env in events:
                if (
                    not isinstance(env, dict)
                    or "sequence" not in env
                    or not str(env.get("type", "")).startswith("task_")
                ):
                    continue
                sent = False
                for pos, ev in tr.feed(env):
                    if after is None or pos > after:
                        sent = True
                        yield ev
                if sent and tr.ends and M.still_there(tr, await client.get_task(tid)):
                    # (the log may go on after a final status: a retry, an answer)
                    return

    async def _create(self, client: HiveClient, params: SendMessageRequest) -> tuple[dict[str, Any], bool]:
        """Create the task, or answer the task the message continues. Returns the task
        and whether it is new."""
        msg = params.message
        meta = MessageToDict(params.metadata) if params.HasField("metadata") else {}
        if msg.task_id:
            return await self._answer(client, msg), False
        skill = M.requested_skill(meta, msg, await self._skills())
        spec = M.task_spec_for(msg, meta, skill, msg.context_id or uuid.uuid4().hex)
        created = await client.submit_task(spec)
        return dict(created.get("task", created)), True

    async def _answer(self, client: HiveClient, msg: Message) -> dict[str, Any]:
        """A message naming a task answers its open question (text parts joined)."""
        task = await client.get_task(msg.task_id)
        pending = task.get("pending_input")
        if task.get("status") != "input_required" or not pending:
            raise A.InvalidParamsError(
                f"task {msg.task_id} is {task.get('status')}, not waiting for input; send a new message without task_id",
                data={"code": "not_waiting_for_input", "status": str(task.get("status"))},
            )
        text = "\n".join(p.text for p in msg.parts if p.WhichOneof("content") == "text")
        if not text:
            raise A.InvalidParamsError("the answer needs a text part", data={"code": "invalid_input"})
        await client.answer_task(msg.task_id, text, pending.get("request_id"))
        return task

    # ----------------------------------------------------------- messages

    async def on_message_send(self, params: SendMessageRequest, context: ServerCallContext) -> Task | Message:
        async with self._client(context) as client:
            mark = _published(await client.status())
            task, new = await self._create(client, params)
            tid = str(task["id"])
            if not params.configuration.return_immediately:
                # block until the task ends or waits for someone (A2A's "interrupted")
                after = None if new else M.Position(mark, 1_000_000)
                async for ev in self._follow(client, task, after):
                    st = getattr(ev, "status", None)
                    if st is not None and st.state in INTERRUPTED:
                        break
            now = await client.get_task(tid)
            return M.task_object(now, await self._task_history(now))

    async def on_message_send_stream(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event]:
        async with self._client(context) as client:
            mark = _published(await client.status())
            task, new = await self._create(client, params)
            # a new task streams from its Task; an answer streams what follows it
            async for ev in self._follow(client, task, None if new else M.Position(mark, 1_000_000)):
                yield ev

    async def on_subscribe_to_task(
        self, params: SubscribeToTaskRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event]:
        raw = context.state.get("last_event_id")
        after = M.Position.parse(raw) if raw else None
        async with self._client(context) as client:
            task = await client.get_task(params.id)
            async for ev in self._follow(client, task, after):
                yield ev

    # ----------------------------------------------------------- tasks

    async def on_get_task(self, params: GetTaskRequest, context: ServerCallContext) -> Task | None:
        async with self._client(context) as client:
            task = await client.get_task(params.id)
        history = await self._task_history(task)
        if params.HasField("history_length"):
            history = history[-params.history_length :] if params.history_length > 0 else []
        return M.task_object(task, history)

    async def on_cancel_task(self, params: CancelTaskRequest, context: ServerCallContext) -> Task | None:
        meta = MessageToDict(params.metadata) if params.HasField("metadata") else {}
        reason = str(meta.get("reason") or "cancelled over A2A")
        client = HiveClient(context.state["hub_url"], context.state.get("token"))
        try:
            task = await client.cancel_task(params.id, reason)
        except E.HiveError as exc:
            raise M.a2a_error(exc, conflict=A.TaskNotCancelableError) from exc
        finally:
            await client.close()
        return M.task_object(dict(task.get("task", task)))

    async def on_list_tasks(self, params: ListTasksRequest, context: ServerCallContext) -> ListTasksResponse:
        """One page of the hub's tasks, newest first (``page_token``: the hub's cursor);
        ``status`` and ``context_id`` filter that page, so a page may hold fewer."""
        size = params.page_size or 50
        if not 1 <= size <= 1000:
            raise A.InvalidParamsError("page_size must be 1..1000", data={"code": "invalid_input"})
        query: dict[str, str] = {"limit": str(size)}
        if params.page_token:
            query["cursor"] = params.page_token
        wanted = M.HUB_STATUSES.get(params.status, ()) if params.status else ()
        if len(wanted) == 1:
            query["status"] = wanted[0]
        async with self._client(context) as client:
            page = await client.request_object("GET", "/api/tasks", params=query)
        out = ListTasksResponse(next_page_token=page.get("next_cursor") or "", page_size=size)
        for t in page.get("tasks", []):
            if wanted and t.get("status") not in wanted:
                continue
            if params.context_id and M.context_of(t) != params.context_id:
                continue
            task = M.task_object(t)
            if params.HasField("history_length"):
                del task.history[: max(0, len(task.history) - params.history_length)]
            out.tasks.append(task)
        out.total_size = len(out.tasks)
        return out

    # ----------------------------------------------------------- not offered

    async def on_create_task_push_notification_config(
        self, params: TaskPushNotificationConfig, context: ServerCallContext
    ) -> TaskPushNotificationConfig:
        raise A.PushNotificationNotSupportedError

    async def on_get_task_push_notification_config(
        self, params: GetTaskPushNotificationConfigRequest, context: ServerCallContext
    ) -> TaskPushNotificationConfig:
        raise A.PushNotificationNotSupportedError

    async def on_list_task_push_notification_configs(
        self, params: ListTaskPushNotificationConfigsRequest, context: ServerCallContext
    ) -> ListTaskPushNotificationConfigsResponse:
        raise A.PushNotificationNotSupportedError

    async def on_delete_task_push_notification_config(
        self, params: DeleteTaskPushNotificationConfigRequest, context: ServerCallContext
    ) -> None:
        raise A.PushNotificationNotSupportedError

    async def on_get_extended_agent_card(
        self, params: GetExtendedAgentCardRequest, context: ServerCallContext
    ) -> AgentCard:
        raise A.ExtendedAgentCardNotConfiguredError


def _published(status: dict[str, Any]) -> int:
    return int(status.get("published_sequence") or 0)


def create_a2a_app(hub: Hub) -> Starlette:
    """The Starlette app serving ``/.well-known/agent-card.json`` and ``/a2a``
    (routes match the full path: the mount clears ``root_path``)."""
    handler = HiveRequestHandler(hub)

    async def card(request: Request) -> JSONResponse:
        # under /ns/NAME/ the card names that namespace's endpoint (``asgi._scope``)
        base = str(request.base_url).rstrip("/") + str(request.scope.get("hive_prefix", ""))
        body = agent_card_to_dict(await handler.card(base))
        body.setdefault("skills", [])  # proto JSON drops an empty list; the spec requires the field
        return JSONResponse(body, headers={"Cache-Control": "no-cache"})

    routes = [
        Route(AGENT_CARD_WELL_KNOWN_PATH, card, methods=["GET"]),
        *create_jsonrpc_routes(handler, RPC_PATH, context_builder=HiveContextBuilder()),
    ]
    return Starlette(routes=routes)


__all__ = ["RPC_PATH", "HiveRequestHandler", "create_a2a_app"]
