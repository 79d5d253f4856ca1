"""What ``--help`` shows beyond argparse's own: each option's default, and two or three
examples per command (``EXAMPLES``, keyed by the command path). Applied to the whole
parser tree by :func:`polish`, so a new command gets the defaults without asking and
``tests/cli/test_help.py`` asks for its examples."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

#: examples per command path ("" is ``hive`` itself), shown under ``--help``
EXAMPLES: dict[str, list[str]] = {
    "": [
        "hive serve                       # the hub on http://127.0.0.1:3001, with demo agents",
        "hive status",
        'hive tasks submit --type text_analysis --require text_analysis --input \'{"text": "hi"}\' --wait',
    ],
    "serve": [
        "hive serve",
        "hive serve --port 3005 --db ./data/other.db",
        "HIVE_AUTH=on hive serve --no-demo",
    ],
    "agent": [
        "hive agent --name analyst-2 --capability text_analysis:0.8 --demo",
        "hive agent --name etl --capability data_processing:0.9 --handler mypkg.tasks:process --max-concurrent 4",
        "hive agent --name writer --capability summarize:0.7 --llm-base-url http://127.0.0.1:8080/v1 --llm-model smollm2",
    ],
    "token": ["hive token create --role operator --note ci", "hive token list", "hive token revoke ID"],
    "token create": [
        "hive token create --role viewer",
        "hive token create --role agent --agent summarizer-1",
    ],
    "token list": ["hive token list", "HIVE_DB=./data/other.db hive token list"],
    "token revoke": ["hive token revoke 3f2a9c", "hive token revoke hv_3f2a9c_..."],
    "status": ["hive status", "hive status --json | jq .metrics"],
    "agents": ["hive agents list", "hive agents show AGENT_ID", "hive agents remove AGENT_ID"],
    "agents list": ["hive agents list", "hive agents list --json"],
    "agents show": ["hive agents show demo-analyst", "hive agents show demo-analyst --json"],
    "agents remove": ["hive agents remove demo-analyst"],
    "agents reset-learning": ["hive agents reset-learning demo-analyst"],
    "tasks": ["hive tasks list", "hive tasks show TASK_ID", "hive tasks watch TASK_ID"],
    "tasks submit": [
        'hive tasks submit --type text_analysis --require text_analysis --input \'{"text": "hi"}\'',
        'hive tasks submit --type summarize --require summarize --input \'{"prompt": "..."}\' --wait',
        "hive tasks submit --type math --priority high --max-retries 5 --input-file task.json",
    ],
    "tasks list": ["hive tasks list", "hive tasks list --status failed", "hive tasks list --json"],
    "tasks show": ["hive tasks show 38f4db70", "hive tasks show 38f4db70 --json"],
    "tasks cancel": ["hive tasks cancel 38f4db70"],
    "tasks retry": ["hive tasks retry 38f4db70"],
    "tasks watch": ["hive tasks watch 38f4db70"],
    "approve": ["hive approve 38f4db70"],
    "reject": ["hive reject 38f4db70 --reason 'not now'"],
    "answer": ["hive answer 38f4db70 yes"],
    "inbox": ["hive inbox", "hive inbox --json"],
    "quotas": ["hive quotas set openai-main --tpm 90000", "hive quotas list"],
    "quotas set": [
        "hive quotas set openai-main --tpm 90000 --rpm 500",
        "hive quotas set local --max-concurrent 2",
    ],
    "quotas list": ["hive quotas list"],
    "quotas delete": ["hive quotas delete openai-main"],
    "budgets": ["hive budgets set ci --tokens-per-day 100000", "hive budgets list"],
    "budgets set": [
        "hive budgets set ci --tokens-per-day 100000",
        "hive budgets set anonymous --cost-per-day 5",
    ],
    "budgets list": ["hive budgets list"],
    "budgets delete": ["hive budgets delete ci"],
    "mcp": [
        "hive mcp --url http://127.0.0.1:3001",
        "HIVE_TOKEN=hv_... hive mcp --url http://hub.example:3001",
    ],
    "a2a-bridge": [
        "hive a2a-bridge --card http://127.0.0.1:9999 --url http://127.0.0.1:3001",
        "hive a2a-bridge --card http://a:9001 --card http://b:9002 --proficiency 0.7",
    ],
    "watch": ["hive watch", "hive watch --since 0", "hive watch --json"],
}


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Each option's help ends with its default when it has one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        return (action.help or "") + suffix(action)


def suffix(action: argparse.Action) -> str:
    """`` (env HIVE_X, default Y)``: what the help text does not say already."""
    text = action.help or ""
    parts = []
    env = getattr(action, "env", None)
    if env and env not in text:
        parts.append(f"env {env}")
    if action.option_strings and "default" not in text and _worth_showing(action.default):
        parts.append("default: %(default)s")
    if not parts:
        return ""
    return f" ({', '.join(parts)})" if text.strip() else ", ".join(parts)


def _worth_showing(default: object) -> bool:
    return not (default is None or isinstance(default, bool) or default in (argparse.SUPPRESS, [], ""))


def walk(parser: argparse.ArgumentParser, path: str = "") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every parser of the tree with its command path ("tasks list")."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, f"{path} {name}".strip())


def polish(parser: argparse.ArgumentParser, root: str = "") -> None:
    """Defaults in every help line, and the examples of each command under it
    (``root``: the command path of ``parser`` itself, for ``hive agent``'s own parser)."""
    for path, p in walk(parser, root):
        p.formatter_class = Formatter
        for action in p._actions:
            if action.option_strings and not action.help and suffix(action):
                # argparse shows no line for an option without help
                action.help = suffix(action)
                action.env = None  # type: ignore[attr-defined]  # (said)
        lines = EXAMPLES.get(path)
        if lines and "examples:" not in (p.epilog or ""):
            examples = "examples:\n" + "\n".join(f"  {line}" for line in lines)
            p.epilog = f"{p.epilog}\n\n{examples}" if p.epilog else examples
