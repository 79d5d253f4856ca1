"""hivehub.server.routes: the route table behind the OpenAPI document and the
helpers every handler uses (query parameters, pagination, request ids)."""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest
from aiohttp.test_utils import make_mocked_request

from hivehub.core.errors import InvalidInput
from hivehub.core.model import TaskStatus
from hivehub.server.keys import IDENTITY
from hivehub.server.routes import (
    ROUTES,
    actor,
    json,
    paginate,
    q_enum,
    q_float,
    q_int,
    raw_json,
    request_id,
)
from hivehub.server.tokens import Identity


def req(query: str = "", headers: dict[str, str] | None = None) -> Any:
    return make_mocked_request("GET", "/api/tasks" + (f"?{query}" if query else ""), headers=headers)


class Item(NamedTuple):
    id: str


def test_every_rest_module_registers_its_routes_once() -> None:
    import hivehub.server.app  # noqa: F401 - registers every module's routes, as the hub does

    keys = [(r.method, r.path) for r in ROUTES]
    assert len(keys) == len(set(keys))
    handlers = {r.handler.__module__ for r in ROUTES}
    assert {
        "hivehub.server.rest_tasks",
        "hivehub.server.rest_agents",
        "hivehub.server.rest_status",
    } <= handlers


def test_query_numbers_default_parse_and_stay_in_bounds() -> None:
    assert q_int(req(), "limit", 7, 1, 10) == 7 and q_int(req("limit="), "limit", 7, 1, 10) == 7
    assert q_int(req("limit=3"), "limit", 7, 1, 10) == 3
    assert q_float(req("wait=2.5"), "wait", 0.0, 0.0, 30.0) == 2.5
    for query in ("limit=x", "limit=0", "limit=11"):
        with pytest.raises(InvalidInput) as exc:
            q_int(req(query), "limit", 7, 1, 10)
        assert exc.value.details["parameter"] == "limit"
    with pytest.raises(InvalidInput, match="must be a number"):
        q_float(req("wait=soon"), "wait", 0.0, 0.0, 30.0)


def test_an_enum_parameter_names_the_allowed_values() -> None:
    assert q_enum(req(), "status", TaskStatus) is None
    assert q_enum(req("status=running"), "status", TaskStatus) is TaskStatus.RUNNING
    with pytest.raises(InvalidInput, match="must be one of") as exc:
        q_enum(req("status=sleeping"), "status", TaskStatus)
    assert exc.value.details["value"] == "sleeping"


def test_pages_follow_the_cursor_to_the_end() -> None:
    items = [Item(f"t{i}") for i in range(5)]
    page, cursor = paginate(items, req("limit=2"))
    seen = list(page)
    while cursor is not None:
        page, cursor = paginate(items, req(f"limit=2&cursor={cursor}"))
        seen += page
    assert seen == items
    with pytest.raises(InvalidInput, match="malformed cursor"):
        paginate(items, req("cursor=_w"))  # not UTF-8
    with pytest.raises(InvalidInput, match="does not match"):
        paginate(items, req("cursor=bm9wZQ"))  # "nope"


def test_the_request_id_and_the_actor_come_from_the_request() -> None:
    assert request_id(req(headers={"X-Request-Id": "r-1"})) == "r-1"
    assert request_id(req()).startswith("http:")
    r = req()
    assert actor(r) == "api"
    r[IDENTITY] = Identity("abc", "operator")
    assert actor(r) == "operator:abc"


def test_json_replies() -> None:
    assert json({"a": 1}, status=201).body == b'{"a":1}' and json({}).status == 200
    r = raw_json(b"[]")
    assert (r.body, r.content_type) == (b"[]", "application/json")
