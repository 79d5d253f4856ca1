"""The Python agent SDK: connect to a Hive Hub, receive tasks, run handlers, report.

::

    from hivehub.agent import Agent, Result, TaskFailure

    agent = Agent("Worker-1", {"data_processing": 0.85}, url="ws://127.0.0.1:3001")

    @agent.handler("data_processing")
    async def process(ctx):
        await ctx.progress(0.5, "halfway")
        return Result({"rows": len(ctx.input["records"])}, quality=0.9)

    agent.run_forever()

The wire protocol is documented in ``docs/agent-protocol.md``.
"""

from hivehub.core.model import Capability

from .base import AgentError, BaseAgent, Handler, RegistrationError
from .context import InputTimedOut, Result, TaskCancelled, TaskContext, TaskFailure
from .options import AgentOptions
from .pull import PullAgent
from .ws import Agent

__all__ = [
    "Agent",
    "AgentError",
    "AgentOptions",
    "BaseAgent",
    "Capability",
    "Handler",
    "InputTimedOut",
    "PullAgent",
    "RegistrationError",
    "Result",
    "TaskCancelled",
    "TaskContext",
    "TaskFailure",
    "cli_main",
]


def cli_main(argv: list[str] | None = None) -> int:
    """``hive agent`` (its command line lives with the other commands: :mod:`hivehub.cli.agent`)."""
    from hivehub.cli.agent import cli_main as main

    return main(argv)
