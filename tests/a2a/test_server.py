"""The hive as an A2A agent, driven by the ``a2a-sdk`` client against a real hub
(``hive serve``) with real agents (``hive agent``) running the tasks."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.client import A2ACardResolver, ClientCallContext, ClientConfig, create_client
from a2a.client.client import Client
from a2a.types.a2a_pb2 import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    Message,
    Part,
    Role,
    SendMessageRequest,
    StreamResponse,
    SubscribeToTaskRequest,
    TaskState,
)
from a2a.utils.errors import (
    InvalidParamsError,
    InvalidRequestError,
    TaskNotCancelableError,
    TaskNotFoundError,
)
from google.protobuf.json_format import MessageToDict

from hivehub.client import HiveClient
from tests.conftest import TIME_SCALE
from tests.e2e.agentproc import AgentProc
from tests.hubproc import ROOT, Hub, wait_for

HANDLERS = "tests.a2a.server_handlers"
WAIT = 20 * TIME_SCALE


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    h = Hub(tmp_path / "hive.db", "--heartbeat-timeout", "3").start()
    try:
        yield h
    finally:
        h.stop()


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[Any]:
    started: list[AgentProc] = []

    def start(hub: Hub, name: str, caps: list[str], handler: str, **kw: Any) -> AgentProc:
        a = AgentProc(hub.ws_url, name, caps, handler, log_dir=tmp_path, **kw)
        started.append(a)
        return a

    yield start
    for a in started:
        a.stop()


#: the shared hive's agents: skill -> handler
SHARED = {
    "echo": "tests.e2e.handlers:echo",
    "write": f"{HANDLERS}:chunks",
    "slow": "tests.e2e.handlers:gate",
    "ask": f"{HANDLERS}:ask",
    "fragile": "tests.e2e.handlers:fatal",
}


@pytest.fixture(scope="module")
def hive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """One hub with one agent per skill of ``SHARED``, for the tests that only add tasks."""
    tmp = tmp_path_factory.mktemp("hive")
    h = Hub(tmp / "hive.db", "--heartbeat-timeout", "3").start()
    procs: list[AgentProc] = []
    try:
        for skill, handler in SHARED.items():
            procs.append(AgentProc(h.ws_url, skill, [skill], handler, log_dir=tmp))
        wait_for(lambda: skills(h) == sorted(SHARED), WAIT, what="the shared agents online")
        yield h
    finally:
        for a in procs:
            a.stop()
        h.stop()


def skills(hub: Hub) -> list[str]:
    status, card = hub.request("GET", "/.well-known/agent-card.json")
    assert status == 200
    return [s["id"] for s in card["skills"]]


@contextlib.asynccontextmanager
async def a2a(hub: Hub, token: str | None = None, streaming: bool = True) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=WAIT, headers=headers) as hc:
        client = await create_client(hub.url, ClientConfig(httpx_client=hc, streaming=streaming))
        yield client


def message(
    text: str | None = None, data: dict[str, Any] | None = None, skill: str | None = None
) -> SendMessageRequest:
    parts = []
    if text is not None:
        parts.append(Part(text=text))
    if data is not None:
        p = Part()
        p.data.struct_value.update(data)
        parts.append(p)
    req = SendMessageRequest(message=Message(message_id=uuid.uuid4().hex, role=Role.ROLE_USER, parts=parts))
    if skill:
        req.metadata.update({"skill": skill})
    return req


def kind(ev: StreamResponse) -> str:
    return str(ev.WhichOneof("payload"))


def inner(ev: StreamResponse) -> Any:
    return getattr(ev, kind(ev))


def position(ev: StreamResponse) -> str:
    return str(MessageToDict(inner(ev).metadata)["hive"]["position"])


def task_id(ev: StreamResponse) -> str:
    x = inner(ev)
    return str(x.id if kind(ev) == "task" else x.task_id)


def output_text(events: list[StreamResponse]) -> str:
    return "".join(
        p.text
        for e in events
        if kind(e) == "artifact_update" and e.artifact_update.artifact.name == "output"
        for p in e.artifact_update.artifact.parts
    )


def wait_file(path: Path) -> None:
    wait_for(path.exists, WAIT, what=f"{path.name} to appear")


# ------------------------------------------------------------------ the card


def test_the_card_lists_the_skills_of_online_agents_and_follows_them(hub: Hub, agents) -> None:
    assert skills(hub) == []
    agents(hub, "e", ["echo"], "tests.e2e.handlers:echo")
    s = agents(hub, "s", ["summarize", "echo"], "tests.e2e.handlers:echo")
    wait_for(lambda: skills(hub) == ["echo", "summarize"], WAIT, what="both skills on the card")
    _, card = hub.request("GET", "/.well-known/agent-card.json")
    assert card["capabilities"]["streaming"] is True
    assert card["supportedInterfaces"][0]["url"] == hub.url + "/a2a"
    assert card["supportedInterfaces"][0]["protocolBinding"] == "JSONRPC"
    s.stop()  # its skill leaves with it; echo stays (the other agent has it)
    wait_for(lambda: skills(hub) == ["echo"], WAIT, what="summarize to leave the card")


async def test_the_sdk_resolves_the_card(hive: Hub) -> None:
    async with httpx.AsyncClient() as hc:
        card = await A2ACardResolver(hc, hive.url).get_agent_card()
    assert [s.id for s in card.skills] == sorted(SHARED) and card.capabilities.streaming


# ------------------------------------------------------------------ messages


async def test_send_message_blocks_until_the_task_completes(hive: Hub) -> None:
    async with a2a(hive, streaming=False) as client:
        [ev] = [e async for e in client.send_message(message("hello", {"n": 1}, skill="echo"))]
    task = ev.task
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    [result] = [a for a in task.artifacts if a.name == "result"]
    got = MessageToDict(result.parts[0].data)
    assert got["echo"] == {"prompt": "hello", "n": 1}  # text -> prompt, data merged in
    assert task.history[0].parts[0].text == "hello"  # the message it came from
    # the A2A task id is the hub's task id
    async with HiveClient(hive.url) as hive:
        hub_task = await hive.get_task(task.id)
    assert hub_task["status"] == "completed" and hub_task["required_capabilities"][0]["name"] == "echo"
    assert hub_task["metadata"]["a2a"]["context_id"] == task.context_id


async def test_stream_to_the_end(hive: Hub, tmp_path: Path) -> None:
    release = tmp_path / "release"
    release.write_text("go")  # no waiting: the whole task in one stream
    data = {"before": 2, "after": 2, "started": str(tmp_path / "started"), "release": str(release)}
    async with a2a(hive) as client:
        events = [e async for e in client.send_message(message("text", data, skill="write"))]
    assert kind(events[0]) == "task" and events[0].task.status.state == TaskState.TASK_STATE_SUBMITTED
    last = events[-1]
    assert kind(last) == "status_update" and last.status_update.status.state == TaskState.TASK_STATE_COMPLETED
    assert output_text(events) == "b0 b1 a0 a1 "
    chunks = [
        e.artifact_update
        for e in events
        if kind(e) == "artifact_update" and e.artifact_update.artifact.name == "output"
    ]
    assert not chunks[0].append and all(c.append for c in chunks[1:])  # one artifact, appended to
    [result] = [
        e.artifact_update
        for e in events
        if kind(e) == "artifact_update" and e.artifact_update.artifact.name == "result"
    ]
    assert MessageToDict(result.artifact.parts[0].data) == {"chunks": 4.0, "prompt": "text"}
    positions = [position(e) for e in events]
    assert len(set(positions)) == len(positions)
    assert positions == sorted(positions, key=lambda p: tuple(int(x) for x in p.split(".")))


async def test_resubscribe_after_a_disconnect_replays_every_missed_update_once(
    hive: Hub, tmp_path: Path
) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    data = {"before": 3, "after": 4, "started": str(started), "release": str(release)}
    seen: list[StreamResponse] = []
    full: list[StreamResponse] = []
    async with a2a(hive) as client:
        stream = client.send_message(message("resume me", data, skill="write"))
        async with contextlib.aclosing(stream):
            async for ev in stream:
                seen.append(ev)
                if kind(ev) == "artifact_update":
                    break  # disconnect mid-stream, the task still running
        tid = task_id(seen[0])

        async def watch() -> None:  # an uninterrupted stream of the same task, alongside
            async with a2a(hive) as other:
                full.extend([e async for e in other.subscribe(SubscribeToTaskRequest(id=tid))])

        watcher = asyncio.create_task(watch())
        wait_file(started)
        release.write_text("go")  # everything after this point is missed by the first stream
        async with HiveClient(hive.url) as hive:
            await hive.wait_for_task(tid, timeout=WAIT)
        resumed = [
            e
            async for e in client.subscribe(
                SubscribeToTaskRequest(id=tid),
                context=ClientCallContext(service_parameters={"Last-Event-ID": position(seen[-1])}),
            )
        ]
        await asyncio.wait_for(watcher, WAIT)
    assert resumed, "nothing was missed?"
    assert kind(resumed[0]) != "task"  # the continuation, not a new snapshot
    stitched = [MessageToDict(e) for e in seen + resumed]
    assert stitched == [MessageToDict(e) for e in full]
    assert output_text(seen + resumed) == "b0 b1 b2 a0 a1 a2 a3 "
    assert resumed[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED


async def test_a_bad_position_is_invalid_params(hive: Hub) -> None:
    async with a2a(hive) as client:
        events = [e async for e in client.send_message(message("x", skill="echo"))]
        with pytest.raises(InvalidParamsError) as err:
            _ = [
                e
                async for e in client.subscribe(
                    SubscribeToTaskRequest(id=task_id(events[0])),
                    context=ClientCallContext(service_parameters={"Last-Event-ID": "nope"}),
                )
            ]
    assert err.value.data["code"] == "invalid_position"


# ------------------------------------------------------------------ get, cancel, list, errors


async def test_cancel_reaches_the_agent_and_get_shows_it(hive: Hub, tmp_path: Path) -> None:
    started, marker = tmp_path / "started", tmp_path / "cancelled"
    data = {"release": str(tmp_path / "never"), "started": str(started), "cancelled_marker": str(marker)}
    async with a2a(hive, streaming=False) as client:
        req = message(None, data, skill="slow")
        req.configuration.return_immediately = True
        [ev] = [e async for e in client.send_message(req)]
        tid = ev.task.id
        wait_file(started)
        cancelled = await client.cancel_task(CancelTaskRequest(id=tid))
        assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
        wait_file(marker)  # the agent's handler was stopped
        got = await client.get_task(GetTaskRequest(id=tid))
        assert got.status.state == TaskState.TASK_STATE_CANCELED
        texts = [p.text for m in got.history for p in m.parts if p.text]
        assert texts[0].startswith("assigned to agent") or "cancelled by" in texts[-1]
        assert any("cancelled by" in t for t in texts)
        with pytest.raises(TaskNotCancelableError) as err:
            await client.cancel_task(CancelTaskRequest(id=tid))
        assert err.value.data["code"] == "invalid_transition"
        listed = await client.list_tasks(ListTasksRequest(status=TaskState.TASK_STATE_CANCELED))
        assert [t.id for t in listed.tasks] == [tid]


async def test_unknown_task_and_unknown_skill(hive: Hub) -> None:
    async with a2a(hive, streaming=False) as client:
        with pytest.raises(TaskNotFoundError) as nf:
            await client.get_task(GetTaskRequest(id="no-such-task"))
        assert nf.value.data["code"] == "task_not_found"
        with pytest.raises(TaskNotFoundError):
            await client.cancel_task(CancelTaskRequest(id="no-such-task"))
        with pytest.raises(InvalidParamsError) as bad:
            _ = [e async for e in client.send_message(message("x", skill="juggle"))]
        assert bad.value.data["code"] == "unknown_skill" and bad.value.data["skills"] == ",".join(
            sorted(SHARED)
        )
        with pytest.raises(InvalidParamsError) as empty:
            _ = [e async for e in client.send_message(message(None, None, skill="echo"))]
        assert empty.value.data["code"] == "invalid_input"


# ------------------------------------------------------------------ auth


def make_token(db: Path, role: str) -> str:
    args = [sys.executable, "-m", "hivehub", "token", "create", "--role", role, "--db", str(db)]
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


async def test_with_auth_a_viewer_reads_the_card_but_cannot_create_tasks(tmp_path: Path, agents) -> None:
    db = tmp_path / "hive.db"
    viewer, operator = make_token(db, "viewer"), make_token(db, "operator")
    hub = Hub(db, "--heartbeat-timeout", "3").start()
    try:
        agents(hub, "e", ["echo"], "tests.e2e.handlers:echo", env={"HIVE_TOKEN": operator})
        wait_for(lambda: skills(hub) == ["echo"], WAIT, what="the agent online")  # the card is public
        async with a2a(hub, viewer, streaming=False) as client:
            with pytest.raises(InvalidRequestError) as err:
                _ = [e async for e in client.send_message(message("x", skill="echo"))]
            assert err.value.data["code"] == "forbidden" and "forbidden" in err.value.message
        async with a2a(hub, operator, streaming=False) as client:
            [ev] = [e async for e in client.send_message(message("x", skill="echo"))]
            assert ev.task.status.state == TaskState.TASK_STATE_COMPLETED
        async with a2a(hub, viewer, streaming=False) as client:  # a viewer may read it
            got = await client.get_task(GetTaskRequest(id=ev.task.id))
            assert got.status.state == TaskState.TASK_STATE_COMPLETED
        status, _ = hub.request(
            "POST", "/a2a", {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {}}
        )
        assert status == 401  # no token: the hub's own answer
    finally:
        hub.stop()


async def test_input_required_then_a_message_on_the_task_answers_it(hive: Hub) -> None:
    async with a2a(hive) as client:
        first = [e async for e in client.send_message(message("paint", skill="ask"))]
        # a blocking stream stops where the task waits for someone: input-required
        waiting = [e for e in first if kind(e) == "status_update"][-1].status_update
        assert waiting.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        assert waiting.status.message.parts[0].text == "Which colour?"
        tid = task_id(first[0])
        answer = SendMessageRequest(
            message=Message(
                message_id=uuid.uuid4().hex, role=Role.ROLE_USER, task_id=tid, parts=[Part(text="blue")]
            )
        )
        rest = [e async for e in client.send_message(answer)]
    assert kind(rest[0]) != "task"  # what follows the answer, not the task again
    assert rest[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
    [result] = [e for e in rest if kind(e) == "artifact_update"]
    assert MessageToDict(result.artifact_update.artifact.parts[0].data) == {"colour": "blue"}
    async with a2a(hive, streaming=False) as client:
        with pytest.raises(InvalidParamsError) as err:  # nothing to answer any more
            _ = [e async for e in client.send_message(answer)]
    assert err.value.data["code"] == "not_waiting_for_input"


async def test_a_failed_task_ends_the_stream_failed_with_the_hub_error(hive: Hub) -> None:
    async with a2a(hive) as client:
        events = [e async for e in client.send_message(message("x", skill="fragile"))]
    st = events[-1].status_update.status
    assert st.state == TaskState.TASK_STATE_FAILED
    assert st.message.parts[0].text.startswith("BAD_INPUT:")
    assert MessageToDict(st.message.parts[1].data)["error"]["code"] == "BAD_INPUT"


def test_the_mounted_paths_are_the_sdks() -> None:
    from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH

    from hivehub.a2a import server_mount

    assert server_mount.AGENT_CARD_PATH == AGENT_CARD_WELL_KNOWN_PATH
