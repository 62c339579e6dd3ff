"""When a scheduled job type is next due: cron maths in the site's time zone.

Frequencies map to cron expressions as in Frappe (Hourly ``0 * * * *``, Daily ``0 0 * * *``,
Weekly ``0 0 * * 0``, Monthly ``0 0 1 * *``, Yearly/Annual ``0 0 1 1 *``); ``All`` runs every
``scheduler_interval`` seconds, aligned to multiples of the interval since local midnight (so
240 s gives :00, :04, :08, ... like Frappe's ``0/4 * * * *``, and intervals under a minute work
too). Times are evaluated as aware datetimes in the site's zone, so DST changes are handled by
croniter; they are stored naive, in local time, like every document datetime.

The next execution is the first slot strictly after ``last_execution`` (or ``creation`` for a
job type that never ran): missed slots are not replayed, and a new job type is not due before
its first slot after creation. There is no random jitter: due-ness is deterministic.
"""

from __future__ import annotations

import datetime as dt
import math
from zoneinfo import ZoneInfo

from croniter import croniter

from jobbench.errors import ValidationError

CRON_MAP = {
    "Hourly": "0 * * * *",
    "Daily": "0 0 * * *",
    "Weekly": "0 0 * * 0",
    "Monthly": "0 0 1 * *",
    "Yearly": "0 0 1 1 *",
    "Annual": "0 0 1 1 *",
    "Hourly Long": "0 * * * *",
    "Daily Long": "0 0 * * *",
    "Weekly Long": "0 0 * * 0",
    "Monthly Long": "0 0 1 * *",
}
FREQUENCIES = ("All", *CRON_MAP, "Cron")
DEFAULT_INTERVAL = 240


def validate_cron(expression: str | None) -> str:
    """Return the expression, or raise ValidationError naming it."""
    if not expression or not isinstance(expression, str) or not expression.strip():
        raise ValidationError("Scheduled Job Type: a Cron job type needs a cron_format")
    text = expression.strip()
    if len(text.split()) not in (5, 6) or not croniter.is_valid(text):
        raise ValidationError(
            f"Scheduled Job Type: field 'cron_format' got {expression!r}: not a valid cron "
            "expression (five fields: minute hour day month weekday, e.g. '0/15 * * * *')"
        )
    return text


def cron_for(frequency: str, cron_format: str | None) -> str | None:
    """The cron expression of a frequency (None for All, which is interval-based)."""
    if frequency == "Cron":
        return validate_cron(cron_format)
    if frequency == "All":
        return None
    if frequency not in CRON_MAP:
        raise ValidationError(
            f"Scheduled Job Type: field 'frequency' got {frequency!r}: expected one of "
            f"{', '.join(FREQUENCIES)}"
        )
    return CRON_MAP[frequency]


def _aware(value: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    return value.replace(tzinfo=zone) if value.tzinfo is None else value.astimezone(zone)


def next_execution(
    frequency: str,
    cron_format: str | None,
    after: dt.datetime,
    time_zone: str,
    interval: int = DEFAULT_INTERVAL,
) -> dt.datetime:
    """The first slot strictly after ``after`` (naive local time in ``time_zone``)."""
    zone = ZoneInfo(time_zone)
    start = _aware(after, zone)
    expression = cron_for(frequency, cron_format)
    if expression is None:
        result = _next_interval_slot(start, max(1, int(interval)))
    else:
        result = croniter(expression, start).get_next(dt.datetime)
    return result.astimezone(zone).replace(tzinfo=None)


def _next_interval_slot(start: dt.datetime, interval: int) -> dt.datetime:
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    elapsed = (start - midnight).total_seconds()
    slots = math.floor(elapsed / interval) + 1
    candidate = midnight + dt.timedelta(seconds=slots * interval)
    next_midnight = (midnight + dt.timedelta(days=1, hours=2)).replace(hour=0)
    return min(candidate, next_midnight)  # every day starts a fresh run of slots


def slot_epoch(slot: dt.datetime, time_zone: str) -> int:
    """A slot's identity as UTC epoch seconds (unambiguous, unlike local wall time)."""
    return int(_aware(slot, ZoneInfo(time_zone)).timestamp())
