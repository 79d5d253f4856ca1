"""Property-based fuzzing of the REST API from its own OpenAPI document (issue "Fuzzing in CI").

Schemathesis reads ``/api/openapi.json`` from a real ``hive serve`` and, for every
operation, sends a bounded, deterministic set of generated requests (valid and
invalid). Each response must not be a 5xx, must use a status the document
declares, and its body must match the declared schema.
"""

from __future__ import annotations

import copy
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import hivehub.server.app  # noqa: F401 - registers every module's routes, as the hub does
from hivehub.server.rest import openapi
from tests.hubproc import Hub

#: The long-poll claim may legitimately hold a request for up to ``max_claim_wait``
#: (60 s) when the agent exists. The fuzzer mostly hits unknown agents (an immediate
#: 404), but one generated agent id that exists, with a large ``wait``, would park a
#: request for up to a minute. Rather than excluding the operation, the *test's copy*
#: of the document narrows ``wait`` to this bound (the served document keeps the real one).
FUZZ_MAX_CLAIM_WAIT = 0.5


@schemathesis.check
def schema_valid_is_not_invalid(ctx: Any, response: Any, case: Any) -> None:
    """The document agrees with validation: a request the document calls valid is never
    refused for its shape. Schema mismatches are the ``invalid request: ...`` errors
    (msgspec validation); rules the document cannot state (a dependency that does not
    exist, a capability listed twice, an empty patch) have their own messages or codes."""
    if (
        case.meta is None
        or not case.meta.generation.mode.is_positive
        or response.status_code not in (400, 422)
    ):
        return
    err = (response.json() or {}).get("error", {})
    if err.get("code") == "malformed_json" or str(err.get("message", "")).startswith("invalid request:"):
        raise AssertionError(f"the document allows this request, validation refused it: {err}")


@schemathesis.check
def method_not_allowed_names_allow(ctx: Any, response: Any, case: Any) -> None:
    """RFC 9110: a 405 lists the allowed methods in ``Allow``."""
    if response.status_code == 405 and not response.headers.get("allow"):
        raise AssertionError("405 without an Allow header")


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    schema_valid_is_not_invalid,
    method_not_allowed_names_allow,
]


@pytest.fixture(scope="module")
def fuzz_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    tmp: Path = tmp_path_factory.mktemp("openapi-fuzz")
    # --rate-limit 0: the fuzzer sends hundreds of mutating requests quickly and
    # must see the real answers, not 429s.
    hub = Hub(tmp / "hive.db", "--rate-limit", "0").start()
    try:
        yield hub
    finally:
        hub.stop()
    assert "Traceback" not in hub.logs(), hub.logs()[-5000:]


def _bounded_document(doc: dict[str, Any]) -> dict[str, Any]:
    claim = doc["paths"]["/api/agents/{id}/claim"]["post"]
    for p in claim["parameters"]:
        if p["name"] == "wait":
            # served as a plain string (like every query parameter); here a number, so
            # the bound means something to the generator
            p["schema"] = {"type": "number", "minimum": 0, "maximum": FUZZ_MAX_CLAIM_WAIT}
            break
    else:  # the document changed shape: make the bound impossible to lose silently
        raise AssertionError("claim has no 'wait' parameter to bound")
    return doc


# The document is generated in-process (the same ``openapi()`` call the hub serves)
# so schemathesis can make one test item per operation at collection time, which
# also lets pytest-xdist spread the operations over workers. ``test_served_document``
# pins that the running hub serves exactly this document.
DOCUMENT = openapi()
schema = schemathesis.openapi.from_dict(_bounded_document(copy.deepcopy(DOCUMENT)))


def test_served_document(fuzz_hub: Hub) -> None:
    with urllib.request.urlopen(fuzz_hub.url + "/api/openapi.json", timeout=10) as r:
        assert json.loads(r.read()) == json.loads(json.dumps(DOCUMENT))


@schema.parametrize()
@settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_openapi_fuzz(case: Any, fuzz_hub: Hub) -> None:
    case.call_and_validate(base_url=fuzz_hub.url, checks=CHECKS)
