"""Warm the Method tab's estimator in the background once the server is listening.

The first estimate after a start imports torch, transformers and peft, reads the model's
config and builds the model on the meta device with each method's adapter: over 15 s on a
2-core machine, against about 3 s for the next one. The first page must not wait for any of
that (ftui imports these libraries lazily), so a daemon thread does it after the server
answers on its port and a short grace for the first page's files has passed: it runs the
same estimate and method comparison the Method tab runs when it opens, on the default
settings. A visitor who opens the Method tab after that gets the quick estimate.

The imports go through `ftui.heavy_imports`, whose lock keeps a callback that needs them at
the same time from importing transformers in a second thread. FTUI_WARMUP=0 turns the
warm-up off (benchmarks/startup.py measures both).
"""

from __future__ import annotations

import os
import socket
import threading
import time

WARMUP_ENV = "FTUI_WARMUP"
GRACE_SECONDS = 2.0  # after the port answers: the first page's HTML, scripts and config
LISTEN_TIMEOUT_SECONDS = 300.0


def warmup_enabled() -> bool:
    return os.environ.get(WARMUP_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def start_warmup(host: str, port: int) -> threading.Thread | None:
    """Start the warm-up thread (None when FTUI_WARMUP=0); it waits for the server itself."""
    if not warmup_enabled():
        return None
    thread = threading.Thread(
        target=_warm_when_listening, args=(host, port), name="ftui-warmup", daemon=True
    )
    thread.start()
    return thread


def _warm_when_listening(host: str, port: int) -> None:
    if not wait_until_listening(host, port, LISTEN_TIMEOUT_SECONDS):
        print("ftui: warm-up skipped: the server did not answer on its port", flush=True)
        return
    time.sleep(GRACE_SECONDS)
    started = time.perf_counter()
    try:
        warm_estimator()
    except Exception as exc:  # the first estimate then does the work itself
        print(f"ftui: warm-up failed ({type(exc).__name__}: {exc})", flush=True)
        return
    print(f"ftui: estimator warmed in {time.perf_counter() - started:.1f} s", flush=True)


def wait_until_listening(host: str, port: int, timeout: float) -> bool:
    """True once a TCP connection to the server's port succeeds (the wildcard addresses are
    reached on loopback)."""
    address = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=1.0):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def warm_estimator() -> None:
    """What the Method tab's first estimate needs: the heavy imports, the default model's
    config, a meta-device model with each method applied (the estimate, then all methods)."""
    from ftui.heavy_imports import import_heavy_libraries

    import_heavy_libraries()
    from ftui.ui.catalog_view import compare_for_ui
    from ftui.ui.method_layout import DEFAULT_GPU, EXAMPLE_ROWS
    from ftui.ui.method_view import catalog_price, estimate_for_ui

    where = {  # the tab's own defaults
        "device": "cuda",
        "gpu_name": DEFAULT_GPU,
        "price": catalog_price(DEFAULT_GPU),
        "dataset_rows": EXAMPLE_ROWS,
    }
    view = estimate_for_ui({}, **where)
    if not view["ok"]:
        raise RuntimeError(view["message"])
    compare_for_ui({}, **where)
