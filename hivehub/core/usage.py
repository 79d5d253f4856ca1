"""Model usage: pricing, folding totals, token and cost estimates. Pure rules.

- The hub prices usage, not the agent: :func:`usage_of` turns an agent's
  :class:`~hivehub.core.model.UsageReport` into the :class:`~hivehub.core.model.Usage`
  an event carries, with ``cost_usd`` from ``HiveConfig.prices`` (a ``"*"`` entry
  prices every model not listed; a model without a price costs ``None`` and its
  tokens are counted as unpriced). The core prices when it decides, so the event
  carries the cost and a replay never recomputes it (a later price change does not
  rewrite history).
- Totals are folded from the attempts' ends (``projection.py`` calls :func:`fold`):
  per agent (``AgentMetrics.usage``), per model, per task type and per owner.
- The token estimate of a task (:func:`estimate_tokens`): its ``estimated_tokens``,
  else the mean of its type's history, else its ``max_tokens``, else
  ``HiveConfig.default_estimated_tokens``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from .model import ModelPrice, PromptTokensSource, Reservation, Task, Usage, UsageReport, UsageTotals

__all__ = [
    "add_usage",
    "estimate_cost",
    "estimate_tokens",
    "fold",
    "price_for",
    "reservation_for",
    "totals_entry",
    "usage_of",
    "usage_summary",
    "utc_day",
    "weakest_source",
]


def price_for(prices: dict[str, ModelPrice], model: str) -> ModelPrice | None:
    """The model's price: its own entry, else the ``"*"`` entry, else ``None``."""
    return prices.get(model) or prices.get("*")


def usage_of(report: UsageReport, prices: dict[str, ModelPrice]) -> Usage:
    """What the hub logs for an agent's report: totals and the cost from the price table
    (``prompt * input / 1e6 + completion * output / 1e6``, rounded to 1e-9 USD)."""
    price = price_for(prices, report.model)
    cost = None
    if price is not None:
        cost = round(
            report.prompt_tokens * price.input_per_million / 1e6
            + report.completion_tokens * price.output_per_million / 1e6,
            9,
        )
    return Usage(
        model=report.model,
        prompt_tokens=report.prompt_tokens,
        completion_tokens=report.completion_tokens,
        total_tokens=report.prompt_tokens + report.completion_tokens,
        cost_usd=cost,
        prompt_tokens_source=report.prompt_tokens_source,
    )


def add_usage(total: Usage | None, u: Usage) -> Usage:
    """Usage summed over attempts (``Task.usage``): the latest model; the cost is
    known only while every attempt's was."""
    if total is None:
        return u
    cost = None
    if total.cost_usd is not None and u.cost_usd is not None:
        cost = round(total.cost_usd + u.cost_usd, 9)
    return Usage(
        model=u.model,
        prompt_tokens=total.prompt_tokens + u.prompt_tokens,
        completion_tokens=total.completion_tokens + u.completion_tokens,
        total_tokens=total.total_tokens + u.total_tokens,
        cost_usd=cost,
        prompt_tokens_source=weakest_source(total.prompt_tokens_source, u.prompt_tokens_source),
    )


_CERTAINTY: dict[str, int] = {"server": 0, "tokenizer": 1, "estimate": 2}


def weakest_source(a: PromptTokensSource | None, b: PromptTokensSource | None) -> PromptTokensSource | None:
    """The ``prompt_tokens_source`` of a sum: the less certain of the two (an unsaid one
    does not count)."""
    if a is None or b is None:
        return a or b
    return a if _CERTAINTY[a] >= _CERTAINTY[b] else b


def fold(totals: UsageTotals, u: Usage) -> None:
    """Add one attempt's usage to ``totals`` (mutates it)."""
    totals.requests += 1
    totals.prompt_tokens += u.prompt_tokens
    totals.completion_tokens += u.completion_tokens
    totals.total_tokens += u.total_tokens
    if u.cost_usd is None:
        totals.unpriced_tokens += u.total_tokens
    else:
        totals.cost_usd = round(totals.cost_usd + u.cost_usd, 9)


def totals_entry(t: UsageTotals) -> dict[str, Any]:
    return {
        "requests": t.requests,
        "prompt_tokens": t.prompt_tokens,
        "completion_tokens": t.completion_tokens,
        "total_tokens": t.total_tokens,
        "cost_usd": t.cost_usd,
        "unpriced_tokens": t.unpriced_tokens,
    }


def usage_summary(
    by_model: dict[str, UsageTotals], by_type: dict[str, UsageTotals], by_owner: dict[str, UsageTotals]
) -> dict[str, Any]:
    """``{"total", "by_model", "by_type", "by_owner"}`` (``/api/hive/status`` ``llm``)."""
    total = UsageTotals()
    for t in by_model.values():
        total.requests += t.requests
        total.prompt_tokens += t.prompt_tokens
        total.completion_tokens += t.completion_tokens
        total.total_tokens += t.total_tokens
        total.cost_usd = round(total.cost_usd + t.cost_usd, 9)
        total.unpriced_tokens += t.unpriced_tokens
    return {
        "total": totals_entry(total),
        "by_model": {k: totals_entry(v) for k, v in sorted(by_model.items())},
        "by_type": {k: totals_entry(v) for k, v in sorted(by_type.items())},
        "by_owner": {k: totals_entry(v) for k, v in sorted(by_owner.items())},
    }


def estimate_tokens(t: Task, history: UsageTotals | None, default: int) -> int:
    """Tokens one attempt of ``t`` is expected to use: its ``estimated_tokens``, else
    the mean over its type's history, else its ``max_tokens``, else ``default``."""
    if t.estimated_tokens is not None:
        return t.estimated_tokens
    if history is not None and history.requests:
        return max(1, round(history.total_tokens / history.requests))
    if t.max_tokens is not None:
        return t.max_tokens
    return default


def estimate_cost(t: Task, history: UsageTotals | None) -> float:
    """USD one attempt of ``t`` may spend: its ``max_cost_usd``, else the mean priced
    cost of its type's history, else 0."""
    if t.max_cost_usd is not None:
        return t.max_cost_usd
    if history is not None and history.requests:
        return round(history.cost_usd / history.requests, 9)
    return 0.0


def reservation_for(t: Task, history: UsageTotals | None, default: int, quota: str | None) -> Reservation:
    """What assigning ``t`` holds: the estimate from the pool, and against the budget
    the task's own caps where it has them (the agent stops the completion there, so
    the budget's overspend is bounded by the attempts in flight: by their prompts'
    tokens beyond the type's mean prompt, and by nothing else)."""
    tokens = estimate_tokens(t, history, default)
    if t.max_tokens is not None:
        # max_tokens caps the completion (the SDK stops the stream there, as the
        # OpenAI API does); the prompt comes on top: its mean over the type's history
        prompt = (
            round(history.prompt_tokens / history.requests) if history is not None and history.requests else 0
        )
        budget_tokens = t.max_tokens + prompt
    else:
        budget_tokens = tokens
    return Reservation(
        tokens=tokens,
        budget_tokens=budget_tokens,
        cost_usd=estimate_cost(t, history),
        quota=quota,
    )


def utc_day(at: datetime) -> date:
    """The UTC calendar day of ``at`` (a naive time is taken as UTC)."""
    return at.astimezone(UTC).date() if at.tzinfo is not None else at.date()
