"""``POST /internal/execute``: the leader's end of command forwarding (the
follower's end is :meth:`Cluster.forward <hivehub.server.cluster.Cluster.forward>`).
Registered by ``create_app`` on PostgreSQL only."""

from __future__ import annotations

import hmac

from aiohttp import web

from ..core.errors import Forbidden, HiveError
from ..protocol import codec
from ..protocol.errors import NotLeader
from .errors import error_response
from .hub import HUB


async def internal_execute(request: web.Request) -> web.StreamResponse:
    """A follower forwards a command here (only the leader takes it)."""
    cluster = request.app[HUB].cluster
    secret = request.headers.get("X-Hive-Cluster-Secret", "")
    if cluster is None or not hmac.compare_digest(secret.encode(), cluster.secret.encode()):
        return error_response(Forbidden("cluster secret required"))
    if not cluster.is_leader:
        return error_response(NotLeader("this replica does not lead", leader=cluster.leader_url))
    # typed decode: a malformed body is a 400/422 from the error table, never a 500
    try:
        cmds = codec.decode_forwarded(await request.read())
    except HiveError as exc:
        return error_response(exc)
    results = await cluster.service.execute_each(cmds)
    return web.Response(body=codec.encode_results(results), content_type="application/json")
