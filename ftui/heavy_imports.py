"""Import transformers and peft once, one thread at a time.

Gradio runs callbacks in worker threads. Two of them importing transformers for the first
time at once can fail with "cannot import name 'AutoConfig' from 'transformers'" (its lazy
module is not thread-safe). Every entry point that needs these libraries calls
`import_heavy_libraries()` first; after the first call it costs a lock and a flag check.
"""

from __future__ import annotations

import threading
import time

_LOCK = threading.Lock()
_imported = False


def import_heavy_libraries(attempts: int = 3) -> None:
    global _imported
    if _imported:
        return
    with _LOCK:
        for attempt in range(attempts):
            try:
                from peft import get_peft_model  # noqa: F401
                from transformers import (  # noqa: F401
                    AutoConfig,
                    AutoModelForCausalLM,
                    AutoTokenizer,
                )

                _imported = True
                return
            except ImportError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.5)
