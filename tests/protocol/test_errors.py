"""The one error table: statuses and close codes by MRO, codes rebuilt as the same classes."""

from __future__ import annotations

import msgspec
import pytest

from hivehub.client.errors import from_error_body, hive_error
from hivehub.core import errors as E
from hivehub.protocol import errors as P


def test_a_subclass_inherits_its_parents_row_unless_it_has_its_own() -> None:
    assert P.status_for(E.TaskNotFound("x")) == 404  # NotFound's row
    assert P.status_for(E.DependencyNotFound("x")) == 422  # its own, though under InvalidInput
    assert P.status_for(E.TaskExists("x")) == 409
    assert P.status_for(P.MalformedJSON("x")) == 400
    assert P.status_for(P.UnsupportedMediaType("x")) == 415
    assert P.status_for(P.UnknownMessageType("x")) == 422
    assert P.status_for(E.StoreUnavailable("x")) == 503
    assert P.status_for(P.NotLeader("x")) == 400  # HiveError's row


def test_every_refusal_closes_with_1008_and_a_bug_with_1011() -> None:
    for cls in (*E.ALL_ERRORS, *P.WIRE_ERRORS):
        assert P.close_code_for(cls("x")) == P.CLOSE_POLICY == 1008
    assert P.INTERNAL == (500, P.CLOSE_INTERNAL) and P.CLOSE_INTERNAL == 1011


def test_close_codes_are_the_ones_on_the_wire() -> None:
    assert (P.CLOSE_NORMAL, P.CLOSE_GOING_AWAY, P.CLOSE_TOO_BIG, P.CLOSE_SLOW) == (1000, 1001, 1009, 1013)
    assert (P.CLOSE_AGENT_REMOVED, P.CLOSE_AGENT_REPLACED, P.CLOSE_BACKED_UP) == (4001, 4002, 4013)


def test_codes_are_unique_and_rebuild_as_their_own_class() -> None:
    classes = (*E.ALL_ERRORS, *P.WIRE_ERRORS)
    assert len({c.code for c in classes}) == len(classes)
    for cls in classes:
        exc = P.rebuild(cls.code, "m", {"k": 1})
        assert type(exc) is cls and exc.code == cls.code and exc.message == "m" and exc.details == {"k": 1}


def test_an_unknown_code_keeps_the_hubs_code_on_a_fallback_class() -> None:
    exc = P.rebuild("brand_new", "m")
    assert type(exc) is E.HiveError and exc.code == "brand_new"
    assert P.error_class("brand_new", 404) is E.NotFound
    assert P.error_class(None, 503) is E.StoreUnavailable


def test_the_client_raises_the_wire_classes_from_their_codes() -> None:
    exc = from_error_body({"error": {"code": "malformed_json", "message": "bad", "details": {}}}, 400)
    assert isinstance(exc, P.MalformedJSON) and isinstance(exc, E.InvalidInput)
    assert exc.status == 400  # type: ignore[attr-defined]
    assert isinstance(hive_error("unsupported_frame", "m"), P.UnsupportedFrame)
    assert isinstance(hive_error("not_leader", "m"), P.NotLeader)


@pytest.mark.parametrize(
    ("foreign", "cls"),
    [
        (msgspec.ValidationError("Expected `int`"), E.InvalidInput),
        (msgspec.DecodeError("truncated"), P.MalformedJSON),
        (RecursionError(), E.PayloadTooLarge),
    ],
)
def test_foreign_errors_are_translated_at_the_boundary(
    foreign: BaseException, cls: type[E.HiveError]
) -> None:
    assert type(P.translate(foreign)) is cls


def test_a_bug_is_not_translated() -> None:
    assert P.translate(KeyError("x")) is None
    assert P.error_data(P.internal_error()) == {
        "code": "internal_error",
        "message": "internal error",
        "details": {},
    }


def test_a_refused_registration_is_in_the_tree_with_the_hubs_reason_as_its_code() -> None:
    from hivehub.agent import AgentError, RegistrationError

    assert RegistrationError is P.RegistrationError and AgentError is P.AgentError
    exc = P.RegistrationError.refused("unauthorized", "bad token", {"hint": "x"})
    assert isinstance(exc, E.HiveError) and isinstance(exc, P.AgentError)
    assert (exc.code, exc.message, exc.details, str(exc)) == (
        "unauthorized",
        "bad token",
        {"hint": "x"},
        "unauthorized: bad token",
    )
    assert type(P.rebuild("registration_refused", "m")) is P.RegistrationError
    assert P.REFUSING_CLOSES[P.CLOSE_AGENT_REMOVED][0] == "agent_removed"
    assert P.REFUSING_CLOSES[P.CLOSE_AGENT_REPLACED][0] == "agent_replaced"
