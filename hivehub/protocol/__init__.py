"""The wire contract, shared by every end: the hub's adapters (REST, ``/ws``,
``/agents/ws``, the cluster forwarder), the Python client and the agent SDK.

Pure: it imports only msgspec, the standard library and ``hivehub.core``; no
sockets, no aiohttp. Bytes or decoded JSON go in, typed messages and core
commands come out; events and errors go in, bytes come out.

- :mod:`.errors`: the one error table (class -> HTTP status, WebSocket close
  code, stable ``code``), the close codes, errors rebuilt from codes.
- :mod:`.limits`: JSON limits (nesting depth) and typed decoding of bodies.
- :mod:`.frames`: message envelopes and ready-made WebSocket frames.
- :mod:`.messages`: one msgspec ``Struct`` per wire message.
- :mod:`.codec`: wire messages -> core commands; events and errors -> bytes.
"""
