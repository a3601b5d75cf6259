"""Step requests waiting for the model: nothing the user presses is lost, and a burst is one job.

Keys arrive faster than steps are computed (a held `n` repeats ~30 times a second). Each press
is queued here; one worker drains the queue. Consecutive moves fold into one `Workbench.walk`
(three `n` = three steps ahead, computed once, exactly as three presses would clamp), so a
burst costs one computation, and other requests (a prompt, an ablation) keep their order.

Plain Python and thread-safe: the UI thread pushes, the worker takes. No Textual, no torch.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Move = int | str  # a step forward/back, or a step to go to (its name)


@dataclass
class Job:
    """Either moves to walk (with the component in focus) or one other call to make."""

    moves: list[Move] = field(default_factory=list)
    focus: str | None = None
    call: Callable[[], Any] | None = None


class StepQueue:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: deque[Job] = deque()
        self._running = False

    def move(self, move: Move | None, focus: str | None) -> bool:
        """Queue a move (None: just redraw with this focus). True when a worker must be started."""
        return self._push(Job([] if move is None else [move], focus))

    def call(self, fn: Callable[[], Any]) -> bool:
        """Queue another call (set a prompt, ablate, ...). True when a worker must be started."""
        return self._push(Job(call=fn))

    def _push(self, job: Job) -> bool:
        with self._lock:
            self._jobs.append(job)
            if self._running:
                return False
            self._running = True
            return True

    def take(self) -> Job | None:
        """The next job, with every move queued right behind a move folded into it; None when
        the queue is empty (the worker then stops: the next push starts another)."""
        with self._lock:
            if not self._jobs:
                self._running = False
                return None
            job = self._jobs.popleft()
            if job.call is None:
                while self._jobs and self._jobs[0].call is None:
                    nxt = self._jobs.popleft()
                    job = Job(job.moves + nxt.moves, nxt.focus if nxt.focus is not None else job.focus)
            return job

    def stopped(self) -> None:
        """The worker ended (normally or not): a later push starts a new one."""
        with self._lock:
            self._running = False

    def clear(self) -> None:
        with self._lock:
            self._jobs.clear()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._jobs)


class Latest:
    """The newest of a stream of requests, for one worker that drains it: B of a diff follows
    A's prompt and step, and only where A is now matters (a burst of steps is one computation)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._item: Any = None
        self._running = False

    def put(self, item: Any) -> bool:
        """Replace the waiting request. True when a worker must be started."""
        with self._lock:
            self._item = item
            if self._running:
                return False
            self._running = True
            return True

    def take(self) -> Any:
        """The newest request (None when there is none: the worker then stops)."""
        with self._lock:
            item, self._item = self._item, None
            if item is None:
                self._running = False
            return item

    def stopped(self) -> None:
        with self._lock:
            self._running = False
