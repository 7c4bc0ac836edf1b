"""The API judges' questions asked over several connections at once.

An API judge spends its time waiting on the network, not computing, so threads over the one
`httpx.Client` (thread-safe, its pool sized to `judge.concurrency`) overlap the waits with
no change to the backends' blocking `complete()`. Each reply is handed to `done` the moment it
arrives, one at a time under a lock: the cache writes it then (atomically), so a crash or a
kill keeps every reply already received. Results are placed by question, not by arrival, so
every stage sees them in the same order as one at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any


def ask_concurrently(
    complete: Callable[..., str],
    items: Sequence[tuple[Any, ...]],
    done: Callable[[int, str], None],
    workers: int,
) -> None:
    """complete(*items[j]) for every j on at most `workers` threads; done(j, text) as each
    reply arrives. After a failure no new request is sent; those already in flight end (their
    replies kept), then the failure of the earliest question is raised."""
    lock = threading.Lock()

    def one(j: int) -> None:
        text = complete(*items[j])
        with lock:
            done(j, text)

    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(items))),
                              thread_name_prefix="judge")
    futures: list[Future[None]] = []
    try:
        futures = [pool.submit(one, j) for j in range(len(items))]
        wait(futures, return_when=FIRST_EXCEPTION)
    finally:
        # Ctrl-C or a failure: nothing new is sent; the requests in flight finish and are cached
        pool.shutdown(wait=True, cancel_futures=True)
    for f in futures:
        if not f.cancelled() and f.exception() is not None:
            raise f.exception()  # type: ignore[misc]
