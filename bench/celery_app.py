"""The Celery app of the tasks baseline (``celery -A bench.celery_app worker``).

Broker and result backend: the Redis at ``HIVEBENCH_REDIS`` (a private
``redis-server`` the bench starts). Queue: ``HIVEBENCH_QUEUE`` (unique per run).
Results are stored (the equivalent of the hub's durable ``task_completed``) and
expire after 10 minutes; the bench deletes them when done.
"""

from __future__ import annotations

import os

from celery import Celery

REDIS = os.environ.get("HIVEBENCH_REDIS", "redis://127.0.0.1:6379/0")
QUEUE = os.environ.get("HIVEBENCH_QUEUE", "hivebench")

app = Celery("hivebench", broker=REDIS, backend=REDIS)
app.conf.update(
    task_default_queue=QUEUE,
    result_expires=600,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    worker_send_task_events=False,
    task_send_sent_event=False,
)


@app.task(name="bench.noop")  # type: ignore[untyped-decorator]
def noop() -> None:
    return None
