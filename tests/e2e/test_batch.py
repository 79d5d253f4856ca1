"""``POST /api/tasks/batch`` is all or nothing, through the real server (one core
command, ``SubmitTasks``): a batch whose third task is invalid leaves no trace of
the first two, whatever makes the third invalid."""

from __future__ import annotations

from tests.hubproc import Hub


def test_a_batch_whose_third_task_is_invalid_creates_nothing(hub: Hub) -> None:
    hub.post("/api/tasks", {"id": "taken"}, expect=201)
    for third, code in (
        ({"id": "c", "depends_on": ["c"]}, "invalid_input"),  # itself
        ({"id": "c", "depends_on": ["d"]}, "dependency_not_found"),  # a later task of the batch
        ({"id": "c", "depends_on": ["nowhere"]}, "dependency_not_found"),
        ({"id": "taken"}, "task_exists"),
    ):
        status, body = hub.request(
            "POST", "/api/tasks/batch", {"tasks": [{"id": "a"}, {"id": "b"}, third, {"id": "d"}]}
        )
        assert status in (409, 422), (third, status, body)
        assert body["error"]["code"] == code, (third, body)
        assert hub.request("GET", "/api/tasks/a")[0] == 404, third
        assert hub.request("GET", "/api/tasks/b")[0] == 404, third
    assert [e["data"]["task"]["id"] for e in hub.events(types="task_created")] == ["taken"]
    # the same batch, valid, is created whole, in order, one event cause per task
    out = hub.post("/api/tasks/batch", {"tasks": [{"id": "a"}, {"id": "b", "depends_on": ["a"]}]}, expect=201)
    assert [t["id"] for t in out["tasks"]] == ["a", "b"]
    causes = [e["data"]["caused_by"] for e in hub.events(types="task_created")][1:]
    assert len(causes) == 2 and causes[0].endswith("#0") and causes[1].endswith("#1")
