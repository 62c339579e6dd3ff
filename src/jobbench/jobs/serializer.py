"""Serialising job arguments and results.

``json`` (the default) carries data only: decoding a payload never calls code (the method a
record names is a separate matter: jobbench.jobs.trust decides what may run). Besides JSON's
own types it carries, exactly, tuple, datetime, date, time, Decimal, UUID and bytes, using
tagged objects ``{"__jb__": tag, "v": value}``; a Document travels as a reference and is read
fresh from the database in the worker. ``pickle`` carries any picklable value; each payload is
HMAC-SHA256-signed with the bench's ``secret_key``, and an unsigned or tampered one is refused
(``PayloadError``) before it is unpickled. Without a ``secret_key`` of at least 32 bytes pickle
refuses both ways: an empty key would let anyone sign a payload.

Values too deep for the interpreter's stack or integers too long for Python's int-to-text limit
are refused as ``Unserializable`` (writing) or ``PayloadError`` (reading), never a RecursionError.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import pickle
import uuid
from decimal import Decimal
from typing import Any

from jobbench.errors import InsecureConfigError, PayloadError

TAG = "__jb__"
# json.dumps(separators=...) builds an encoder per call; one, made once, writes the same text
_COMPACT = json.JSONEncoder(separators=(",", ":"))
_MAX_DIGITS = 4000  # below sys.get_int_max_str_digits()'s default of 4300
_MAX_INT_BITS = int(_MAX_DIGITS * 3.32)  # log2(10): bits of a 4000-digit integer
_PICKLE_MAGIC = b"JBP1"


class Unserializable(TypeError):
    """A value the serializer cannot carry; ``path`` says where it sits."""

    def __init__(self, path: str, value: Any, reason: str | None = None) -> None:
        super().__init__(f"{path} of type {type(value).__name__}")
        self.path = path
        self.value = value
        self.reason = reason  # set when the type is fine but the value is not (too deep, ...)


def _tag(tag: str, value: Any) -> dict[str, Any]:
    return {TAG: tag, "v": value}


def encode_value(value: Any, path: str = "value") -> Any:
    """Turn ``value`` into plain JSON data; raise Unserializable naming where it failed."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if value.bit_length() > _MAX_INT_BITS:  # JSON text of it would pass Python's limit
            raise Unserializable(path, value, f"an integer of more than {_MAX_DIGITS} digits")
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return _tag("float", repr(value))
        return value
    if isinstance(value, list):
        return [encode_value(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return _tag("tuple", [encode_value(v, f"{path}[{i}]") for i, v in enumerate(value)])
    if isinstance(value, dict):
        return _encode_dict(value, path)
    return _encode_scalar(value, path)


def _encode_dict(value: dict[Any, Any], path: str) -> Any:
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise Unserializable(f"{path} key {key!r}", key)
        out[key] = encode_value(item, f"{path}[{key!r}]")
    return _tag("dict", out) if TAG in out else out


def _encode_scalar(value: Any, path: str) -> Any:
    from jobbench.model.document import Document

    if isinstance(value, dt.datetime):
        return _tag("datetime", value.isoformat())
    if isinstance(value, dt.date):
        return _tag("date", value.isoformat())
    if isinstance(value, dt.time):
        return _tag("time", value.isoformat())
    if isinstance(value, Decimal):
        return _tag("decimal", str(value))
    if isinstance(value, uuid.UUID):
        return _tag("uuid", str(value))
    if isinstance(value, bytes | bytearray):
        return _tag("bytes", base64.b64encode(bytes(value)).decode())
    if isinstance(value, Document):
        if value.is_new() or not value.name:
            raise Unserializable(f"{path} (an unsaved {value.doctype})", value)
        return _tag("doc", [value.doctype, value.name])
    raise Unserializable(path, value)


_DECODERS: dict[str, Any] = {
    "tuple": lambda v: tuple(decode_value(x) for x in v),
    "dict": lambda v: {k: decode_value(x) for k, x in v.items()},
    "datetime": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "time": dt.time.fromisoformat,
    "decimal": Decimal,
    "uuid": uuid.UUID,
    "bytes": base64.b64decode,
    "float": float,
    "doc": lambda v: _load_doc(v[0], v[1]),
}


def _load_doc(doctype: str, name: str) -> Any:
    from jobbench.documents import get_doc

    return get_doc(doctype, name)


def decode_value(value: Any) -> Any:
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    if isinstance(value, dict):
        tag = value.get(TAG)
        if isinstance(tag, str) and tag in _DECODERS and set(value) == {TAG, "v"}:
            return _DECODERS[tag](value["v"])
        return {k: decode_value(v) for k, v in value.items()}
    return value


def dumps(value: Any, serializer: str, secret: str, path: str = "value") -> bytes:
    """Serialise with ``json`` or signed ``pickle``."""
    if serializer == "pickle":
        _require_secret(secret)
        try:
            data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - pickle raises many types for one cause
            raise Unserializable(path, value) from exc
        return _PICKLE_MAGIC + _sign(data, secret) + data
    try:
        return _COMPACT.encode(encode_value(value, path)).encode()
    except RecursionError:
        raise Unserializable(path, value, "it is nested too deeply") from None
    except ValueError as exc:  # an int longer than sys.get_int_max_str_digits()
        raise Unserializable(path, value, str(exc)) from None


def loads(payload: bytes, serializer: str, secret: str) -> Any:
    """Inverse of dumps; PayloadError for anything corrupt, unsigned or forged."""
    if serializer == "pickle":
        return _loads_pickle(payload, secret)
    try:
        return decode_value(json.loads(payload))
    except RecursionError:
        raise PayloadError("job payload is nested too deeply to decode") from None
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise PayloadError(f"corrupt job payload: {exc}") from exc


MIN_SECRET_BYTES = 32  # as jobbench.jobs.trust requires of every secret_key


def _require_secret(secret: str) -> None:
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise InsecureConfigError(
            "job_serializer 'pickle' needs a secret_key of at least 32 bytes to sign payloads; "
            "set secret_key in common_site_config.json (jobbench init writes one)"
        )


def _sign(data: bytes, secret: str) -> bytes:
    return hmac.new(secret.encode(), data, hashlib.sha256).digest()


def _loads_pickle(payload: bytes, secret: str) -> Any:
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise PayloadError("no secret_key of at least 32 bytes: refusing to unpickle a payload")
    if not payload.startswith(_PICKLE_MAGIC) or len(payload) < len(_PICKLE_MAGIC) + 32:
        raise PayloadError("pickle payload is not signed; refusing to unpickle it")
    body = payload[len(_PICKLE_MAGIC) :]
    signature, data = body[:32], body[32:]
    if not hmac.compare_digest(signature, _sign(data, secret)):
        raise PayloadError("pickle payload signature does not match secret_key; refusing it")
    try:
        return pickle.loads(data)  # noqa: S301 - signed with our secret_key just above
    except Exception as exc:  # noqa: BLE001 - unpickling raises many types
        raise PayloadError(f"corrupt pickle payload: {exc}") from exc
