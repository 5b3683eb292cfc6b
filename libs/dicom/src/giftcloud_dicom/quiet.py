"""pydicom's warnings about odd values, silenced for a block, safely across threads.

``warnings.catch_warnings`` swaps process-wide state (the filter list) and restores it on
the way out, so two blocks overlapping in two threads (the services decode in worker
threads) can leave the process with the other's filters for good. Every such block in
giftcloud goes through :func:`quiet`, which holds one lock while it runs: no overlap, and
no global switch left flipped.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

_LOCK = threading.RLock()


@contextmanager
def quiet() -> Iterator[None]:
    """Warnings ignored inside the block (one block at a time in the process)."""
    with _LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
