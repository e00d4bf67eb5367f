"""The estimator is warmed in the background after the server starts, without holding up pages.

A real `ftui serve` subprocess: its log says the warm-up ran (the default estimate and the
method comparison, with torch, transformers and peft imported), a page requested while it
runs comes back quickly, and the first estimate a client asks for afterwards takes a
fraction of the time the warm-up took. FTUI_WARMUP=0 turns it off.
"""

from __future__ import annotations

import os
import re
import socket
import time
import urllib.request

import pytest
from conftest import free_port, ftui_server, wait_until

from ftui.server import warmup

WARMED = re.compile(r"ftui: estimator warmed in ([\d.]+) s")


def test_the_switch_and_the_port_wait(monkeypatch):
    monkeypatch.setenv(warmup.WARMUP_ENV, "0")
    assert warmup.start_warmup("127.0.0.1", free_port()) is None
    monkeypatch.setenv(warmup.WARMUP_ENV, "1")
    assert warmup.warmup_enabled()

    closed = free_port()
    began = time.monotonic()
    assert not warmup.wait_until_listening("127.0.0.1", closed, timeout=0.5)
    assert time.monotonic() - began < 3
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert warmup.wait_until_listening("0.0.0.0", server.getsockname()[1], timeout=5)


@pytest.mark.slow
def test_the_server_warms_the_estimator_after_it_listens(tmp_path):
    from gradio_client import Client

    env = {**os.environ, warmup.WARMUP_ENV: "1", "HF_HUB_OFFLINE": "1"}
    log = tmp_path / "server.log"
    with ftui_server(tmp_path / "workspace", env, log) as url:
        assert not WARMED.search(log.read_text()), "the first page came before the warm-up"
        time.sleep(warmup.GRACE_SECONDS + 1)  # the warm-up is importing now
        began = time.perf_counter()
        with urllib.request.urlopen(url + "/", timeout=30) as response:
            assert response.status == 200
        page_seconds = time.perf_counter() - began
        warming = not WARMED.search(log.read_text())
        wait_until(lambda: WARMED.search(log.read_text()), timeout=240, every=0.5)
        warmed_in = float(WARMED.search(log.read_text()).group(1))

        client = Client(url + "/", verbose=False)
        began = time.perf_counter()
        counts = client.predict(api_name="/method_estimate")[0]
        first_estimate = time.perf_counter() - began
    assert "trainable parameters" in counts
    if warming:  # a page served while the warm-up imported torch and transformers
        assert page_seconds < 3.0, page_seconds
    assert first_estimate < warmed_in / 2, (first_estimate, warmed_in)
