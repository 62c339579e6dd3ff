"""Random job ids (jobs/enqueue.py, new_id): drawn from a pool, never handed out twice, not
across threads and not across a fork (a child that reused its parent's pool would give jobs
the ids its parent is about to give, and one would overwrite the other)."""

from __future__ import annotations

import os
import threading

from jobbench.jobs import enqueue


def test_ids_are_32_hex_digits_and_unique_across_threads() -> None:
    seen: list[list[str]] = []

    def draw() -> None:
        seen.append([enqueue.new_id() for _ in range(2_000)])

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [i for batch in seen for i in batch]
    assert len(ids) == 8_000 and len(set(ids)) == 8_000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_a_forked_child_never_hands_out_its_parents_pooled_ids() -> None:
    enqueue.new_id()  # the pool now holds ids this process will hand out next
    pooled = set(enqueue._ids)
    assert pooled
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(write, " ".join(enqueue.new_id() for _ in range(100)).encode())
        finally:
            os._exit(0)
    os.close(write)
    child = set(os.read(read, 1 << 16).decode().split())
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 100
    assert not child & pooled
