"""Queue names and timeouts: short/default/long plus the custom queues of ``workers``."""

from __future__ import annotations

from typing import Any

from jobbench.errors import InvalidQueue

STANDARD_QUEUES: dict[str, int] = {"short": 300, "default": 300, "long": 1500}
CUSTOM_DEFAULT_TIMEOUT = 300


def queue_timeouts(conf: dict[str, Any]) -> dict[str, int]:
    """Every valid queue with its default timeout, in worker priority order: short, default,
    long, then the ``workers`` queues (a custom entry of a built-in name sets its timeout).

    A ``workers`` value that is not a mapping, or an entry that is not one, is ignored, as in
    Frappe's newest ``get_queues_timeout`` (config files are checked on reading, so only a
    config built in code can hold one)."""
    queues = dict(STANDARD_QUEUES)
    workers = conf.get("workers")
    if not isinstance(workers, dict):
        return queues
    for name, spec in workers.items():
        if isinstance(spec, dict):
            queues[name] = int(spec.get("timeout", CUSTOM_DEFAULT_TIMEOUT))
    return queues


def all_queues(conf: dict[str, Any]) -> list[str]:
    return list(queue_timeouts(conf))


def validate_queue(conf: dict[str, Any], queue: str) -> int:
    """Return the queue's default timeout, or raise InvalidQueue listing the valid names."""
    timeouts = queue_timeouts(conf)
    if queue not in timeouts:
        raise InvalidQueue(
            f"queue {queue!r} is not valid; use one of: {', '.join(timeouts)} "
            "(add custom queues under 'workers' in common_site_config.json)"
        )
    return timeouts[queue]


def parse_queue_list(conf: dict[str, Any], text: str | None) -> list[str]:
    """'short,default' -> ['short', 'default'], each validated; None -> every queue."""
    if not text:
        return all_queues(conf)
    names = [q.strip() for q in text.split(",") if q.strip()]
    for name in names:
        validate_queue(conf, name)
    return list(dict.fromkeys(names))
