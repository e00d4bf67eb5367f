"""The Playground's shared comparison: one loaded run at a time for every browser session,
placed by ftui.runs.device_lease and given back when idle.

    cache = ComparisonCache()
    compare = cache.get(run)     # loads (or reuses) base + adapter; renews its GPU lease
    cache.unload()               # drop it now
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ftui.evaluate.compare import Comparison
from ftui.runs.rundir import RunDir


class ComparisonCache:
    """One loaded comparison at a time, shared by every browser session (one base copy).

    Where it loads is ftui.runs.device_lease's policy. On the GPU the cached comparison holds a
    lease; after `idle_seconds` without use (FTUI_GPU_LEASE_IDLE_SECONDS) it is unloaded, the
    GPU memory freed and the lease given back, and the queue starts any GPU run that waited.
    While a run trains on the GPU it loads on the CPU (and stays there until the cache loads
    again), and `Comparison.note` says so.
    """

    def __init__(self, idle_seconds: float | None = None) -> None:
        from ftui.runs.device_lease import EXPIRY_MARGIN_SECONDS
        from ftui.runs.device_lease import idle_seconds as default_idle_seconds

        self.idle_seconds = default_idle_seconds() if idle_seconds is None else idle_seconds
        self._lease_ttl = self.idle_seconds + EXPIRY_MARGIN_SECONDS
        self._lock = threading.Lock()
        self._key: tuple[str, float] | None = None
        self._comparison: Comparison | None = None
        self._placement: Any = None  # ftui.runs.device_lease.Placement of the cached comparison
        self._timer: threading.Timer | None = None

    def get(self, run: RunDir) -> Comparison:
        output = run.output
        if output is None:
            raise ValueError(f"run {run.run_id} has saved no adapter or model yet")
        key = (str(run.path), output.stat().st_mtime)
        with self._lock:
            lease = self._placement.lease if self._placement is not None else None
            if lease is not None and not lease.renew(self._lease_ttl):
                self._unload()  # the lease is gone: never keep a model on the GPU without it
            if self._key != key or self._comparison is None:
                self._unload()  # drop the old weights before loading new ones
                self._comparison = self._load(run)
                self._key = key
            self._arm_idle_timer(self.idle_seconds)
            return self._comparison

    def unload(self) -> None:
        """Drop the cached comparison now, giving back its device."""
        with self._lock:
            self._unload()

    def _load(self, run: RunDir) -> Comparison:
        from ftui.runs.device_lease import place, workspace_of

        preference = run.read_config().model.device
        holder = f"playground {run.run_id}"
        placement = place(workspace_of(run.path), preference, holder, self._lease_ttl)
        try:
            comparison = Comparison.load(run, device=placement.device)
        except BaseException:
            placement.release()
            raise
        comparison.note = placement.note
        self._placement = placement
        return comparison

    def _unload(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        comparison, self._comparison, self._key = self._comparison, None, None
        if comparison is not None:
            comparison.close()
        if self._placement is not None:
            self._placement.release()  # frees the GPU cache, gives the lease back, dispatches
            self._placement = None

    def _arm_idle_timer(self, seconds: float) -> None:
        if self._placement is None or self._placement.lease is None:
            return  # CPU work holds no lease: nothing to give back
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(seconds, self._release_when_idle)
        self._timer.daemon = True
        self._timer.start()

    def _release_when_idle(self) -> None:
        with self._lock:
            comparison, placement = self._comparison, self._placement
            if comparison is None or placement is None or placement.lease is None:
                return
            idle_for = time.monotonic() - comparison.last_used
            if comparison.lock.locked() or idle_for < self.idle_seconds:
                placement.lease.renew(self._lease_ttl)
                self._arm_idle_timer(max(self.idle_seconds - idle_for, 1.0))
                return
            self._unload()
