"""Iterate while the next items are produced in a background thread.

Decoding a video, rendering a SynME frame and computing optical flow spend their time in OpenCV or the codec,
which release the GIL: producing the next items in a second thread overlaps them with the caller's work on two
cores. One helper for the spotter's decoder and the SynME long-video renderer.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def produced_ahead(items: Iterable[T], depth: int = 16, name: str = "aullm-ahead") -> Iterator[T]:
    """`items` in order, with at most `depth` of the next ones produced ahead in a thread. An error of the producer
    is raised in the caller's thread, after the items produced before it; leaving the loop early stops the
    producer (it never stays blocked on a full buffer)."""
    waiting: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()
    failed: list[BaseException] = []

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                waiting.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as err:  # handed to the consumer
            failed.append(err)
        put(done)

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while True:
            item = waiting.get()
            if item is done:
                break
            yield item
    finally:
        stop.set()
        worker.join()
    if failed:
        raise failed[0]


__all__ = ["produced_ahead"]
