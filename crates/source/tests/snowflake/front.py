#!/usr/bin/env python3
"""A Snowflake REST front for the Snowflake source's tests.

One process, listening on loopback only, that speaks the REST protocol Snowflake's
own connectors use (``/session/v1/login-request``, ``/queries/v1/query-request``,
``/queries/<id>/result``, ``/queries/v1/abort-request``, ``/session/token-request``)
and runs the SQL on fakesnow (Snowflake SQL on DuckDB), embedded in-process.

What this front adds over fakesnow's own server (``fakesnow -s``):

* key-pair login that is really checked: the JWT (RS256) must verify against the
  public key registered for the user, with Snowflake's ``iss``/``sub`` claim
  formats, expiry and account checks, and Snowflake's failure answers;
* results in Snowflake's JSON result format (``rowtype``, ``rowset``, ``chunks``
  with ``qrmk``/``chunkHeaders``), each cell in the text form Snowflake documents,
  the first rows inline and the rest in gzip'd chunk files that this front serves
  itself, with a configurable number of rows per chunk;
* canned results for SQL texts (types fakesnow lacks: TIMESTAMP_TZ with an
  offset, 38-digit NUMBER, OBJECT/ARRAY, ...), encoded by the same encoder;
* fault injection (expired session, HTTP 5xx, failing chunk download, query error,
  statements that run past STATEMENT_TIMEOUT_IN_SECONDS, async polling) and a
  request log, through control endpoints under ``/_cdp_test/``.

Run ``python front.py --help``; README.md beside this file documents the control API.

Sources for every wire format are cited next to the code that writes it.  In short:
  [PY]  snowflake-connector-python 4.8.1 (Snowflake's own connector): converter.py,
        result_batch.py, network.py, sfbinaryformat.py
  [GO]  gosnowflake (Snowflake's Go driver) converter.go ``stringToValue``
  [JS]  snowflake-connector-nodejs lib/connection/result/data_types.js
  [SQLAPI] docs.snowflake.com/en/developer-guide/sql-api/handling-responses
        ("Getting the data from the results": every value is a string; DATE = days
        since the epoch, TIME = seconds since midnight, TIMESTAMP_NTZ/LTZ = seconds
        since the epoch with the fraction, TIMESTAMP_TZ = the same plus a space and
        the time zone offset in minutes plus 1440)
  [KP]  docs.snowflake.com/en/user-guide/key-pair-auth (JWT claims) and
        docs.snowflake.com/en/user-guide/key-pair-auth-troubleshooting (390144
        "JWT token is invalid. [uuid]", SYSTEM$GET_LOGIN_FAILURE_DETAILS codes)
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import OrderedDict
from datetime import date
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import parse_qs, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# fakesnow / pyarrow are imported in main() (they are slow to import and the encoder
# functions below are usable without them).
pa = None  # type: ignore[assignment]
pc = None  # type: ignore[assignment]

CONTROL_PREFIX = "/_cdp_test"
CHUNK_PREFIX = "/_chunks/"

# --------------------------------------------------------------------------------------
# Snowflake codes and messages
# --------------------------------------------------------------------------------------
# [PY] network.py: SESSION_EXPIRED_GS_CODE = "390112", QUERY_IN_PROGRESS_CODE = "333333",
# QUERY_IN_PROGRESS_ASYNC_CODE = "333334"; CREDENTIAL_REJECTION_GS_CODES lists 390100
# (AUTHORIZATION_FAILURE) and 390144 (JWT_TOKEN_INVALID) plus the 3943xx JWT details.
CODE_SESSION_EXPIRED = "390112"
MSG_SESSION_EXPIRED = "Your session has expired. Please login again."  # snowflake-connector-rs's own test fixture
CODE_TOKEN_NOT_FOUND = "390103"  # as fakesnow's server answers a request without a token
MSG_TOKEN_NOT_FOUND = "Session token not found in the request data."
CODE_SESSION_GONE = "390104"  # as fakesnow's server answers an unknown token
MSG_SESSION_GONE = "User must login again to access the service."
CODE_MASTER_TOKEN_EXPIRED = "390114"  # [PY] MASTER_TOKEN_EXPIRED_GS_CODE
MSG_MASTER_TOKEN_EXPIRED = "Authentication token has expired.  The user must authenticate again."
CODE_JWT_INVALID = "390144"  # [KP] "JWT token is invalid. [<uuid>]", sqlState 08001
CODE_AUTH_FAILURE = "390100"  # "Incorrect username or password was specified." (08004)
MSG_AUTH_FAILURE = "Incorrect username or password was specified."
CODE_IN_PROGRESS = "333333"
MSG_IN_PROGRESS = "Query execution in progress. Use the provided queryId and getResultUrl to get the result."
# "000630 (57014): Statement reached its statement or warehouse timeout of 120 second(s) and
# was canceled." -- as Snowflake reports it (quoted in Snowflake-Labs/semantic-model-generator#221).
CODE_STATEMENT_TIMEOUT = "000630"
MSG_STATEMENT_TIMEOUT = "Statement reached its statement or warehouse timeout of {secs} second(s) and was canceled."
# "000604 (57014): SQL execution canceled" -- the cancel marker snowflake-connector-rs checks.
CODE_CANCELED = "000604"
MSG_CANCELED = "SQL execution canceled"
CODE_NOT_EXECUTING = "000605"
MSG_NOT_EXECUTING = "Identified SQL statement is not currently executing."
CODE_INTERNAL = "000603"

# Internal failure reasons for a 390144, as SYSTEM$GET_LOGIN_FAILURE_DETAILS names them
# ([KP] troubleshooting page; numbers from [PY] network.py CREDENTIAL_REJECTION_GS_CODES).
JWT_DETAILS = {
    "JWT_TOKEN_INVALID": "394300",
    "JWT_TOKEN_EXPIRED": "394301",
    "JWT_TOKEN_NOT_YET_VALID": "394302",
    "JWT_TOKEN_INVALID_EXPIRATION_TIME": "394303",
    "JWT_TOKEN_INVALID_PUBLIC_KEY_FINGERPRINT_MISMATCH": "394304",
    "JWT_TOKEN_INVALID_ALGORITHM": "394305",
    "JWT_TOKEN_INVALID_FORMAT": "394306",
    "JWT_TOKEN_ACCOUNT_MISMATCH": "394307",
    "JWT_TOKEN_INVALID_USER_IN_ISSUER": "390144",
}

# Session parameters the front keeps per session, with Snowflake's defaults.
DEFAULT_SESSION_PARAMETERS = {
    "STATEMENT_TIMEOUT_IN_SECONDS": 172800,
    "TIMEZONE": "America/Los_Angeles",
    "QUERY_RESULT_FORMAT": "JSON",
}

DEFAULT_CONFIG = {
    "inline_rows": 1000,  # rows in data.rowset; the rest go to chunks
    "rows_per_chunk": 10000,
    "async_after_seconds": 45.0,  # Snowflake answers "in progress" after ~45 s [SQLAPI]
    "poll_wait_seconds": 10.0,  # how long GET /queries/<id>/result holds before 333333 again
    "session_validity_seconds": 3600,  # login response validityInSeconds
    "master_validity_seconds": 14400,
    "jwt_leeway_seconds": 60,
    "jwt_max_lifetime_seconds": 3600,  # [KP] a JWT is valid for at most one hour
    "clock_offset_seconds": 0,  # added to the front's clock when checking JWT times
    "gzip_responses": True,  # gzip JSON answers when the client accepts gzip
    "chunk_content_encoding": False,  # True: chunks carry Content-Encoding: gzip
    "chunk_headers_mode": "both",  # both | qrmk | headers | none
    "variant_style": "pretty",  # pretty (2-space indent, as Snowflake prints) | compact
    "login_failure_http_status": 200,  # Snowflake answers a rejected login with 200 + success:false
    "retain_results": 2000,  # how many query results (and chunk files) are kept
    "returned_mode": "total",  # data.returned: total | inline
}

# --------------------------------------------------------------------------------------
# Cell encoders: Snowflake's JSON text form of each type
# --------------------------------------------------------------------------------------

DEC_CTX = Context(prec=200, rounding=ROUND_HALF_EVEN)
NULL = "null"


class RawNumber(str):
    """A JSON number literal kept as its text, so no digit is lost."""


def js(s: str) -> str:
    """JSON string token (UTF-8 kept as is, as Snowflake sends it)."""
    return json.dumps(s, ensure_ascii=False)


def fixed_text(value: Any, scale: int) -> str:
    """NUMBER/FIXED: the decimal text with exactly ``scale`` fraction digits.

    [PY] converter.py ``_FIXED_to_python``: ``int`` when scale == 0 else ``decimal.Decimal``
    on the text; [GO] passes the text through.  Every digit is kept (NUMBER(38,s)).
    """
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int) and scale == 0:
        return str(value)
    if isinstance(value, float):
        d = Decimal(repr(value))
    else:
        d = Decimal(str(value))
    if scale == 0:
        d = d.to_integral_value(context=DEC_CTX)
        return format(d, "f").replace("-0", "0") if d == 0 else format(d, "f")
    q = d.quantize(Decimal(1).scaleb(-scale, context=DEC_CTX), context=DEC_CTX)
    return format(q, "f")


def real_text(value: Any) -> str:
    """FLOAT/REAL: a decimal or exponent literal; NaN, inf, -inf for the special values.

    Snowflake's FLOAT docs name the special values 'NaN', 'inf', '-inf'; [PY] reads the
    cell with ``float(text)``.  repr() is the shortest text that round-trips the double.
    """
    if isinstance(value, RawNumber):
        return str(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("nan",):
            return "NaN"
        if low in ("inf", "infinity", "+inf", "+infinity"):
            return "inf"
        if low in ("-inf", "-infinity"):
            return "-inf"
        value = float(value)
    f = float(value)
    if f != f:
        return "NaN"
    if f == float("inf"):
        return "inf"
    if f == float("-inf"):
        return "-inf"
    return repr(f)


def bool_text(value: Any) -> str:
    """BOOLEAN: "1" / "0".  [PY] ``_BOOLEAN_to_python``: ``value in ("1", "TRUE")``;
    [JS] ``convertRawBoolean`` accepts '1'/'TRUE' and '0'/'FALSE'."""
    if isinstance(value, str):
        value = value.strip().lower() in ("1", "true", "t", "yes", "y", "on")
    return "1" if value else "0"


def scaled_text(total_nanos: int, scale: int) -> str:
    """A signed decimal number of seconds with exactly ``scale`` fraction digits.

    [PY] converter.py ``get_seconds_microseconds``: "if the timestamp is negative then it
    is given as its inverse", i.e. -0.000000009 is 1969-12-31 23:59:59.999999991: the text
    is the signed decimal value, not floor(seconds) plus a positive fraction.
    """
    if not 0 <= scale <= 9:
        raise ValueError(f"scale {scale} out of range 0..9")
    div = 10 ** (9 - scale)
    units = abs(total_nanos) // div
    sign = "-" if total_nanos < 0 and units != 0 else ""
    whole, frac = divmod(units, 10**scale)
    if scale == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:0{scale}d}"


def date_text(days: int) -> str:
    """DATE: integer days since 1970-01-01.  [SQLAPI]; [PY] ``_DATE_to_python``:
    ``datetime.fromtimestamp(int(value) * 86400)``; [GO] ``time.Unix(v*86400, 0)``."""
    return str(int(days))


def time_text(nanos_since_midnight: int, scale: int) -> str:
    """TIME: seconds since midnight with ``scale`` fraction digits.  [SQLAPI]; [PY]
    ``_TIME_to_python``; [GO] ``extractTimestamp``."""
    return scaled_text(nanos_since_midnight, scale)


def ts_text(epoch_nanos: int, scale: int) -> str:
    """TIMESTAMP_NTZ / TIMESTAMP_LTZ: seconds since the epoch with ``scale`` fraction
    digits (NTZ: the wall clock read as UTC; LTZ: the instant in UTC).  [SQLAPI]; [PY]
    ``create_timestamp_from_string``; [GO] ``case "timestamp_ntz"/"timestamp_ltz"``."""
    return scaled_text(epoch_nanos, scale)


def ts_tz_text(epoch_nanos_utc: int, offset_minutes: int, scale: int) -> str:
    """TIMESTAMP_TZ: "<UTC seconds since the epoch> <offset in minutes + 1440>".

    [SQLAPI]; [PY] ``_TIMESTAMP_TZ_to_python``: ``value, tz = encoded_value.split()``,
    ``_generate_tzinfo_from_tzoffset(int(tz) - 1440)``; [GO] ``Location(int(offset) - 1440)``
    with ``time.Unix(sec, nsec)`` (the first number is the UTC instant).
    """
    if not -1440 < offset_minutes < 1440:
        raise ValueError(f"offset {offset_minutes} minutes out of range")
    return f"{scaled_text(epoch_nanos_utc, scale)} {offset_minutes + 1440}"


def binary_text(value: Any) -> str:
    """BINARY: upper-case hex.  [PY] sfbinaryformat.py ``binary_to_python = b16decode``
    (which accepts upper case only); [GO] ``hex.DecodeString``."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex().upper()
    if isinstance(value, dict):
        if "base64" in value:
            return base64.b64decode(value["base64"]).hex().upper()
        if "hex" in value:
            return bytes.fromhex(value["hex"]).hex().upper()
        if "utf8" in value:
            return value["utf8"].encode().hex().upper()
    if isinstance(value, str):
        return bytes.fromhex(value).hex().upper()
    raise ValueError(f"cannot read {value!r} as BINARY")


def variant_text(value: Any, pretty: bool = True, level: int = 0) -> str:
    """VARIANT/OBJECT/ARRAY: the value as JSON text, every number written with all its
    digits.  Snowflake prints semi-structured values indented by two spaces with
    ``"key": value`` (as in the query results shown throughout Snowflake's
    semi-structured data docs); [PY] ``_VARIANT_to_python`` hands the text over
    unconverted, [GO] likewise."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, RawNumber):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, str):
        return js(value)
    if isinstance(value, dict) and set(value) == {"$raw"}:
        return value["$raw"]
    ind = "  "
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        if not pretty:
            return "[" + ",".join(variant_text(v, False) for v in value) + "]"
        pad = ind * (level + 1)
        inner = ",\n".join(pad + variant_text(v, True, level + 1) for v in value)
        return "[\n" + inner + "\n" + ind * level + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        if not pretty:
            return "{" + ",".join(js(str(k)) + ":" + variant_text(v, False) for k, v in value.items()) + "}"
        pad = ind * (level + 1)
        inner = ",\n".join(f"{pad}{js(str(k))}: {variant_text(v, True, level + 1)}" for k, v in value.items())
        return "{\n" + inner + "\n" + ind * level + "}"
    raise ValueError(f"cannot write {value!r} as VARIANT")


def parse_json_exact(text: str) -> Any:
    """json.loads keeping every digit of every number."""
    return json.loads(text, parse_float=RawNumber, parse_int=int, parse_constant=lambda c: RawNumber(c))


# ---- typed input values for canned results -------------------------------------------

_DATE_RE = re.compile(r"^\s*([+-]?\d{1,6})-(\d{1,2})-(\d{1,2})\s*$")
_TIME_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?\s*$")
_TS_RE = re.compile(
    r"^\s*([+-]?\d{1,6})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?\s*$"
)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _days_from_civil(y: int, m: int, d: int) -> int:
    # Howard Hinnant's days_from_civil: proleptic Gregorian, any year.
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_date_days(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, date):
        return value.toordinal() - _EPOCH_ORDINAL
    m = _DATE_RE.match(str(value))
    if not m:
        raise ValueError(f"cannot read {value!r} as DATE (want YYYY-MM-DD)")
    y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if not (1 <= mo <= 12 and 1 <= d <= 31):
        raise ValueError(f"bad DATE {value!r}")
    return _days_from_civil(y, mo, d)


def _frac_nanos(frac: str | None) -> int:
    return int((frac or "").ljust(9, "0")) if frac else 0


def parse_time_nanos(value: Any) -> int:
    m = _TIME_RE.match(str(value))
    if not m:
        raise ValueError(f"cannot read {value!r} as TIME (want HH:MM:SS[.fffffffff])")
    h, mi, s = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    if h > 23 or mi > 59 or s > 59:
        raise ValueError(f"bad TIME {value!r}")
    return (h * 3600 + mi * 60 + s) * 10**9 + _frac_nanos(m.group(4))


def _parse_offset(text: str | None) -> int | None:
    if text is None:
        return None
    if text == "Z":
        return 0
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hh = int(digits[:2])
    mm = int(digits[2:4] or 0) if len(digits) > 2 else 0
    return sign * (hh * 60 + mm)


def parse_timestamp(value: Any) -> tuple[int, int | None]:
    """'YYYY-MM-DD[ HH:MM[:SS[.fffffffff]]][Z|+HH:MM]' -> (wall-clock nanos since the
    epoch, offset minutes or None)."""
    m = _TS_RE.match(str(value))
    if not m:
        raise ValueError(f"cannot read {value!r} as a timestamp (want YYYY-MM-DD HH:MM:SS.fffffffff[+HH:MM])")
    y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
    h, mi, s = int(m.group(4) or 0), int(m.group(5) or 0), int(m.group(6) or 0)
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h <= 23 and mi <= 59 and s <= 59):
        raise ValueError(f"bad timestamp {value!r}")
    days = _days_from_civil(y, mo, d)
    wall = (days * 86400 + h * 3600 + mi * 60 + s) * 10**9 + _frac_nanos(m.group(7))
    return wall, _parse_offset(m.group(8))


def encode_typed(value: Any, col: dict, pretty: bool) -> str:
    """One cell of a canned result, as a JSON token (quoted text or null)."""
    if value is None:
        return NULL
    t = col["type"]
    scale = col.get("scale")
    if t == "fixed":
        return js(fixed_text(value, scale or 0))
    if t == "real":
        return js(real_text(value))
    if t == "text":
        return js(value if isinstance(value, str) else str(value))
    if t == "boolean":
        return js(bool_text(value))
    if t == "date":
        return js(date_text(parse_date_days(value)))
    if t == "time":
        return js(time_text(parse_time_nanos(value), 9 if scale is None else scale))
    if t in ("timestamp_ntz", "timestamp_ltz", "timestamp_tz"):
        sc = 9 if scale is None else scale
        if isinstance(value, dict) and "epoch_nanos" in value:
            wall, off = int(value["epoch_nanos"]), value.get("offset_minutes")
            utc = wall
            wall = utc + (off or 0) * 60 * 10**9
        else:
            wall, off = parse_timestamp(value)
        if t == "timestamp_ntz":
            if off is not None:
                raise ValueError(f"TIMESTAMP_NTZ value {value!r} must not carry an offset")
            return js(ts_text(wall, sc))
        off = 0 if off is None else off
        utc = wall - off * 60 * 10**9
        if t == "timestamp_ltz":
            return js(ts_text(utc, sc))
        return js(ts_tz_text(utc, off, sc))
    if t == "binary":
        return js(binary_text(value))
    if t in ("variant", "object", "array"):
        return js(variant_text(value, pretty))
    if isinstance(value, str):
        return js(value)
    return js(variant_text(value, False))


# ---- arrow columns (fakesnow results) --------------------------------------------------

_UNIT_NANOS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


def arrow_tokens(arr: Any, col: dict, pretty: bool) -> list[str]:
    """Encode one arrow column slice (from fakesnow/DuckDB) to JSON tokens."""
    n = len(arr)
    if n == 0:
        return []
    typ = arr.type
    if pa.types.is_null(typ) or arr.null_count == n:
        return [NULL] * n
    t = col["type"]
    scale = col.get("scale") or 0

    def q(vals: Iterable[Any], f: Callable[[Any], str]) -> list[str]:
        return [NULL if v is None else '"' + f(v) + '"' for v in vals]

    if t == "fixed":
        if pa.types.is_integer(typ) and scale == 0:
            return [NULL if v is None else f'"{v}"' for v in arr.to_pylist()]
        if pa.types.is_decimal(typ) and typ.scale == scale:
            # pyarrow writes a decimal with exactly its scale's fraction digits
            return [NULL if v is None else f'"{v}"' for v in pc.cast(arr, pa.string()).to_pylist()]
        return q(arr.to_pylist(), lambda v: fixed_text(v, scale))
    if t == "real":
        return q(arr.to_pylist(), real_text)
    if t == "text":
        if pa.types.is_string(typ) or pa.types.is_large_string(typ):
            return [NULL if v is None else js(v) for v in arr.to_pylist()]
        return [NULL if v is None else js(str(v)) for v in arr.to_pylist()]
    if t == "boolean":
        return q(arr.to_pylist(), bool_text)
    if t == "date":
        if pa.types.is_date32(typ):
            return [NULL if v is None else f'"{v}"' for v in arr.cast(pa.int32()).to_pylist()]
        return q(arr.to_pylist(), lambda v: date_text(parse_date_days(v)))
    if t == "time":
        sc = 9 if col.get("scale") is None else col["scale"]
        if pa.types.is_time(typ):
            mult = _UNIT_NANOS[typ.unit]
            ints = arr.cast(pa.int32() if typ.bit_width == 32 else pa.int64()).to_pylist()
            return q(ints, lambda v: time_text(v * mult, sc))
        return q(arr.to_pylist(), lambda v: time_text(parse_time_nanos(str(v)), sc))
    if t in ("timestamp_ntz", "timestamp_ltz", "timestamp_tz"):
        sc = 9 if col.get("scale") is None else col["scale"]
        if pa.types.is_timestamp(typ):
            mult = _UNIT_NANOS[typ.unit]
            ints = arr.cast(pa.int64()).to_pylist()
            if t == "timestamp_tz":
                # DuckDB keeps TIMESTAMPTZ as a UTC instant; fakesnow cannot keep an offset,
                # so the offset is UTC (1440).  Offsets come through canned results.
                return q(ints, lambda v: ts_tz_text(v * mult, 0, sc))
            return q(ints, lambda v: ts_text(v * mult, sc))
        return q(arr.to_pylist(), lambda v: str(v))
    if t == "binary":
        return q(arr.to_pylist(), binary_text)
    if t in ("variant", "object", "array"):
        out = []
        for v in arr.to_pylist():
            if v is None:
                out.append(NULL)
                continue
            if isinstance(v, str):
                try:
                    parsed = parse_json_exact(v)
                except ValueError:
                    parsed = v
            else:
                parsed = v
            out.append(js(variant_text(parsed, pretty)))
        return out
    return [NULL if v is None else js(str(v)) for v in arr.to_pylist()]


# --------------------------------------------------------------------------------------
# Rowtype
# --------------------------------------------------------------------------------------

_TYPE_DEFAULTS = {
    "fixed": {"precision": 38, "scale": 0},
    "text": {"length": 16777216, "byteLength": 16777216},
    "binary": {"length": 8388608, "byteLength": 8388608},
    "time": {"precision": 0, "scale": 9},
    "timestamp_ntz": {"precision": 0, "scale": 9},
    "timestamp_ltz": {"precision": 0, "scale": 9},
    "timestamp_tz": {"precision": 0, "scale": 9},
}
KNOWN_TYPES = {
    "fixed", "real", "text", "boolean", "date", "time", "timestamp_ntz", "timestamp_ltz",
    "timestamp_tz", "binary", "variant", "object", "array",
}


def normalize_rowtype(cols: list[dict]) -> list[dict]:
    """Fill a rowtype entry the way Snowflake writes one (data.rowtype[]: name, database,
    schema, table, nullable, type, byteLength, length, scale, precision, collation)."""
    out = []
    for c in cols:
        t = str(c["type"]).lower()
        if t not in KNOWN_TYPES:
            raise ValueError(f"unknown Snowflake type {c['type']!r}; one of {sorted(KNOWN_TYPES)}")
        base = {"name": c["name"], "database": "", "schema": "", "table": "", "nullable": True,
                "type": t, "byteLength": None, "length": None, "scale": None, "precision": None,
                "collation": None}
        base.update(_TYPE_DEFAULTS.get(t, {}))
        for k, v in c.items():
            if k != "type":
                base[k] = v
        out.append(base)
    return out


# --------------------------------------------------------------------------------------
# Results: inline rowset + chunk files
# --------------------------------------------------------------------------------------


class ChunkFile:
    __slots__ = ("path", "row_count", "uncompressed_size", "compressed_size", "signature")

    def __init__(self, path: str, row_count: int, uncompressed: int, compressed: int):
        self.path = path
        self.row_count = row_count
        self.uncompressed_size = uncompressed
        self.compressed_size = compressed
        self.signature = secrets.token_hex(32)


class Materialized:
    """A result written out: the inline rowset text plus chunk files on disk."""

    def __init__(self, rowtype: list[dict], inline_json: str, total: int, chunks: list[ChunkFile],
                 directory: str | None, qrmk: str):
        self.inline_rows = total - sum(c.row_count for c in chunks)
        self.rowtype = rowtype
        self.inline_json = inline_json
        self.total = total
        self.chunks = chunks
        self.directory = directory
        self.qrmk = qrmk

    def cleanup(self) -> None:
        if self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)


def materialize(rowtype: list[dict], row_batches: Iterator[list[str]], qid: str, root: str,
                inline_rows: int, rows_per_chunk: int) -> Materialized:
    """Split rows (each a JSON array text) into the inline rowset and gzip'd chunk files.

    Chunk body: the rows separated by commas, without enclosing brackets -- [PY]
    result_batch.py ``JSONResultBatch`` parses a chunk with
    ``json.loads("".join(["[", read_data, "]"]))``.  Chunks are gzip'd as Snowflake stores
    them on cloud storage ([PY] ``_ensure_decompressed``: "Cloud storage (S3/GCS/Azure) may
    serve result-set chunks as raw gzip blobs without a Content-Encoding: gzip header").
    """
    inline: list[str] = []
    chunks: list[ChunkFile] = []
    directory: str | None = None
    pending: list[str] = []
    total = 0

    def flush() -> None:
        nonlocal directory
        if not pending:
            return
        if directory is None:
            directory = tempfile.mkdtemp(prefix=f"q-{qid}-", dir=root)
        body = ",".join(pending).encode("utf-8")
        packed = gzip.compress(body, compresslevel=1)
        path = os.path.join(directory, f"chunk-{len(chunks)}.json.gz")
        with open(path, "wb") as fh:
            fh.write(packed)
        chunks.append(ChunkFile(path, len(pending), len(body), len(packed)))
        pending.clear()

    for batch in row_batches:
        for row in batch:
            total += 1
            if len(inline) < inline_rows and not chunks and not pending:
                inline.append(row)
                continue
            pending.append(row)
            if len(pending) >= rows_per_chunk:
                flush()
    flush()
    inline_json = "[" + ",".join(inline) + "]"
    return Materialized(rowtype, inline_json, total, chunks, directory, base64.b64encode(secrets.token_bytes(32)).decode())


def arrow_row_batches(table: Any, rowtype: list[dict], pretty: bool, batch_rows: int = 5000) -> Iterator[list[str]]:
    n = table.num_rows
    for start in range(0, n, batch_rows):
        part = table.slice(start, min(batch_rows, n - start))
        cols = [arrow_tokens(part.column(i).combine_chunks() if hasattr(part.column(i), "combine_chunks") else part.column(i),
                             rowtype[i], pretty) for i in range(part.num_columns)]
        yield ["[" + ",".join(cells) + "]" for cells in zip(*cols)]


def canned_row_batches(rows: list[list[Any]], rowtype: list[dict], pretty: bool) -> Iterator[list[str]]:
    out = []
    for r, row in enumerate(rows):
        if len(row) != len(rowtype):
            raise ValueError(f"canned row {r} has {len(row)} values for {len(rowtype)} columns")
        out.append("[" + ",".join(encode_typed(v, c, pretty) for v, c in zip(row, rowtype)) + "]")
    yield out


# --------------------------------------------------------------------------------------
# JWT (key-pair authentication)
# --------------------------------------------------------------------------------------


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def load_public_key(text: str) -> rsa.RSAPublicKey:
    """A PEM public key, or the bare base64 body as ALTER USER ... SET RSA_PUBLIC_KEY takes it."""
    text = text.strip()
    if "BEGIN" in text:
        key = serialization.load_pem_public_key(text.encode())
    else:
        key = serialization.load_der_public_key(base64.b64decode("".join(text.split())))
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("only RSA public keys are accepted")
    return key


def key_fingerprint(key: rsa.RSAPublicKey) -> str:
    """SHA256 over the DER SubjectPublicKeyInfo, base64 -- what DESC USER shows as
    RSA_PUBLIC_KEY_FP after "SHA256:" [KP]."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


class JwtFailure(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def verify_jwt(token: str, login_name: str, account: str, users: dict[str, list[rsa.RSAPublicKey]],
               now: float, leeway: int, max_lifetime: int) -> dict:
    """Check a key-pair login JWT the way [KP] describes it:
    header {"alg":"RS256","typ":"JWT"}; iss = "<ACCOUNT>.<USER>.SHA256:<fingerprint>";
    sub = "<ACCOUNT>.<USER>"; iat/exp in seconds, exp at most one hour after iat;
    signed with the private key whose public key is registered for the user."""
    parts = token.split(".")
    if len(parts) != 3:
        raise JwtFailure("JWT_TOKEN_INVALID_FORMAT", "token is not three dot-separated parts")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except Exception as e:  # noqa: BLE001
        raise JwtFailure("JWT_TOKEN_INVALID_FORMAT", f"undecodable: {e}") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise JwtFailure("JWT_TOKEN_INVALID_FORMAT", "header or claims are not JSON objects")
    if header.get("alg") != "RS256":
        raise JwtFailure("JWT_TOKEN_INVALID_ALGORITHM", f"alg {header.get('alg')!r}, want RS256")
    if header.get("typ") not in (None, "JWT"):
        raise JwtFailure("JWT_TOKEN_INVALID_FORMAT", f"typ {header.get('typ')!r}")
    iss, sub, iat, exp = claims.get("iss"), claims.get("sub"), claims.get("iat"), claims.get("exp")
    if not isinstance(iss, str) or not isinstance(sub, str):
        raise JwtFailure("JWT_TOKEN_INVALID_FORMAT", "iss and sub must be strings")
    if not isinstance(iat, int) or not isinstance(exp, int) or isinstance(iat, bool) or isinstance(exp, bool):
        raise JwtFailure("JWT_TOKEN_INVALID_FORMAT", "iat and exp must be integers (seconds)")
    prefix, sep, fingerprint = iss.rpartition(".SHA256:")
    if not sep or not fingerprint:
        raise JwtFailure("JWT_TOKEN_INVALID_FORMAT", f"iss {iss!r} is not ACCOUNT.USER.SHA256:<fingerprint>")
    iss_account, dot, iss_user = prefix.partition(".")
    if not dot or not iss_account or not iss_user:
        raise JwtFailure("JWT_TOKEN_INVALID_FORMAT", f"iss {iss!r} is not ACCOUNT.USER.SHA256:<fingerprint>")
    if sub != f"{iss_account}.{iss_user}":
        raise JwtFailure("JWT_TOKEN_INVALID_FORMAT", f"sub {sub!r} is not {iss_account}.{iss_user}")
    want_account = account.split(".")[0].upper()
    if iss_account != want_account:
        # The account must be upper case in the claims ([KP]: "account identifier ... in
        # uppercase"); anything else is a different account.
        raise JwtFailure("JWT_TOKEN_ACCOUNT_MISMATCH", f"token account {iss_account!r}, this account {want_account!r}")
    if iss_user != login_name.upper():
        raise JwtFailure("JWT_TOKEN_INVALID_USER_IN_ISSUER", f"token user {iss_user!r}, LOGIN_NAME {login_name!r}")
    keys = users.get(iss_user)
    if not keys:
        raise JwtFailure("JWT_TOKEN_INVALID_USER_IN_ISSUER", f"no user {iss_user!r} with a public key")
    matching = [k for k in keys if key_fingerprint(k) == fingerprint]
    if not matching:
        raise JwtFailure("JWT_TOKEN_INVALID_PUBLIC_KEY_FINGERPRINT_MISMATCH",
                         f"fingerprint {fingerprint} is not one of the user's keys")
    signing_input = (parts[0] + "." + parts[1]).encode()
    try:
        matching[0].verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise JwtFailure("JWT_TOKEN_INVALID", "RS256 signature does not verify") from None
    if iat > now + leeway:
        raise JwtFailure("JWT_TOKEN_NOT_YET_VALID", f"iat {iat} is after now {int(now)}")
    if exp <= now - leeway:
        raise JwtFailure("JWT_TOKEN_EXPIRED", f"exp {exp} is before now {int(now)}")
    if exp - iat > max_lifetime or exp <= iat:
        raise JwtFailure("JWT_TOKEN_INVALID_EXPIRATION_TIME", f"exp - iat = {exp - iat} s")
    return {"header": header, "claims": claims}


# --------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------


def new_query_id() -> str:
    """Snowflake query ids look like 01b2c3d4-0001-a2b3-0000-0001a2b3c4d5 (36 characters)."""
    h = secrets.token_hex(16)
    return f"01{h[0:6]}-{h[6:10]}-{h[10:14]}-0000-{h[14:26]}"


def normalize_sql(sql: str) -> str:
    s = sql.strip()
    while s.endswith(";"):
        s = s[:-1].rstrip()
    return re.sub(r"\s+", " ", s)


class Session:
    def __init__(self, token: str, master: str, user: str, account: str, params: dict, ctx: dict, conn: Any,
                 validity: float, master_validity: float):
        self.token = token
        self.master_token = master
        self.user = user
        self.account = account
        self.params = params
        self.ctx = ctx
        self.conn = conn
        self.created = time.time()
        self.expires_at = self.created + validity
        self.master_expires_at = self.created + master_validity
        self.expired = False
        self.lock = threading.Lock()
        self.session_id = secrets.randbelow(10**15)


class QueryRecord:
    def __init__(self, qid: str, request_id: str | None, session: Session, sql: str):
        self.qid = qid
        self.request_id = request_id
        self.session = session
        self.sql = sql
        self.start = time.time()
        self.done_at = self.start
        self.response: dict | None = None  # final answer (success or error) once done
        self.materialized: Materialized | None = None
        self.cancel = threading.Event()
        self.status = "RUNNING"
        self.timeout_seconds: int | None = None
        self.simulated_seconds = 0.0
        self.source = "fakesnow"


class State:
    def __init__(self, account: str, users: dict[str, list[rsa.RSAPublicKey]], chunk_root: str, db_path: str | None):
        self.account = account
        self.users = users
        self.chunk_root = chunk_root
        self.db_path = db_path
        self.lock = threading.RLock()
        self.config = dict(DEFAULT_CONFIG)
        self.faults: list[dict] = []
        self.fault_seq = 0
        self.canned: list[dict] = []
        self.log: list[dict] = []
        self.log_seq = 0
        self.sessions: dict[str, Session] = {}
        self.masters: dict[str, Session] = {}
        self.queries: "OrderedDict[str, QueryRecord]" = OrderedDict()
        self.login_failures: list[dict] = []
        self._fs = None

    # fakesnow -------------------------------------------------------------------------
    def fakesnow(self) -> Any:
        with self.lock:
            if self._fs is None:
                from fakesnow.instance import FakeSnow

                self._fs = FakeSnow(db_path=self.db_path)
            return self._fs

    # faults ---------------------------------------------------------------------------
    def take_fault(self, target: str, path: str, sql: str | None, kinds: Iterable[str]) -> dict | None:
        kinds = set(kinds)
        with self.lock:
            for f in self.faults:
                if f["kind"] not in kinds or f["times"] == 0:
                    continue
                ft = f.get("target", "any")
                if ft not in ("any", target):
                    continue
                if f.get("path_match") and not re.search(f["path_match"], path):
                    continue
                if f.get("sql_match"):
                    if sql is None or not re.search(f["sql_match"], sql, re.I | re.S):
                        continue
                if f["times"] is not None:
                    f["times"] -= 1
                f["fired"] = f.get("fired", 0) + 1
                return dict(f)
        return None

    def add_fault(self, spec: dict) -> dict:
        kind = spec.get("kind")
        valid = {"http_status", "drop_connection", "session_expired", "query_error", "delay", "stall",
                 "truncate_chunk"}
        if kind not in valid:
            raise ValueError(f"fault kind {kind!r}; one of {sorted(valid)}")
        target = spec.get("target", {"query_error": "query", "delay": "query", "session_expired": "query",
                                     "truncate_chunk": "chunk"}.get(kind, "any"))
        if target not in ("any", "login", "query", "poll", "chunk", "abort", "renew"):
            raise ValueError(f"fault target {target!r}")
        f = dict(spec)
        f["target"] = target
        f["times"] = spec.get("times", 1)
        with self.lock:
            self.fault_seq += 1
            f["id"] = self.fault_seq
            f["fired"] = 0
            self.faults.append(f)
        return f

    # log ------------------------------------------------------------------------------
    def record(self, entry: dict) -> None:
        with self.lock:
            self.log_seq += 1
            entry["seq"] = self.log_seq
            self.log.append(entry)
            if len(self.log) > 200000:
                del self.log[: len(self.log) - 200000]

    # queries --------------------------------------------------------------------------
    def add_query(self, q: QueryRecord) -> None:
        with self.lock:
            self.queries[q.qid] = q
            keep = max(1, int(self.config["retain_results"]))
            while len(self.queries) > keep:
                _, old = self.queries.popitem(last=False)
                if old.materialized:
                    old.materialized.cleanup()


STATE: State  # set in main()


def redact_auth(value: str) -> str:
    m = re.match(r'\s*Snowflake Token="(.*)"\s*$', value)
    if m:
        return f'Snowflake Token="<redacted:{hashlib.sha256(m.group(1).encode()).hexdigest()[:12]}>"'
    return "<redacted>"


def token_ref(token: str | None) -> str | None:
    return None if token is None else hashlib.sha256(token.encode()).hexdigest()[:12]


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


# --------------------------------------------------------------------------------------
# Snowflake answers
# --------------------------------------------------------------------------------------


def sf_error(code: str, message: str, sql_state: str | None, qid: str | None, kind: str = "COMPILATION") -> dict:
    """A failed query as Snowflake answers it: success:false, code, message, and data with
    errorCode/sqlState/queryId (snowflake-connector-rs reads data.queryId and requires it
    whenever data is present)."""
    data = None
    if qid is not None:
        data = {"internalError": False, "unredactedFromSecureObject": False, "errorCode": code, "age": 0,
                "sqlState": sql_state, "queryId": qid, "line": -1, "pos": -1, "type": kind}
    # sqlState lives in data ([PY] cursor.py reads ret["data"]["sqlState"]), not at the top level.
    return {"data": data, "code": code, "message": message, "success": False, "headers": None}


def session_expired_answer() -> dict:
    return {"data": None, "code": CODE_SESSION_EXPIRED, "message": MSG_SESSION_EXPIRED, "success": False,
            "headers": None}


def params_list(params: dict) -> list[dict]:
    return [{"name": k, "value": v} for k, v in sorted(params.items())]


def success_answer(q: QueryRecord, m: Materialized, host: str, statement_type_id: int) -> dict:
    """A successful query in the JSON result format (queryResultFormat "json")."""
    cfg = STATE.config
    s = q.session
    data: dict[str, Any] = {
        "parameters": params_list(s.params),
        "rowtype": m.rowtype,
        "rowset": "__ROWSET__",  # replaced by the raw inline JSON text when serialized
        "total": m.total,
        # "returned": rows in the whole result (default) or in the inline rowset only; which
        # one Snowflake means is unconfirmed (snowflake-connector-rs reads it as the inline
        # row count when chunks exist -- only a capacity hint there).
        "returned": m.total if cfg["returned_mode"] != "inline" else m.inline_rows,
        "queryId": q.qid,
        "databaseProvider": None,
        "finalDatabaseName": s.ctx.get("database"),
        "finalSchemaName": s.ctx.get("schema"),
        "finalWarehouseName": s.ctx.get("warehouse"),
        "finalRoleName": s.ctx.get("role"),
        "numberOfBinds": 0,
        "arrayBindSupported": False,
        "statementTypeId": statement_type_id,
        "version": 1,
        "sendResultTime": int(time.time() * 1000),
        "queryResultFormat": "json",
    }
    if m.chunks:
        mode = cfg["chunk_headers_mode"]
        raw_key = base64.b64decode(m.qrmk)
        if mode in ("both", "qrmk"):
            data["qrmk"] = m.qrmk
        if mode in ("both", "headers"):
            data["chunkHeaders"] = {
                "x-amz-server-side-encryption-customer-algorithm": "AES256",
                "x-amz-server-side-encryption-customer-key": m.qrmk,
                "x-amz-server-side-encryption-customer-key-md5": base64.b64encode(hashlib.md5(raw_key).digest()).decode(),
            }
        data["chunks"] = [
            {
                "url": f"http://{host}{CHUNK_PREFIX}{q.qid}/{i}?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                       f"&X-Amz-Expires=21600&X-Amz-SignedHeaders=host&X-Amz-Signature={c.signature}",
                "rowCount": c.row_count,
                "uncompressedSize": c.uncompressed_size,
                "compressedSize": c.compressed_size,
            }
            for i, c in enumerate(m.chunks)
        ]
    return {"data": data, "code": None, "message": None, "success": True}


def serialize_answer(ans: dict, m: Materialized | None) -> bytes:
    text = json.dumps(ans, ensure_ascii=False, separators=(",", ":"))
    if m is not None and '"__ROWSET__"' in text:
        text = text.replace('"__ROWSET__"', m.inline_json, 1)
    return text.encode("utf-8")


def in_progress_answer(q: QueryRecord) -> dict:
    return {"data": {"queryId": q.qid, "getResultUrl": f"/queries/{q.qid}/result",
                     "queryAbortsAfterSecs": 300, "progressDesc": None},
            "code": CODE_IN_PROGRESS, "message": MSG_IN_PROGRESS, "success": True}


# --------------------------------------------------------------------------------------
# SQL handling
# --------------------------------------------------------------------------------------

_ALTER_SESSION_SET = re.compile(r"^\s*ALTER\s+SESSION\s+SET\s+(.+?)\s*;?\s*$", re.I | re.S)
_ALTER_SESSION_UNSET = re.compile(r"^\s*ALTER\s+SESSION\s+UNSET\s+(.+?)\s*;?\s*$", re.I | re.S)
_ASSIGN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*('(?:[^']|'')*'|[^\s,]+)\s*,?", re.S)
_SYSTEM_WAIT = re.compile(
    r"^\s*(?:SELECT|CALL)\s+SYSTEM\$WAIT\s*\(\s*(\d+(?:\.\d+)?)\s*(?:,\s*'(\w+)'\s*)?\)\s*;?\s*$", re.I)
_WAIT_UNITS = {"SECONDS": 1, "MILLISECONDS": 1e-3, "MICROSECONDS": 1e-6, "NANOSECONDS": 1e-9,
               "MINUTES": 60, "HOURS": 3600}


def parse_param_value(raw: str) -> Any:
    if raw.startswith("'") and raw.endswith("'"):
        return raw[1:-1].replace("''", "'")
    up = raw.upper()
    if up in ("TRUE", "FALSE"):
        return up == "TRUE"
    try:
        return int(raw)
    except ValueError:
        try:
            return float(raw)
        except ValueError:
            return raw


def status_result() -> tuple[list[dict], list[list[Any]]]:
    return normalize_rowtype([{"name": "status", "type": "text", "nullable": True}]), [["Statement executed successfully."]]


def statement_timeout(session: Session) -> int:
    v = session.params.get("STATEMENT_TIMEOUT_IN_SECONDS", DEFAULT_SESSION_PARAMETERS["STATEMENT_TIMEOUT_IN_SECONDS"])
    try:
        return int(v)
    except (TypeError, ValueError):
        return 0


def find_canned(sql: str) -> dict | None:
    norm = normalize_sql(sql)
    with STATE.lock:
        for c in STATE.canned:
            if c["times"] == 0:
                continue
            if c.get("sql") is not None and normalize_sql(c["sql"]).upper() != norm.upper():
                continue
            if c.get("match") is not None and not re.search(c["match"], sql, re.I | re.S):
                continue
            if c["times"] is not None:
                c["times"] -= 1
            c["fired"] = c.get("fired", 0) + 1
            return c
    return None


def run_fakesnow(session: Session, sql: str, bindings: dict | None) -> tuple[list[dict], Any, int]:
    """Execute on fakesnow; returns (rowtype, arrow table or None, statement type id)."""
    from fakesnow.converter import from_binding
    from fakesnow.dialect import parse_one
    from fakesnow.rowtype import describe_as_rowtype
    from fakesnow.statement_type import statement_type_id

    params: Any = None
    if bindings:
        if all(k.isdigit() for k in bindings):
            params = tuple(from_binding(bindings[str(i)]) for i in range(1, len(bindings) + 1))
        else:
            params = {k: from_binding(b) for k, b in bindings.items()}
    with session.lock:
        try:
            type_id = statement_type_id(parse_one(sql))
        except Exception:  # noqa: BLE001 - fakesnow raises its own syntax errors below
            type_id = 4096
        cur = session.conn.cursor()
        cur.execute(sql, binding_params=params, server=True)
        rowtype = describe_as_rowtype(cur._describe_last_sql())  # noqa: SLF001
        table = cur._arrow_table  # noqa: SLF001
        # fakesnow keeps every result in results_cache (for result-by-query-id lookups);
        # drop it so a large result is not held for the life of the process.
        session.conn.results_cache.pop(cur.sfqid, None)
        cur._arrow_table = None  # noqa: SLF001
    return normalize_rowtype(rowtype) if rowtype else [], table, type_id


def fakesnow_error(e: Exception, qid: str) -> dict:
    errno = getattr(e, "errno", None) or 0
    code = f"{int(errno):06d}" if errno else CODE_INTERNAL
    sql_state = getattr(e, "sqlstate", None) or "42000"
    msg = getattr(e, "msg", None) or str(e)
    msg = re.sub(r"^\d{6} \([0-9A-Z]{5}\): ", "", str(msg))
    return sf_error(code, msg, sql_state, qid)


def execute_query(q: QueryRecord, sql: str, bindings: dict | None, host: str) -> None:
    """Fill q.response (and q.materialized) -- the final answer once the query is done."""
    cfg = STATE.config
    s = q.session
    pretty = cfg["variant_style"] != "compact"
    inline_rows = int(cfg["inline_rows"])
    rows_per_chunk = max(1, int(cfg["rows_per_chunk"]))

    m_set = _ALTER_SESSION_SET.match(sql)
    m_unset = _ALTER_SESSION_UNSET.match(sql)
    canned = find_canned(sql)
    try:
        if canned is not None:
            q.source = "canned"
            if canned.get("error"):
                e = canned["error"]
                q.response = sf_error(str(e.get("code", "002003")), e.get("message", "canned error"),
                                      e.get("sql_state", "42000"), e.get("query_id") or q.qid, e.get("type", "COMPILATION"))
                return
            rowtype = canned["rowtype"]
            m = materialize(rowtype, canned_row_batches(canned["rows"], rowtype, pretty), q.qid,
                            STATE.chunk_root, inline_rows, rows_per_chunk)
            type_id = 4096
        elif m_set or m_unset:
            q.source = "alter_session"
            if m_set:
                assigns = _ASSIGN.findall(m_set.group(1))
                if not assigns:
                    q.response = sf_error("001003", "SQL compilation error:\nsyntax error", "42000", q.qid)
                    return
                for name, raw in assigns:
                    s.params[name.upper()] = parse_param_value(raw)
            else:
                for name in re.split(r"[\s,]+", m_unset.group(1).strip()):
                    if name:
                        s.params.pop(name.upper(), None)
                        if name.upper() in DEFAULT_SESSION_PARAMETERS:
                            s.params[name.upper()] = DEFAULT_SESSION_PARAMETERS[name.upper()]
            rowtype, rows = status_result()
            m = materialize(rowtype, canned_row_batches(rows, rowtype, pretty), q.qid, STATE.chunk_root,
                            inline_rows, rows_per_chunk)
            type_id = 0x4000
        elif (w := _SYSTEM_WAIT.match(sql)) is not None:
            q.source = "system_wait"
            rowtype = normalize_rowtype([{"name": f"SYSTEM$WAIT({w.group(1)})", "type": "text"}])
            unit = (w.group(2) or "SECONDS").upper()
            rows = [[f"waited {w.group(1)} {unit.lower()}"]]
            m = materialize(rowtype, canned_row_batches(rows, rowtype, pretty), q.qid, STATE.chunk_root,
                            inline_rows, rows_per_chunk)
            type_id = 4096
        else:
            try:
                rowtype, table, type_id = run_fakesnow(s, sql, bindings)
            except Exception as e:  # noqa: BLE001
                import snowflake.connector.errors as sferrors

                if isinstance(e, (sferrors.ProgrammingError, sferrors.OperationalError)):
                    q.response = fakesnow_error(e, q.qid)
                    return
                traceback.print_exc()
                q.response = sf_error(CODE_INTERNAL, f"SQL execution internal error:\n{type(e).__name__}: {e}",
                                      "XX000", q.qid, "EXECUTION")
                return
            if str(s.params.get("QUERY_RESULT_FORMAT", "JSON")).upper() == "ARROW" and table is not None:
                from fakesnow.arrow import to_ipc, to_sf

                data = base64.b64encode(to_ipc(to_sf(table, rowtype))).decode()
                q.response = {"data": {"rowtype": rowtype, "rowsetBase64": data, "total": table.num_rows,
                                       "returned": table.num_rows, "queryId": q.qid, "statementTypeId": type_id,
                                       "queryResultFormat": "arrow", "parameters": params_list(s.params)},
                              "code": None, "message": None, "success": True}
                return
            batches = arrow_row_batches(table, rowtype, pretty) if table is not None else iter(())
            m = materialize(rowtype, batches, q.qid, STATE.chunk_root, inline_rows, rows_per_chunk)
            del table
    except ValueError as e:
        q.response = sf_error("002003", f"front: cannot encode result: {e}", "22000", q.qid, "EXECUTION")
        return
    q.materialized = m
    q.response = success_answer(q, m, host, type_id)


# --------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------


class DropConnection(Exception):
    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cdp-snowflake-front/1"
    verbose = False

    def log_message(self, fmt: str, *args: Any) -> None:  # noqa: D401
        if self.verbose:
            sys.stderr.write("front: " + (fmt % args) + "\n")

    # plumbing -------------------------------------------------------------------------
    def read_body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if self.headers.get("Content-Encoding", "").lower() == "gzip" and body:
            body = gzip.decompress(body)
        return body

    def send(self, status: int, body: bytes, content_type: str = "application/json",
             headers: dict | None = None, allow_gzip: bool = True) -> None:
        accept = self.headers.get("Accept-Encoding", "") or ""
        extra = dict(headers or {})
        if (allow_gzip and STATE.config["gzip_responses"] and "gzip" in accept.lower() and len(body) > 512
                and "Content-Encoding" not in extra):
            body = gzip.compress(body, compresslevel=1)
            extra["Content-Encoding"] = "gzip"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, obj: Any) -> None:
        self.send(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"))

    def drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        raise DropConnection()

    def entry(self, body_summary: Any = None) -> dict:
        u = urlsplit(self.path)
        headers = {}
        for k, v in self.headers.items():
            lk = k.lower()
            if lk == "authorization":
                v = redact_auth(v)
            elif lk == "x-amz-server-side-encryption-customer-key":
                v = f"<redacted:{hashlib.sha256(v.encode()).hexdigest()[:12]}>"
            headers[lk] = v
        return {"ts": time.time(), "method": self.command, "path": u.path,
                "query": {k: v[0] if len(v) == 1 else v for k, v in parse_qs(u.query).items()},
                "headers": headers, "body": body_summary, "client": self.client_address[0]}

    def do_GET(self) -> None:  # noqa: N802
        self.dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self.dispatch()

    def do_DELETE(self) -> None:  # noqa: N802
        self.dispatch()

    def dispatch(self) -> None:
        path = urlsplit(self.path).path
        try:
            if path.startswith(CONTROL_PREFIX + "/") or path == CONTROL_PREFIX:
                self.control(path[len(CONTROL_PREFIX):] or "/")
            elif path.startswith(CHUNK_PREFIX):
                self.chunk(path)
            elif path == "/session/v1/login-request" and self.command == "POST":
                self.login()
            elif path == "/session/token-request" and self.command == "POST":
                self.renew()
            elif path in ("/session", "/session/heartbeat") and self.command == "POST":
                self.session_op(path)
            elif path == "/queries/v1/query-request" and self.command == "POST":
                self.query()
            elif path == "/queries/v1/abort-request" and self.command == "POST":
                self.abort()
            elif (mres := re.match(r"^/queries/([^/]+)/result$", path)) and self.command == "GET":
                self.poll(mres.group(1))
            elif (mmon := re.match(r"^/monitoring/queries/([^/]+)$", path)) and self.command == "GET":
                self.monitoring(mmon.group(1))
            else:
                e = self.entry()
                self.read_body()
                e.update(status=404)
                STATE.record(e)
                self.send_json(404, {"success": False, "code": "390400", "message": f"no route {self.command} {path}",
                                     "data": None})
        except DropConnection:
            pass
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            try:
                self.send_json(500, {"success": False, "message": f"front error: {type(e).__name__}: {e}"})
            except OSError:
                pass

    # fault helpers --------------------------------------------------------------------
    def transport_faults(self, target: str, e: dict, sql: str | None = None) -> bool:
        """Apply stall / drop / http_status faults; True when an answer was sent."""
        path = urlsplit(self.path).path
        f = STATE.take_fault(target, path, sql, ("stall",))
        if f:
            time.sleep(float(f.get("seconds", 1)))
            e.setdefault("faults", []).append({"kind": "stall", "id": f["id"]})
        f = STATE.take_fault(target, path, sql, ("drop_connection",))
        if f:
            e.update(status=None, fault={"kind": "drop_connection", "id": f["id"]})
            STATE.record(e)
            self.drop()
        f = STATE.take_fault(target, path, sql, ("http_status",))
        if f:
            status = int(f.get("status", 503))
            headers = {}
            if f.get("retry_after") is not None:
                headers["Retry-After"] = str(f["retry_after"])
            if f.get("body") is not None:
                body = f["body"].encode() if isinstance(f["body"], str) else json.dumps(f["body"]).encode()
                ctype = "application/json" if not isinstance(f["body"], str) else "text/plain"
            elif target == "chunk":
                # S3 error documents are XML
                body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>"
                        f"{'InternalError' if status >= 500 else 'AccessDenied'}</Code><Message>injected {status}"
                        f"</Message><RequestId>{secrets.token_hex(8).upper()}</RequestId></Error>").encode()
                ctype = "application/xml"
            else:
                body = f"<html><body><h1>{status}</h1>injected by the test front</body></html>".encode()
                ctype = "text/html"
            e.update(status=status, fault={"kind": "http_status", "id": f["id"]})
            STATE.record(e)
            self.send(status, body, ctype, headers, allow_gzip=False)
            return True
        return False

    # auth ------------------------------------------------------------------------------
    def session_from_header(self) -> tuple[Session | None, dict | None, int]:
        auth = self.headers.get("Authorization")
        if not auth:
            return None, {"data": None, "code": CODE_TOKEN_NOT_FOUND, "message": MSG_TOKEN_NOT_FOUND,
                          "success": False, "headers": None}, 401
        m = re.match(r'\s*Snowflake Token="(.*)"\s*$', auth)
        token = m.group(1) if m else None
        with STATE.lock:
            s = STATE.sessions.get(token) if token else None
        if s is None:
            return None, {"data": None, "code": CODE_SESSION_GONE, "message": MSG_SESSION_GONE, "success": False,
                          "headers": None}, 401
        if s.expired or time.time() >= s.expires_at:
            s.expired = True
            return s, session_expired_answer(), 200
        return s, None, 200

    # endpoints -------------------------------------------------------------------------
    def login(self) -> None:
        raw = self.read_body()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        data = (body or {}).get("data") or {}
        summary = {k: v for k, v in data.items() if k not in ("TOKEN", "PASSWORD", "PASSCODE")}
        if "PASSWORD" in data:
            summary["PASSWORD"] = "<redacted>"
        if "TOKEN" in data:
            try:
                p = data["TOKEN"].split(".")
                summary["TOKEN"] = {"jwt_header": json.loads(b64url_decode(p[0])),
                                    "jwt_claims": json.loads(b64url_decode(p[1])), "signature": "<omitted>"}
            except Exception:  # noqa: BLE001
                summary["TOKEN"] = "<undecodable>"
        e = self.entry(summary)
        if self.transport_faults("login", e):
            return
        qs = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        cfg = STATE.config
        account = str(data.get("ACCOUNT_NAME") or "")
        login_name = str(data.get("LOGIN_NAME") or "")
        authenticator = str(data.get("AUTHENTICATOR") or "SNOWFLAKE").upper()

        def fail(code: str, message: str, reason: str | None = None, detail: str | None = None) -> None:
            failure_id = str(uuid.uuid4())
            if code == CODE_JWT_INVALID:
                message = f"{message} [{failure_id}]"
            rec = {"uuid": failure_id, "code": code, "errorCode": reason, "number": JWT_DETAILS.get(reason or ""),
                   "detail": detail, "username": login_name, "timestamp": int(time.time())}
            with STATE.lock:
                STATE.login_failures.append(rec)
            ans = {"data": {"nextAction": "RETRY_LOGIN", "authnMethod": "KEYPAIR" if authenticator == "SNOWFLAKE_JWT"
                            else "PASSWORD", "signInOptions": {}},
                   "code": code, "message": message, "success": False, "headers": None}
            e.update(status=int(cfg["login_failure_http_status"]), sf_code=code, login_failure=rec)
            STATE.record(e)
            self.send_json(int(cfg["login_failure_http_status"]), ans)

        if body is None or not isinstance(data, dict) or not login_name:
            fail(CODE_AUTH_FAILURE, MSG_AUTH_FAILURE, None, "malformed login body")
            return
        if account.split(".")[0].upper() != STATE.account.split(".")[0].upper():
            # The account named in the request is not the one this endpoint serves.
            fail(CODE_JWT_INVALID if authenticator == "SNOWFLAKE_JWT" else CODE_AUTH_FAILURE,
                 "JWT token is invalid." if authenticator == "SNOWFLAKE_JWT" else MSG_AUTH_FAILURE,
                 "JWT_TOKEN_ACCOUNT_MISMATCH", f"ACCOUNT_NAME {account!r}, this account {STATE.account!r}")
            return
        if authenticator != "SNOWFLAKE_JWT":
            # Only key-pair users exist here; a password (or OAuth) login is refused the way
            # Snowflake refuses a wrong password.
            fail(CODE_AUTH_FAILURE, MSG_AUTH_FAILURE, None, f"authenticator {authenticator} is not accepted")
            return
        now = time.time() + float(cfg["clock_offset_seconds"])
        try:
            with STATE.lock:
                users = dict(STATE.users)
            jwt = verify_jwt(str(data.get("TOKEN") or ""), login_name, STATE.account, users, now,
                             int(cfg["jwt_leeway_seconds"]), int(cfg["jwt_max_lifetime_seconds"]))
        except JwtFailure as jf:
            fail(CODE_JWT_INVALID, "JWT token is invalid.", jf.reason, jf.detail)
            return

        params = dict(DEFAULT_SESSION_PARAMETERS)
        for k, v in (data.get("SESSION_PARAMETERS") or {}).items():
            params[str(k).upper()] = v
        ctx = {"database": qs.get("databaseName"), "schema": qs.get("schemaName"),
               "warehouse": qs.get("warehouse"), "role": qs.get("roleName")}
        fs = STATE.fakesnow()
        conn = fs.connect(ctx["database"], ctx["schema"])
        if ctx["database"]:
            ctx["database"] = ctx["database"].upper()
        if ctx["schema"]:
            ctx["schema"] = ctx["schema"].upper()
        token = f"ver:1-hint:{secrets.randbelow(10**6)}-{secrets.token_urlsafe(48)}"
        master = f"ver:1-hint:{secrets.randbelow(10**6)}-{secrets.token_urlsafe(48)}"
        s = Session(token, master, login_name.upper(), account, params, ctx, conn,
                    float(cfg["session_validity_seconds"]), float(cfg["master_validity_seconds"]))
        with STATE.lock:
            STATE.sessions[token] = s
            STATE.masters[master] = s
        ans = {"data": {"masterToken": master, "token": token,
                        "validityInSeconds": int(cfg["session_validity_seconds"]),
                        "masterValidityInSeconds": int(cfg["master_validity_seconds"]),
                        "displayUserName": login_name.upper(), "serverVersion": "9.0.0", "firstLogin": False,
                        "remMeToken": None, "remMeValidityInSeconds": 0, "healthCheckInterval": 45,
                        "newClientForUpgrade": None, "sessionId": s.session_id, "parameters": params_list(params),
                        "sessionInfo": {"databaseName": ctx["database"], "schemaName": ctx["schema"],
                                        "warehouseName": ctx["warehouse"], "roleName": ctx["role"]},
                        "idToken": None, "idTokenValidityInSeconds": 0, "responseData": None, "mfaToken": None,
                        "mfaTokenValidityInSeconds": 0},
               "code": None, "message": None, "success": True}
        e.update(status=200, session=token_ref(token), jwt_claims=jwt["claims"],
                 session_parameters=params)
        STATE.record(e)
        self.send_json(200, ans)

    def renew(self) -> None:
        raw = self.read_body()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        summary = {k: ("<redacted>" if "token" in k.lower() else v) for k, v in (body or {}).items()}
        e = self.entry(summary)
        if self.transport_faults("renew", e):
            return
        auth = self.headers.get("Authorization") or ""
        m = re.match(r'\s*Snowflake Token="(.*)"\s*$', auth)
        with STATE.lock:
            s = STATE.masters.get(m.group(1)) if m else None
        if s is None or time.time() >= s.master_expires_at:
            ans = {"data": None, "code": CODE_MASTER_TOKEN_EXPIRED, "message": MSG_MASTER_TOKEN_EXPIRED,
                   "success": False, "headers": None}
            e.update(status=200, sf_code=CODE_MASTER_TOKEN_EXPIRED)
            STATE.record(e)
            self.send_json(200, ans)
            return
        new_token = f"ver:1-hint:{secrets.randbelow(10**6)}-{secrets.token_urlsafe(48)}"
        with STATE.lock:
            STATE.sessions.pop(s.token, None)
            s.token = new_token
            s.expired = False
            s.expires_at = time.time() + float(STATE.config["session_validity_seconds"])
            STATE.sessions[new_token] = s
        ans = {"data": {"sessionToken": new_token, "validityInSecondsST": int(STATE.config["session_validity_seconds"]),
                        "masterToken": s.master_token,
                        "validityInSecondsMT": int(max(0, s.master_expires_at - time.time())),
                        "sessionId": s.session_id},
               "code": None, "message": None, "success": True}
        e.update(status=200, session=token_ref(new_token))
        STATE.record(e)
        self.send_json(200, ans)

    def session_op(self, path: str) -> None:
        self.read_body()
        e = self.entry()
        s, err, status = self.session_from_header()
        if err is not None:
            e.update(status=status, sf_code=err["code"])
            STATE.record(e)
            self.send_json(status, err)
            return
        qs = parse_qs(urlsplit(self.path).query)
        if path == "/session" and qs.get("delete", ["false"])[0].lower() == "true":
            with STATE.lock:
                STATE.sessions.pop(s.token, None)
                STATE.masters.pop(s.master_token, None)
        e.update(status=200, session=token_ref(s.token))
        STATE.record(e)
        self.send_json(200, {"data": None, "code": None, "message": None, "success": True})

    def query(self) -> None:
        raw = self.read_body()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        sql = str(body.get("sqlText") or "")
        e = self.entry({k: v for k, v in body.items()})
        qs = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        request_id = qs.get("requestId")
        if self.transport_faults("query", e, sql):
            return
        s, err, status = self.session_from_header()
        if err is not None:
            e.update(status=status, sf_code=err["code"], session=token_ref(s.token) if s else None)
            STATE.record(e)
            self.send_json(status, err)
            return
        e["session"] = token_ref(s.token)
        f = STATE.take_fault("query", "/queries/v1/query-request", sql, ("session_expired",))
        if f:
            if f.get("invalidate", True):
                s.expired = True
            e.update(status=200, sf_code=CODE_SESSION_EXPIRED, fault={"kind": "session_expired", "id": f["id"]})
            STATE.record(e)
            self.send_json(200, session_expired_answer())
            return
        q = QueryRecord(new_query_id(), request_id, s, sql)
        e["query_id"] = q.qid
        f = STATE.take_fault("query", "/queries/v1/query-request", sql, ("query_error",))
        if f:
            qid = f.get("query_id") or q.qid
            q.qid = qid
            q.response = sf_error(str(f.get("code", "002003")),
                                  f.get("message", "SQL compilation error:\nObject 'X' does not exist or not authorized."),
                                  f.get("sql_state", "02000"), qid, f.get("type", "COMPILATION"))
            q.status = "FAILED_WITH_ERROR"
            STATE.add_query(q)
            e.update(status=200, sf_code=q.response["code"], query_id=qid,
                     fault={"kind": "query_error", "id": f["id"]})
            STATE.record(e)
            self.send_json(200, q.response)
            return

        # How long the statement "runs": SYSTEM$WAIT(n) and delay faults.
        simulated = 0.0
        w = _SYSTEM_WAIT.match(sql)
        if w:
            simulated += float(w.group(1)) * _WAIT_UNITS.get((w.group(2) or "SECONDS").upper(), 1)
        f = STATE.take_fault("query", "/queries/v1/query-request", sql, ("delay",))
        if f:
            simulated += float(f.get("seconds", 1))
            e.setdefault("faults", []).append({"kind": "delay", "id": f["id"]})
        q.simulated_seconds = simulated
        timeout_s = statement_timeout(s)
        q.timeout_seconds = timeout_s
        STATE.add_query(q)
        if timeout_s > 0 and simulated > timeout_s:
            # The statement would outlive STATEMENT_TIMEOUT_IN_SECONDS: it is canceled at the
            # timeout and never produces rows.
            q.done_at = q.start + timeout_s
            q.response = sf_error(CODE_STATEMENT_TIMEOUT, MSG_STATEMENT_TIMEOUT.format(secs=timeout_s), "57014",
                                  q.qid, "EXECUTION")
        else:
            execute_query(q, sql, body.get("bindings"), self.headers.get("Host") or self.server_address_text())
            q.done_at = max(time.time(), q.start + simulated)
        ans = self.await_query(q, q.start + float(STATE.config["async_after_seconds"]))
        self.answer_query(q, ans, e)

    def server_address_text(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    def await_query(self, q: QueryRecord, hold_until: float) -> dict:
        """Wait until the query is done or hold_until; the answer to send."""
        while True:
            now = time.time()
            if q.cancel.is_set():
                q.status = "ABORTED"
                if q.materialized:
                    q.materialized.cleanup()
                    q.materialized = None
                q.response = sf_error(CODE_CANCELED, MSG_CANCELED, "57014", q.qid, "EXECUTION")
                q.done_at = now
                return q.response
            if now >= q.done_at:
                assert q.response is not None
                q.status = "SUCCESS" if q.response.get("success") else "FAILED_WITH_ERROR"
                return q.response
            if now >= hold_until:
                return in_progress_answer(q)
            q.cancel.wait(min(q.done_at, hold_until) - now)

    def answer_query(self, q: QueryRecord, ans: dict, e: dict) -> None:
        m = q.materialized if ans is q.response and ans.get("success") else None
        e.update(status=200, sf_code=ans.get("code"), query_id=q.qid, source=q.source,
                 total=m.total if m else None, chunks=len(m.chunks) if m else None)
        STATE.record(e)
        self.send(200, serialize_answer(ans, m))

    def poll(self, qid: str) -> None:
        self.read_body()
        e = self.entry()
        if self.transport_faults("poll", e):
            return
        s, err, status = self.session_from_header()
        if err is not None:
            e.update(status=status, sf_code=err["code"])
            STATE.record(e)
            self.send_json(status, err)
            return
        f = STATE.take_fault("poll", urlsplit(self.path).path, None, ("session_expired",))
        if f:
            if f.get("invalidate", True):
                s.expired = True
            e.update(status=200, sf_code=CODE_SESSION_EXPIRED, fault={"kind": "session_expired", "id": f["id"]})
            STATE.record(e)
            self.send_json(200, session_expired_answer())
            return
        with STATE.lock:
            q = STATE.queries.get(qid)
        if q is None:
            ans = sf_error("000709", f"Statement {qid} not found", "02000", qid, "EXECUTION")
            e.update(status=200, sf_code="000709", query_id=qid)
            STATE.record(e)
            self.send_json(200, ans)
            return
        ans = self.await_query(q, time.time() + float(STATE.config["poll_wait_seconds"]))
        self.answer_query(q, ans, e)

    def abort(self) -> None:
        raw = self.read_body()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        e = self.entry(body)
        if self.transport_faults("abort", e):
            return
        s, err, status = self.session_from_header()
        if err is not None:
            e.update(status=status, sf_code=err["code"])
            STATE.record(e)
            self.send_json(status, err)
            return
        rid = body.get("requestId")
        with STATE.lock:
            targets = [q for q in STATE.queries.values() if q.request_id == rid and q.session is s]
        running = [q for q in targets if q.status == "RUNNING"]
        for q in running:
            q.cancel.set()
        if running:
            ans = {"data": None, "code": None, "message": None, "success": True}
        else:
            ans = {"data": None, "code": CODE_NOT_EXECUTING, "message": MSG_NOT_EXECUTING, "success": False,
                   "headers": None}
        e.update(status=200, sf_code=ans["code"], aborted=[q.qid for q in running])
        STATE.record(e)
        self.send_json(200, ans)

    def monitoring(self, qid: str) -> None:
        self.read_body()
        e = self.entry()
        with STATE.lock:
            q = STATE.queries.get(qid)
        queries = [] if q is None else [{"id": q.qid, "status": q.status, "sqlText": q.sql}]
        e.update(status=200)
        STATE.record(e)
        self.send_json(200, {"data": {"queries": queries}, "success": True})

    def chunk(self, path: str) -> None:
        e = self.entry()
        m = re.match(r"^/_chunks/([^/]+)/(\d+)$", path)
        if self.transport_faults("chunk", e):
            return
        with STATE.lock:
            q = STATE.queries.get(m.group(1)) if m else None
        mat = q.materialized if q else None
        idx = int(m.group(2)) if m else -1
        if mat is None or not 0 <= idx < len(mat.chunks):
            e.update(status=404)
            STATE.record(e)
            self.send(404, b"<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>",
                      "application/xml", allow_gzip=False)
            return
        c = mat.chunks[idx]
        e.update(query_id=q.qid, chunk=idx)
        sig = parse_qs(urlsplit(self.path).query).get("X-Amz-Signature", [None])[0]
        if sig != c.signature:
            e.update(status=403)
            STATE.record(e)
            self.send(403, b"<Error><Code>SignatureDoesNotMatch</Code></Error>", "application/xml", allow_gzip=False)
            return
        mode = STATE.config["chunk_headers_mode"]
        if mode != "none":
            alg = self.headers.get("x-amz-server-side-encryption-customer-algorithm")
            key = self.headers.get("x-amz-server-side-encryption-customer-key")
            if alg is None or key is None:
                e.update(status=400, sse_c="missing")
                STATE.record(e)
                self.send(400, b"<Error><Code>InvalidRequest</Code><Message>The object was stored using a form of "
                               b"Server Side Encryption. The correct parameters must be provided to retrieve the "
                               b"object.</Message></Error>", "application/xml", allow_gzip=False)
                return
            if alg != "AES256" or key != mat.qrmk:
                e.update(status=403, sse_c="mismatch")
                STATE.record(e)
                self.send(403, b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
                          "application/xml", allow_gzip=False)
                return
            e["sse_c"] = "ok"
        with open(c.path, "rb") as fh:
            data = fh.read()
        f = STATE.take_fault("chunk", path, None, ("truncate_chunk",))
        if f:
            data = data[: max(2, len(data) // 2)]
            e["fault"] = {"kind": "truncate_chunk", "id": f["id"]}
        headers = {"x-amz-request-id": secrets.token_hex(8).upper(), "ETag": f'"{hashlib.md5(data).hexdigest()}"'}
        if STATE.config["chunk_content_encoding"]:
            headers["Content-Encoding"] = "gzip"
        e.update(status=200, bytes=len(data))
        STATE.record(e)
        self.send(200, data, "binary/octet-stream", headers, allow_gzip=False)

    # control ---------------------------------------------------------------------------
    def control(self, sub: str) -> None:
        if not is_loopback(self.client_address[0]):
            self.send_json(403, {"error": "control endpoints answer loopback clients only"})
            return
        raw = self.read_body()
        try:
            body = parse_json_exact(raw.decode("utf-8")) if raw.strip() else {}
        except ValueError as err:
            self.send_json(400, {"error": f"body is not JSON: {err}"})
            return
        method = self.command
        qs = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        try:
            out = self.control_route(method, sub, body, qs)
        except (ValueError, KeyError, TypeError) as err:
            self.send_json(400, {"error": f"{type(err).__name__}: {err}"})
            return
        if out is None:
            self.send_json(404, {"error": f"no control route {method} {sub}"})
            return
        self.send_json(200, out)

    def control_route(self, method: str, sub: str, body: Any, qs: dict) -> Any:
        def faults_of(spec: Any) -> list[dict]:
            specs = spec if isinstance(spec, list) else [spec]
            return [STATE.add_fault(_plain(s)) for s in specs]

        if sub in ("/", "/health") and method == "GET":
            return {"ok": True, "account": STATE.account, "users": sorted(STATE.users)}
        if sub == "/log":
            if method == "GET":
                since = int(qs.get("since", 0))
                with STATE.lock:
                    return [x for x in STATE.log if x["seq"] > since]
            if method == "DELETE":
                with STATE.lock:
                    STATE.log.clear()
                return {"cleared": True}
        if sub == "/reset" and method == "POST":
            with STATE.lock:
                STATE.faults.clear()
                STATE.canned.clear()
                STATE.log.clear()
                STATE.login_failures.clear()
                STATE.config = dict(DEFAULT_CONFIG)
            return {"reset": True}
        if sub == "/config":
            if method == "POST":
                body = _plain(body)
                with STATE.lock:
                    for k, v in body.items():
                        if k not in DEFAULT_CONFIG:
                            raise ValueError(f"unknown config key {k!r}; one of {sorted(DEFAULT_CONFIG)}")
                        STATE.config[k] = v
            with STATE.lock:
                return dict(STATE.config)
        if sub == "/users":
            if method == "POST":
                body = _plain(body)
                name = str(body["user"]).upper()
                keys = body.get("public_keys") or [body["public_key_pem"]]
                with STATE.lock:
                    STATE.users[name] = [load_public_key(k) for k in keys]
                return {"user": name, "fingerprints": [f"SHA256:{key_fingerprint(k)}" for k in STATE.users[name]]}
            if method == "DELETE":
                with STATE.lock:
                    STATE.users.pop(str(qs.get("user", "")).upper(), None)
                return {"users": sorted(STATE.users)}
            if method == "GET":
                with STATE.lock:
                    return {u: [f"SHA256:{key_fingerprint(k)}" for k in ks] for u, ks in STATE.users.items()}
        if sub == "/faults":
            if method == "POST":
                return faults_of(body)
            if method == "GET":
                with STATE.lock:
                    return [dict(f) for f in STATE.faults]
            if method == "DELETE":
                with STATE.lock:
                    STATE.faults.clear()
                return {"cleared": True}
        # shortcuts for the faults the tests use most
        if method == "POST" and sub == "/expire_session":
            b = _plain(body) or {}
            return faults_of({"kind": "session_expired", "target": b.get("target", "query"),
                              "times": b.get("times", 1), "invalidate": b.get("invalidate", True),
                              **({"sql_match": b["sql_match"]} if b.get("sql_match") else {})})
        if method == "POST" and sub == "/expire_all_sessions":
            with STATE.lock:
                for s in STATE.sessions.values():
                    s.expired = True
                return {"expired": len(STATE.sessions)}
        if method == "POST" and sub == "/fail_requests":
            b = _plain(body) or {}
            return faults_of({"kind": "http_status", "status": b.get("status", 503), "times": b.get("times", 1),
                              "target": b.get("target", "any"), **{k: b[k] for k in ("body", "retry_after",
                                                                                    "path_match", "sql_match") if k in b}})
        if method == "POST" and sub == "/fail_chunk":
            b = _plain(body) or {}
            return faults_of({"kind": b.get("kind", "http_status"), "status": b.get("status", 500),
                              "times": b.get("times", 1), "target": "chunk",
                              **({"path_match": b["path_match"]} if b.get("path_match") else {})})
        if method == "POST" and sub == "/query_error":
            b = _plain(body) or {}
            return faults_of({"kind": "query_error", **b})
        if method == "POST" and sub == "/delay":
            b = _plain(body) or {}
            return faults_of({"kind": "delay", **b})
        if sub == "/canned":
            if method == "POST":
                specs = body if isinstance(body, list) else [body]
                added = []
                for spec in specs:
                    if spec.get("sql") is None and spec.get("match") is None:
                        raise ValueError("a canned result needs 'sql' (exact text) or 'match' (regex)")
                    c = {"sql": spec.get("sql"), "match": spec.get("match"), "times": spec.get("times"),
                         "fired": 0}
                    if spec.get("error") is not None:
                        c["error"] = _plain(spec["error"])
                    else:
                        c["rowtype"] = normalize_rowtype(_plain(spec["rowtype"]))
                        c["rows"] = spec.get("rows") or []
                        # encode once now so a bad value is reported to the test, not the client
                        list(canned_row_batches(c["rows"], c["rowtype"], True))
                    with STATE.lock:
                        STATE.canned.append(c)
                    added.append({k: v for k, v in c.items() if k != "rows"})
                return _plain(added)
            if method == "GET":
                with STATE.lock:
                    return _plain([{k: v for k, v in c.items() if k != "rows"} for c in STATE.canned])
            if method == "DELETE":
                with STATE.lock:
                    STATE.canned.clear()
                return {"cleared": True}
        if sub == "/sessions" and method == "GET":
            with STATE.lock:
                return [{"session": token_ref(s.token), "user": s.user, "account": s.account, "context": s.ctx,
                         "parameters": s.params, "expired": s.expired or time.time() >= s.expires_at,
                         "created": s.created} for s in STATE.sessions.values()]
        if sub == "/queries" and method == "GET":
            with STATE.lock:
                return [{"query_id": q.qid, "request_id": q.request_id, "sql": q.sql, "status": q.status,
                         "source": q.source, "session": token_ref(q.session.token),
                         "statement_timeout_in_seconds": q.timeout_seconds, "simulated_seconds": q.simulated_seconds,
                         "total": q.materialized.total if q.materialized else None,
                         "chunks": len(q.materialized.chunks) if q.materialized else None,
                         "code": (q.response or {}).get("code")} for q in STATE.queries.values()]
        if sub == "/login_failures" and method == "GET":
            with STATE.lock:
                return list(STATE.login_failures)
        if sub == "/encode" and method == "POST":
            # Encode typed values with a rowtype without running a query (for unit tests of
            # the encoder itself): {"rowtype": [...], "rows": [[...]]} -> {"rowset": [[...]]}
            rowtype = normalize_rowtype(_plain(body["rowtype"]))
            rows = next(canned_row_batches(body.get("rows") or [], rowtype, STATE.config["variant_style"] != "compact"))
            return {"rowtype": rowtype, "rowset": [json.loads(r) for r in rows]}
        return None


def _plain(v: Any) -> Any:
    """Turn RawNumber (from parse_json_exact) back into int/float for non-value fields."""
    if isinstance(v, RawNumber):
        try:
            return int(v)
        except ValueError:
            return float(v)
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def load_users(path: str | None) -> dict[str, list[rsa.RSAPublicKey]]:
    users: dict[str, list[rsa.RSAPublicKey]] = {}
    if not path:
        return users
    with open(path, encoding="utf-8") as fh:
        raw = json.load(fh)
    if not isinstance(raw, dict):
        raise SystemExit(f"--users {path}: want a JSON object of user name -> public key PEM (or list of PEMs)")
    for name, keys in raw.items():
        keys = keys if isinstance(keys, list) else [keys]
        users[str(name).upper()] = [load_public_key(k) for k in keys]
    return users


def self_test() -> int:
    """Known encodings (each derivable by hand from the formats cited above)."""
    def cell(t: str, v: Any, **kw: Any) -> Any:
        return json.loads(encode_typed(v, normalize_rowtype([{"name": "C", "type": t, **kw}])[0], True))

    checks = [
        (cell("fixed", "12345678901234567890123456789012345678"), "12345678901234567890123456789012345678"),
        (cell("fixed", "-1.5", scale=2), "-1.50"),
        (cell("fixed", RawNumber("0.1"), scale=3), "0.100"),
        (cell("fixed", 0, scale=0), "0"),
        (cell("real", float("nan")), "NaN"),
        (cell("real", float("-inf")), "-inf"),
        (cell("real", 0.1), "0.1"),
        (cell("boolean", True), "1"),
        (cell("boolean", False), "0"),
        (cell("date", "1970-01-02"), "1"),
        (cell("date", "1969-12-31"), "-1"),
        (cell("date", "2024-02-29"), "19782"),
        (cell("time", "12:34:56.789", scale=9), "45296.789000000"),
        (cell("time", "00:00:01", scale=0), "1"),
        (cell("timestamp_ntz", "1970-01-01 00:00:01.5", scale=9), "1.500000000"),
        (cell("timestamp_ntz", "1969-12-31 23:59:59.5", scale=9), "-0.500000000"),
        (cell("timestamp_ntz", "1969-12-31 23:59:59", scale=0), "-1"),
        (cell("timestamp_ltz", "2024-01-02 08:34:05+05:30", scale=3), "1704164645.000"),
        (cell("timestamp_tz", "2024-01-02 08:34:05.5+05:30", scale=9), "1704164645.500000000 1770"),
        (cell("timestamp_tz", "1970-01-01 00:00:00-08:00", scale=0), "28800 960"),
        (cell("binary", "deadBEEF"), "DEADBEEF"),
        (cell("variant", {"a": [1, RawNumber("2.50")], "b": 9223372036854775808}),
         '{\n  "a": [\n    1,\n    2.50\n  ],\n  "b": 9223372036854775808\n}'),
        (cell("array", []), "[]"),
        (cell("text", None), None),
    ]
    bad = [(got, want) for got, want in checks if got != want]
    for got, want in bad:
        print(f"self-test: got {got!r}, want {want!r}", file=sys.stderr)
    print(f"self-test: {len(checks) - len(bad)} passed, {len(bad)} failed")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    global pa, pc, STATE
    ap = argparse.ArgumentParser(description="Snowflake REST front over fakesnow, for tests (loopback only).")
    ap.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=0, help="port (0: pick a free one; see --port-file)")
    ap.add_argument("--port-file", help="write the port here once listening (atomically)")
    ap.add_argument("--users", help="JSON file: user name -> public key PEM (or a list of PEMs)")
    ap.add_argument("--account", default="TESTACCOUNT", help="the account this endpoint serves")
    ap.add_argument("--db-path", help="fakesnow database directory (default: in memory)")
    ap.add_argument("--chunk-dir", help="where chunk files go (default: a temporary directory)")
    ap.add_argument("--inline-rows", type=int, default=DEFAULT_CONFIG["inline_rows"])
    ap.add_argument("--rows-per-chunk", type=int, default=DEFAULT_CONFIG["rows_per_chunk"])
    ap.add_argument("--async-after", type=float, default=DEFAULT_CONFIG["async_after_seconds"],
                    help="seconds a query-request is held before answering 333333 'in progress'")
    ap.add_argument("--poll-wait", type=float, default=DEFAULT_CONFIG["poll_wait_seconds"])
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--self-test", action="store_true", help="check the cell encoders and exit")
    args = ap.parse_args(argv)
    if args.self_test:
        return self_test()

    if not is_loopback(args.host):
        ap.error(f"--host {args.host} is not a loopback address; this test server listens on loopback only")

    import pyarrow as _pa
    import pyarrow.compute as _pc

    pa, pc = _pa, _pc

    DEFAULT_CONFIG.update(inline_rows=args.inline_rows, rows_per_chunk=args.rows_per_chunk,
                          async_after_seconds=args.async_after, poll_wait_seconds=args.poll_wait)
    chunk_root = args.chunk_dir or tempfile.mkdtemp(prefix="cdp-snowflake-front-")
    os.makedirs(chunk_root, exist_ok=True)
    STATE = State(args.account, load_users(args.users), chunk_root, args.db_path)
    STATE.fakesnow()  # import + create DuckDB now, not on the first login

    Handler.verbose = args.verbose
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    Server.address_family = family
    httpd = Server((args.host, args.port), Handler)
    port = httpd.server_address[1]

    def stop(*_: Any) -> None:
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    print(f"snowflake front listening on http://{args.host}:{port} account={args.account} "
          f"users={sorted(STATE.users)} chunks={chunk_root}", flush=True)
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        httpd.server_close()
        if not args.chunk_dir:
            shutil.rmtree(chunk_root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
