"""One ready group of the scheduler's ready queue (``indexes.py``): its entries in order.

A plain container, so ``state.py`` can hold it without importing the indexes.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator

__all__ = ["ReadyEntry", "ReadyQueue"]

#: (queue key, entry sequence, task id): ``policies.queue_key``, ties by the sequence
ReadyEntry = tuple[float, int, str]


class ReadyQueue:
    """One ready group's entries ``(queue key, seq, task id)``, smallest first.

    Most entries arrive in order (tasks of one priority, each created after the
    last), so an entry larger than every entry of ``run`` is appended to that
    deque, and any other is pushed on ``heap``: taking the head of a 100,000-task
    queue is then a ``popleft`` rather than a heap pop (about 2 us there). The
    smallest entry is the smaller of the two fronts; seqs are unique, so entries
    are totally ordered and the order of ``top``/``pop`` is exactly a heap's.
    Iterating yields every entry, current or stale, in no particular order."""

    __slots__ = ("heap", "run")

    def __init__(self) -> None:
        self.run: deque[ReadyEntry] = deque()
        self.heap: list[ReadyEntry] = []

    def push(self, entry: ReadyEntry) -> None:
        run = self.run
        if not run or entry > run[-1]:
            run.append(entry)
        else:
            heapq.heappush(self.heap, entry)

    def top(self) -> ReadyEntry:
        """The smallest entry (the queue is not empty)."""
        run, heap = self.run, self.heap
        if heap and (not run or heap[0] < run[0]):
            return heap[0]
        return run[0]

    def pop(self) -> ReadyEntry:
        """Remove and return the smallest entry (the queue is not empty)."""
        run, heap = self.run, self.heap
        if heap and (not run or heap[0] < run[0]):
            return heapq.heappop(heap)
        return run.popleft()

    def clean(self, current: dict[str, int]) -> bool:
        """Drop the stale entries at the front: an entry is current while
        ``current[task id]`` is its seq. Returns whether any entry is left.

        (``while q and stale(q.top()): q.pop()`` in one call: this runs for every
        task that leaves the queue.)"""
        run, heap = self.run, self.heap
        while True:
            if heap and (not run or heap[0] < run[0]):
                _, seq, task_id = heap[0]
                if current.get(task_id) == seq:
                    return True
                heapq.heappop(heap)
            elif run:
                _, seq, task_id = run[0]
                if current.get(task_id) == seq:
                    return True
                run.popleft()
            else:
                return False

    def __bool__(self) -> bool:
        return bool(self.run) or bool(self.heap)

    def __len__(self) -> int:
        return len(self.run) + len(self.heap)

    def __iter__(self) -> Iterator[ReadyEntry]:
        yield from self.run
        yield from self.heap

    def __repr__(self) -> str:
        return f"ReadyQueue({sorted(self)!r})"
