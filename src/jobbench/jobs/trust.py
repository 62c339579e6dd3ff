"""What a worker agrees to run: the bench's own code, in a record jobbench wrote.

Anyone who can write to the broker (a Redis client, a process that can open ``queue.sqlite3``)
could otherwise make every worker import and call any dotted path (``os.system``). Two checks
stand in the way, both made before the job's module is imported and before its payload is
decoded (docs/security.md):

* **Allowed methods.** A method (and ``on_success`` / ``on_failure``) must lie under an app
  installed on the job's site, be one of jobbench's own job functions, or lie under a module
  prefix listed in the ``allowed_job_modules`` setting. ``enqueue`` refuses anything else up
  front with the same rule, so a refusal in the worker means the record was not written by
  jobbench's ``enqueue``.
* **Signed records.** ``enqueue`` signs what decides what runs (method, site, user, serializer,
  payload, callbacks) with HMAC-SHA256 under the site's ``secret_key``; the worker checks it.

Secrets fail closed: no ``secret_key``, or one shorter than ``MIN_SECRET_BYTES``, refuses
signing (so enqueueing) and running, with a one-line ``InsecureConfigError`` saying how to fix it.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from jobbench.errors import InsecureConfigError, MethodNotAllowed
from jobbench.jobs.record import JobRecord
from jobbench.jobs.serializer import MIN_SECRET_BYTES as MIN_SECRET_BYTES

DEFAULT_MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
BUILTIN_APP = "jobbench"
# jobbench's own job functions: the only paths under ``jobbench`` a job may name. (Not the
# whole package: ``jobbench.sites.drop_database`` is importable too.)
JOBBENCH_JOB_FUNCTIONS = frozenset(
    {
        "jobbench.jobs.execute.run_doc_method",  # enqueue_doc
        "jobbench.utils.background_jobs.run_doc_method",  # Frappe's spelling of it
        "jobbench.scheduler.run.run_scheduled_job",  # Scheduled Job Type runs
    }
)
_SIGNED_FIELDS = ("method", "site", "user", "serializer", "on_success", "on_failure")
FIX_SECRET = (
    "set secret_key in the bench's common_site_config.json to a long random value, e.g. "
    'the output of: python -c "import secrets; print(secrets.token_hex(32))" '
    "(jobbench init writes one)"
)


def secret_of(conf: Mapping[str, Any], where: str = "this bench") -> str:
    """The configured ``secret_key``, or InsecureConfigError when it is missing or short."""
    secret = conf.get("secret_key")
    if not isinstance(secret, str) or not secret:
        raise InsecureConfigError(f"{where} has no secret_key; {FIX_SECRET}")
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise InsecureConfigError(
            f"{where}'s secret_key is {len(secret.encode())} bytes, shorter than the "
            f"{MIN_SECRET_BYTES} required; {FIX_SECRET}"
        )
    return secret


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + ".")


def allowed_prefixes(conf: Mapping[str, Any]) -> list[str]:
    """Module prefixes whose functions may run as jobs of a site with config ``conf``."""
    apps = [a for a in conf.get("installed_apps") or [] if isinstance(a, str) and a]
    extra = [m for m in conf.get("allowed_job_modules") or [] if isinstance(m, str) and m]
    return [a for a in apps if a != BUILTIN_APP] + extra


def check_method(path: str, conf: Mapping[str, Any], role: str = "method") -> None:
    """Raise MethodNotAllowed unless ``path`` may run on a site with config ``conf``."""
    if path in JOBBENCH_JOB_FUNCTIONS:
        return
    prefixes = allowed_prefixes(conf)
    if any(_under(path, p) for p in prefixes):
        return
    where = ", ".join(prefixes) if prefixes else "none"
    raise MethodNotAllowed(
        f"{role} '{path}' is not part of an app installed on this site (apps and allowed "
        f"modules: {where}); install its app on the site, or add its module to "
        "allowed_job_modules in the bench's config"
    )


def check_methods(record: JobRecord, conf: Mapping[str, Any]) -> None:
    check_method(record.method, conf)
    for role, path in (("on_success", record.on_success), ("on_failure", record.on_failure)):
        if path:
            check_method(path, conf, role)


def _message(record: JobRecord) -> bytes:
    # Length-prefixed fields: no two different records give the same bytes.
    parts = [(getattr(record, name) or "").encode() for name in _SIGNED_FIELDS]
    parts.append(record.payload or b"")
    return b"jbrec1" + b"".join([len(part).to_bytes(8, "big") + part for part in parts])


def signature(record: JobRecord, secret: str) -> str:
    # hmac.digest: one C call (OpenSSL's one-shot HMAC), a third of hmac.new's cost per job
    return hmac.digest(secret.encode(), _message(record), "sha256").hex()


def sign(record: JobRecord, secret: str) -> None:
    record.signature = signature(record, secret)


def max_payload_bytes(conf: Mapping[str, Any]) -> int:
    value = conf.get("max_payload_bytes")
    return int(value) if isinstance(value, int) and value > 0 else DEFAULT_MAX_PAYLOAD_BYTES


def refusal(record: JobRecord, conf: Mapping[str, Any]) -> str | None:
    """Why a worker must not run ``record`` (None: it may). Imports and decodes nothing."""
    try:
        secret = secret_of(conf, f"site {record.site!r}")
    except InsecureConfigError as exc:
        return str(exc)
    if not hmac.compare_digest(record.signature or "", signature(record, secret)):
        return (
            "the job record's signature does not match the site's secret_key: it was not "
            "written by jobbench's enqueue (or was changed since); refusing to run it"
        )
    expected = str(conf.get("job_serializer") or "json")
    if record.serializer != expected:
        return (
            f"the job record says serializer {record.serializer!r} but the bench uses "
            f"{expected!r}; refusing to decode it"
        )
    if len(record.payload or b"") > max_payload_bytes(conf):
        return (
            f"the job's payload is {len(record.payload)} bytes, over max_payload_bytes "
            f"({max_payload_bytes(conf)}); refusing to decode it"
        )
    try:
        check_methods(record, conf)
    except MethodNotAllowed as exc:
        return str(exc)
    return None
