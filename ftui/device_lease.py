"""Device leases: GPU work done by the web process (Playground, evaluation, merge) takes the
device through the same accounting as the job queue, so a training run and the web process
never load onto one GPU by accident.

Placeholder interface (filled in by the lease work): `leased_devices(db)` lists the devices
held by live leases; the queue's dispatch treats them as busy.
"""

from __future__ import annotations

import sqlite3


def leased_devices(db: sqlite3.Connection) -> set[str]:
    """Devices ('cuda', 'cpu') held by a live lease right now."""
    return set()
