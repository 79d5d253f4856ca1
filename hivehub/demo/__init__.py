"""The demo: handlers that do real work on their input, the three demo agents that
``hive serve`` starts, and a workload generator that submits realistic tasks.

It is an ordinary user of the agent SDK (:mod:`hivehub.agent`), kept outside it.

Handlers (plain ``def``: they run in the agent's thread pool, report progress with
``ctx.progress_sync`` and poll ``ctx.check_cancelled``):

* ``data_processing`` (``records.py``): a profile of ``{"records": [...]}``,
  ``{"csv": "..."}`` or a generated ``{"dataset": {...}}``; ``max_invalid_share``
  fails it with ``DATA_QUALITY`` when more rows are broken
* ``text_analysis`` (``text.py``): counts, top words, Flesch readability (syllables
  from the CMU dictionary and pyphen), VADER sentiment, character statistics of
  ``{"text": "..."}`` or a generated ``{"corpus": {...}}``
* ``math`` / ``numeric`` (``numeric.py``, sympy): ``primes_up_to``, ``fibonacci``,
  ``statistics``, ``factorize`` (within ``time_budget_seconds``), ``gcd_lcm``

Generated data sets are in ``datasets.py``. Invalid input fails the task with code
``INVALID_INPUT`` and ``retryable=False``.
"""

from __future__ import annotations

from .agents import DEMO_HANDLERS, demo_agents, register_demo_handlers
from .numeric import compute_numeric, math_task
from .records import analyze_records, data_processing
from .text import STOPWORDS, analyze_text, flesch_reading_ease, syllables, text_analysis, text_analysis_within
from .workload import demo_workload, make_demo_task

__all__ = [
    "DEMO_HANDLERS",
    "STOPWORDS",
    "analyze_records",
    "analyze_text",
    "compute_numeric",
    "data_processing",
    "demo_agents",
    "demo_workload",
    "flesch_reading_ease",
    "make_demo_task",
    "math_task",
    "register_demo_handlers",
    "syllables",
    "text_analysis",
    "text_analysis_within",
]
