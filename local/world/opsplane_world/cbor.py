"""Smithy RPC v2 CBOR, the protocol the current AWS SDKs speak to CloudWatch, translated to the AWS JSON 1.0
protocol moto serves.

CloudWatch accepts three protocols (AWS Query, AWS JSON 1.0 and Smithy RPC v2 CBOR); the Rust SDK sends
CBOR, which moto does not parse. The model decodes the request (RFC 8949), hands moto the same operation
as JSON (``X-Amz-Target: GraniteServiceVersion20100801.<Operation>``), and encodes moto's answer back to
CBOR, timestamps as tag 1 (epoch seconds), as the protocol requires.
https://aws.amazon.com/about-aws/whats-new/2025/07/amazon-cloudwatch-sdk-optimized-json-cbor-protocols-in-preview/
https://smithy.io/2.0/additional-specs/protocols/smithy-rpc-v2.html
"""

import io
import json
import struct

# /service/<ServiceShape>/operation/<Operation>
_PREFIX = "/service/"


def is_cbor(environ):
    return environ.get("HTTP_SMITHY_PROTOCOL", "").lower() == "rpc-v2-cbor"


def to_json_request(environ, body):
    """Rewrites a CBOR request's environ into the JSON 1.0 request moto serves; returns the new body."""
    parts = environ.get("PATH_INFO", "")[len(_PREFIX):].split("/")
    service, operation = (parts[0], parts[2]) if len(parts) >= 3 else ("", "")
    data = json.dumps(_jsonable(loads(body)) if body else {}).encode("utf-8")
    environ["PATH_INFO"] = "/"
    environ["CONTENT_TYPE"] = "application/x-amz-json-1.0"
    environ["HTTP_X_AMZ_TARGET"] = f"{service}.{operation}"
    environ["CONTENT_LENGTH"] = str(len(data))
    environ["wsgi.input"] = io.BytesIO(data)
    return data


def to_cbor_response(status, headers, chunks):
    """moto's JSON answer as the CBOR one: the same status, the body re-encoded, the protocol's headers."""
    raw = b"".join(chunks)
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        value = {"message": raw.decode("utf-8", "replace")}
    if isinstance(value, dict) and "__type" in value and "#" not in value["__type"]:
        value["__type"] = f"com.amazonaws.cloudwatch#{value['__type'].split('.')[-1]}"
    data = dumps(_timestamps(value))
    out = [(k, v) for k, v in headers if k.lower() not in ("content-type", "content-length")]
    out += [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor"), ("Content-Length", str(len(data)))]
    return status, out, data


class Tagged:
    """A CBOR tagged value (tag 1: a timestamp)."""

    def __init__(self, tag, value):
        self.tag, self.value = tag, value


# Timestamp members whose names do not end in ``Timestamp`` (the alarm mute rule shapes').
_DATES = {"StartDate", "ExpireDate"}


def _timestamps(value, key=""):
    """JSON 1.0 gives timestamps as epoch seconds; CBOR wants them tagged (fields named ``...Timestamp``)."""
    if isinstance(value, dict):
        return {k: _timestamps(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_timestamps(v, key) for v in value]
    if (key.endswith("Timestamp") or key in _DATES) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return Tagged(1, float(value))
    return value


def _jsonable(value):
    if isinstance(value, Tagged):
        return _jsonable(value.value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    for info, fmt, limit in ((24, ">B", 0xFF), (25, ">H", 0xFFFF), (26, ">I", 0xFFFFFFFF)):
        if n <= limit:
            return bytes([major << 5 | info]) + struct.pack(fmt, n)
    return bytes([major << 5 | 27]) + struct.pack(">Q", n)


def dumps(value):
    if value is None:
        return b"\xf6"
    if value is True:
        return b"\xf5"
    if value is False:
        return b"\xf4"
    if isinstance(value, Tagged):
        return _head(6, value.tag) + dumps(value.value)
    if isinstance(value, int):
        return _head(0, value) if value >= 0 else _head(1, -1 - value)
    if isinstance(value, float):
        return b"\xfb" + struct.pack(">d", value)
    if isinstance(value, str):
        data = value.encode("utf-8")
        return _head(3, len(data)) + data
    if isinstance(value, bytes):
        return _head(2, len(value)) + value
    if isinstance(value, (list, tuple)):
        return _head(4, len(value)) + b"".join(dumps(v) for v in value)
    if isinstance(value, dict):
        return _head(5, len(value)) + b"".join(dumps(k) + dumps(v) for k, v in value.items())
    raise TypeError(f"cannot encode {type(value).__name__} as CBOR")


def loads(data):
    value, _ = _decode(data, 0)
    return value


_BREAK = object()


def _decode(data, i):
    first = data[i]
    major, info = first >> 5, first & 0x1F
    i += 1
    if major == 7:
        if info == 20:
            return False, i
        if info == 21:
            return True, i
        if info in (22, 23):
            return None, i
        if info == 25:
            return _half(struct.unpack(">H", data[i:i + 2])[0]), i + 2
        if info == 26:
            return struct.unpack(">f", data[i:i + 4])[0], i + 4
        if info == 27:
            return struct.unpack(">d", data[i:i + 8])[0], i + 8
        if info == 31:
            return _BREAK, i
        raise ValueError(f"unsupported CBOR simple value {info}")
    if info < 24:
        n = info
    elif info == 31:
        n = None
    else:
        size = {24: 1, 25: 2, 26: 4, 27: 8}[info]
        n = int.from_bytes(data[i:i + size], "big")
        i += size
    if major == 0:
        return n, i
    if major == 1:
        return -1 - n, i
    if major in (2, 3):
        if n is None:
            chunks = []
            while data[i] != 0xFF:
                chunk, i = _decode(data, i)
                chunks.append(chunk)
            joined = b"".join(c if isinstance(c, bytes) else c.encode("utf-8") for c in chunks)
            return (joined if major == 2 else joined.decode("utf-8")), i + 1
        raw = data[i:i + n]
        return (raw if major == 2 else raw.decode("utf-8")), i + n
    if major == 4:
        out = []
        while n is None or len(out) < n:
            item, i = _decode(data, i)
            if item is _BREAK:
                break
            out.append(item)
        return out, i
    if major == 5:
        out = {}
        while n is None or len(out) < n:
            key, i = _decode(data, i)
            if key is _BREAK:
                break
            out[key], i = _decode(data, i)
        return out, i
    if major == 6:
        value, i = _decode(data, i)
        return Tagged(n, value), i
    raise ValueError(f"unsupported CBOR major type {major}")


def _half(h):
    sign = -1.0 if h & 0x8000 else 1.0
    exp, frac = (h >> 10) & 0x1F, h & 0x3FF
    if exp == 0:
        return sign * frac * 2.0 ** -24
    if exp == 31:
        return sign * float("inf") if frac == 0 else float("nan")
    return sign * (1 + frac / 1024) * 2.0 ** (exp - 15)
