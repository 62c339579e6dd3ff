"""Serialising job arguments and results.

``json`` (the default) is safe: a worker never runs code because of a payload. Besides JSON's
own types it carries, exactly, tuple, datetime, date, time, Decimal, UUID and bytes, using
tagged objects ``{"__jb__": tag, "v": value}``; a Document travels as a reference and is read
fresh from the database in the worker. ``pickle`` carries any picklable value; each payload is
HMAC-SHA256-signed with the bench's ``secret_key``, and an unsigned or tampered one is refused
(``PayloadError``) before it is unpickled.
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

from jobbench.errors import PayloadError

TAG = "__jb__"
_PICKLE_MAGIC = b"JBP1"


class Unserializable(TypeError):
    """A value the serializer cannot carry; ``path`` says where it sits."""

    def __init__(self, path: str, value: Any) -> None:
        super().__init__(f"{path} of type {type(value).__name__}")
        self.path = path
        self.value = value


def _tag(tag: str, value: Any) -> dict[str, Any]:
    return {TAG: tag, "v": value}


def encode_value(value: Any, path: str = "value") -> Any:
    """Turn ``value`` into plain JSON data; raise Unserializable naming where it failed."""
    if value is None or isinstance(value, bool | int | str):
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
        try:
            data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - pickle raises many types for one cause
            raise Unserializable(path, value) from exc
        return _PICKLE_MAGIC + _sign(data, secret) + data
    return json.dumps(encode_value(value, path), separators=(",", ":")).encode()


def loads(payload: bytes, serializer: str, secret: str) -> Any:
    """Inverse of dumps; PayloadError for anything corrupt, unsigned or forged."""
    if serializer == "pickle":
        return _loads_pickle(payload, secret)
    try:
        return decode_value(json.loads(payload))
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise PayloadError(f"corrupt job payload: {exc}") from exc


def _sign(data: bytes, secret: str) -> bytes:
    return hmac.new(secret.encode(), data, hashlib.sha256).digest()


def _loads_pickle(payload: bytes, secret: str) -> Any:
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
