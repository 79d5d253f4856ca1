"""Real A2A agents for the bridge tests, built with the ``a2a-sdk`` server classes
(``DefaultRequestHandler``, ``create_jsonrpc_routes``, ``create_agent_card_routes``) and
served by uvicorn on a free loopback port, in a thread of the test process, so a test
can see what the agent saw (its cancellations, its inputs).

The executor's behaviour is picked by the text it is sent:

==============  ==============================================================
``hello``       any other text: a streamed answer (3 artifact chunks), completed
``fail``        ``failed`` with a message
``reject``      ``rejected`` with a message
``ask``         ``input-required``; the follow-up's text is echoed, completed
``wait``        ``working``, then waits until cancelled (records the cancel)
``hang``        says nothing at all and never returns (the bridge's timeout)
``drop``        one artifact chunk, then the HTTP connection is cut mid-stream
``auth``        ``auth-required``
``reject-once`` (any suffix) rejected by the first agent of the process to see it,
                answered by the next; ``fail-once`` the same with ``failed``
==============  ==============================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Any

import uvicorn
from a2a.helpers import new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import AgentCapabilities, AgentCard, AgentInterface, AgentSkill, Task, TaskState, TaskStatus
from google.protobuf.json_format import MessageToDict
from starlette.applications import Starlette

from tests.hubproc import free_port

__all__ = ["A2AAgent", "free_port"]

DROP_MARK = "DROP-THE-STREAM"

#: texts ``reject-once`` / ``fail-once`` already refused by some agent of this process:
#: the first agent to see one refuses it, the next (another agent) does the work
_REFUSED: set[str] = set()
_REFUSED_LOCK = threading.Lock()


def _first_to_see(key: str) -> bool:
    with _REFUSED_LOCK:
        if key in _REFUSED:
            return False
        _REFUSED.add(key)
        return True


class Executor(AgentExecutor):
    def __init__(self, agent: A2AAgent) -> None:
        self.agent = agent

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        text = context.get_user_input().strip()
        meta = MessageToDict(context.message.metadata) if context.message else {}
        self.agent.seen.append({"text": text, "task_id": context.task_id, "metadata": meta})
        assert context.task_id and context.context_id
        up = TaskUpdater(event_queue, context.task_id, context.context_id)
        if context.current_task is None:
            await event_queue.enqueue_event(
                Task(
                    id=context.task_id,
                    context_id=context.context_id,
                    status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
                    history=[context.message] if context.message else [],
                )
            )
        elif context.current_task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED:
            self.agent.answers.append(text)
            await up.add_artifact([new_text_part(f"you said {text}")], name="answer")
            await up.complete()
            return
        if text == "hang":
            await asyncio.sleep(3600)
            return
        await up.start_work(up.new_agent_message([new_text_part(f"{self.agent.name} working")]))
        once = text.startswith(("reject-once", "fail-once")) and _first_to_see(text)
        if once and text.startswith("reject-once"):
            text = "reject"
        elif once:
            text = "fail"
        if text == "fail":
            await up.failed(up.new_agent_message([new_text_part("it broke")]))
        elif text == "reject":
            await up.reject(up.new_agent_message([new_text_part("not my kind of task")]))
        elif text == "auth":
            await up.requires_auth(up.new_agent_message([new_text_part("log in first")]))
        elif text == "ask":
            await up.requires_input(up.new_agent_message([new_text_part("which colour?")]))
        elif text == "wait":
            self.agent.waiting.set()
            await asyncio.sleep(3600)
        elif text == "drop":
            await up.add_artifact([new_text_part("partial ")], artifact_id="a1", name="answer")
            await asyncio.sleep(0.2)
            await up.add_artifact([new_text_part(DROP_MARK)], artifact_id="a1", append=True)
            await asyncio.sleep(3600)
        else:
            for i, chunk in enumerate((f"{self.agent.name} ", "says ", text)):
                await up.add_artifact(
                    [new_text_part(chunk)], artifact_id="a1", name="answer", append=i > 0, last_chunk=i == 2
                )
            await up.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        self.agent.cancelled.append(str(context.task_id))
        assert context.task_id and context.context_id
        await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


class _Drop(Exception):
    pass


class _Dropper:
    """ASGI middleware: cuts the connection when a response chunk carries DROP_MARK
    (what a crashed agent or a broken proxy does to a stream): the app is abandoned
    with its response unfinished, and uvicorn closes the connection."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def guarded(message: Any) -> None:
            if message.get("type") == "http.response.body" and DROP_MARK.encode() in message.get("body", b""):
                raise _Drop
            await send(message)

        with contextlib.suppress(_Drop, BaseExceptionGroup):
            await self.app(scope, receive, guarded)


class A2AAgent:
    """One A2A agent on ``http://127.0.0.1:<port>``, run in a thread until :meth:`stop`."""

    def __init__(
        self, name: str, skills: list[str], *, streaming: bool = True, port: int | None = None
    ) -> None:
        self.name = name
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.seen: list[dict[str, Any]] = []
        self.answers: list[str] = []
        self.cancelled: list[str] = []
        self.waiting = threading.Event()
        self.card = AgentCard(
            name=name,
            description=f"test agent {name}",
            version="1.0.0",
            supported_interfaces=[
                AgentInterface(url=self.url + "/", protocol_binding="JSONRPC", protocol_version="1.0")
            ],
            capabilities=AgentCapabilities(streaming=streaming),
            default_input_modes=["text/plain"],
            default_output_modes=["text/plain"],
            skills=[AgentSkill(id=s, name=s, description=f"does {s}", tags=[s]) for s in skills],
        )
        handler = DefaultRequestHandler(Executor(self), InMemoryTaskStore(), self.card)
        app = Starlette(routes=create_agent_card_routes(self.card) + create_jsonrpc_routes(handler, "/"))
        config = uvicorn.Config(
            _Dropper(app), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def start(self) -> A2AAgent:
        self._thread = threading.Thread(target=self._server.run, name=f"a2a-{self.name}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"A2A agent {self.name} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._server.force_exit = True
        if self._thread is not None:
            with contextlib.suppress(Exception):
                self._thread.join(10)
