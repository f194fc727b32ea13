"""A bounded rate of failed logins per client address (in each server process's memory)."""
from __future__ import annotations

import math
import threading
import time
from collections import deque

MAX_FAILURES = 10  # failed logins per address per window, then 429 until the oldest one leaves the window
WINDOW = 60.0  # seconds
_MAX_ADDRESSES = 100_000  # memory bound: the table is cleared of stale addresses past this many


class FailedLogins:
    def __init__(self, limit: int = MAX_FAILURES, window: float = WINDOW) -> None:
        self.limit = limit
        self.window = window
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float]:
        found = self._seen.get(address)
        if found is None:
            return deque()
        while found and found[0] <= now - self.window:
            found.popleft()
        if not found:
            del self._seen[address]
        return found

    def retry_after(self, address: str, now: float | None = None) -> int | None:
        """Seconds until this address may try again, None when it may now."""
        now = time.monotonic() if now is None else now
        with self._lock:
            recent = self._recent(address, now)
            if len(recent) < self.limit:
                return None
            return max(1, math.ceil(recent[0] + self.window - now))

    def failed(self, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._seen) >= _MAX_ADDRESSES:
                for stale in [a for a, d in self._seen.items() if not d or d[-1] <= now - self.window]:
                    del self._seen[stale]
            self._seen.setdefault(address, deque()).append(now)
