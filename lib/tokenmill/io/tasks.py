"""How read units (files, or byte ranges of one) are grouped into Spark tasks.

One task per unit is right for crawl files (a Common Crawl WARC is about 1 GB, minutes of work), but a
folder of small files then pays a task's fixed cost (scheduling, a Python worker's round trip, about
45 ms here) per file: 100 WARC files of 1,000 pages lost 2 s of 18 on 2 cores to it. Small units are
packed like Spark packs its own file splits (`spark.sql.files.maxPartitionBytes`, with an open cost per
file): into at most `TASK_BYTES` per task, and into no fewer than `TASKS_PER_CORE` tasks per core, so every
core has work and the tail stays short. Units are dealt largest first to the lightest task (LPT), which
keeps the tasks' bytes within one unit of each other.
"""

from __future__ import annotations

import heapq
from typing import TypeVar

TASK_BYTES = 128 << 20  # Spark's default spark.sql.files.maxPartitionBytes
OPEN_COST = 4 << 20  # Spark's default spark.sql.files.openCostInBytes: a file's fixed cost, in bytes
TASKS_PER_CORE = 3  # enough tasks to even out cores when file sizes and contents differ

Unit = TypeVar("Unit")


def plan(units: list[Unit], weights: list[int], cores: int, task_bytes: int = TASK_BYTES,
         tasks_per_core: int = TASKS_PER_CORE) -> list[list[Unit]]:
    """``units`` grouped into tasks: at least ``tasks_per_core`` tasks per core, no task over ``task_bytes``
    unless it is a single unit, never more tasks than units. Units are dealt largest first to the lightest
    group (LPT); each group keeps its units in their given order, and groups are ordered by their first
    unit. The task count grows until the packing meets the byte cap; that packing is the one returned."""
    if not units:
        return []
    n = min(len(weights), max(-(-sum(weights) // task_bytes), cores * tasks_per_core, 1))
    while n < len(weights):
        groups = _lpt(weights, n)
        heaviest = max((sum(weights[i] for i in g), len(g)) for g in groups)
        if heaviest[0] <= task_bytes or heaviest[1] == 1:
            return [[units[i] for i in g] for g in groups]
        n = min(len(weights), max(n + 1, -(-n * heaviest[0] // task_bytes)))
    return [[u] for u in units]


def _lpt(weights: list[int], tasks: int) -> list[list[int]]:
    """Indices of ``weights`` in ``tasks`` groups, largest first to the lightest group; sorted, non-empty."""
    heap = [(0, i) for i in range(tasks)]
    members: list[list[int]] = [[] for _ in range(tasks)]
    for index in sorted(range(len(weights)), key=lambda i: (-weights[i], i)):
        load, group = heapq.heappop(heap)
        members[group].append(index)
        heapq.heappush(heap, (load + weights[index], group))
    return sorted(sorted(m) for m in members if m)


def unit_weight(size: int, whole: bool = True) -> int:
    """A unit's weight for packing: a whole file's bytes plus the open cost. A byte range of a file split on
    purpose (``split_bytes``), or a file whose size is not known (one taken from a published listing),
    weighs a whole task, so each keeps a task of its own."""
    return (size if whole and size >= 0 else TASK_BYTES) + OPEN_COST
