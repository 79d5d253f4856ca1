"""Agent ids kept between runs (``hivehub/agent/identity.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hivehub.agent import Agent
from hivehub.agent.identity import IdFile, id_file_path

from .conftest import make_agent
from .fakehub import FakeWsHub


async def test_a_restarted_agent_registers_with_the_id_it_was_given(
    hub: FakeWsHub, running: Any, tmp_path: Path
) -> None:
    first = make_agent(hub, state_dir=tmp_path)
    task = await running(first)
    given = first.agent_id
    assert given and hub.find("register")[0]["data"].get("id") is None  # first run: the hub assigns it
    await first.stop(grace=0, flush_timeout=0.2)
    await task
    assert id_file_path(tmp_path, first.name).read_text().strip() == given

    again = make_agent(hub, state_dir=tmp_path)  # a new process: nothing in memory
    await running(again)
    assert hub.find("register")[-1]["data"]["id"] == given
    assert again.agent_id == given


async def test_a_second_process_with_the_same_name_does_not_share_the_id(
    hub: FakeWsHub, running: Any, tmp_path: Path
) -> None:
    path = id_file_path(tmp_path, "Worker-1")
    holder = IdFile(path)
    assert holder.acquire()
    holder.write("held-id")
    try:
        other = make_agent(hub, name="Worker-1", state_dir=tmp_path)
        await running(other)
        assert hub.find("register")[-1]["data"].get("id") is None
        assert other.agent_id != "held-id"
        assert path.read_text().strip() == "held-id"  # not overwritten
    finally:
        holder.release()


def test_id_file_names_are_file_safe_and_distinct(tmp_path: Path) -> None:
    a, b = id_file_path(tmp_path, "a/b"), id_file_path(tmp_path, "a_b")
    assert a != b and a.parent == b.parent == tmp_path
    assert id_file_path(tmp_path, "..").parent == tmp_path


def test_without_a_state_dir_nothing_is_kept() -> None:
    assert Agent("w", {"x": 0.5}).id_file is None
