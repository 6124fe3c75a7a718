#!/usr/bin/env python3
"""Drives a real Python tracking SDK against the collector and prints what happened.

    python3 drive.py <segment|customerio> <calls|mixed|wrong_key|bearer>

Environment:
    CDP_COLLECTOR_URL  base URL of the collector, e.g. http://127.0.0.1:8080 (required)
    CDP_WRITE_KEY      a write key the collector accepts (required except for wrong_key)
    CDP_RUN_ID         prefix that makes every messageId unique across runs
                       (a random one is made, and printed, when absent)
    CDP_STRICT_MODE=1  send `X-Strict-Mode: 1` on every request (through the SDK's
                       requests session)
    CDP_GZIP=1         turn on the SDK's own gzip option
    CDP_SDK_DEBUG=1    SDK debug logging (stderr)

The last line of stdout is one JSON object (see README.md). Everything else, SDK
logging included, goes to stderr. Exit status 0 unless this script itself broke
(bad arguments, SDK not installed, ...): an SDK that reports an error is a result.
"""

import base64
import gzip as gzip_mod
import json
import logging
import os
import sys
import threading
import time
import uuid

SDKS = {
    "segment": {"package": "segment-analytics-python", "module": "segment.analytics", "logger": "segment"},
    "customerio": {"package": "customerio-cdp-analytics", "module": "customerio.analytics", "logger": "customerio"},
}
SCENARIOS = ("calls", "mixed", "wrong_key", "bearer")
LANG = "python"

MAX_CALL_BYTES = 32 * 1024
# What the collector adds to a call before storing it; a call that is within the
# limit only before these are added tells a collector that measures too late apart.
RECEIVED_AT_BYTES = len(',"receivedAt":"2026-01-01T00:00:00.000Z"')
FLUSH_DEADLINE_S = 20.0


def fail(message):
    print(f"drive.py: {message}", file=sys.stderr)
    sys.exit(2)


def compact(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def compact_len(obj):
    return len(compact(obj).encode("utf-8"))


def auth_of(header):
    """('Basic', 'key') / ('Bearer', 'key') from an Authorization header value."""
    if not header:
        return None, None
    scheme, _, rest = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            user = base64.b64decode(rest).decode("utf-8").split(":", 1)[0]
        except Exception:
            user = None
        return "Basic", user
    return scheme, rest


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in SDKS or sys.argv[2] not in SCENARIOS:
        fail(f"usage: drive.py <{'|'.join(SDKS)}> <{'|'.join(SCENARIOS)}>")
    sdk, scenario = sys.argv[1], sys.argv[2]
    info = SDKS[sdk]

    url = os.environ.get("CDP_COLLECTOR_URL")
    if not url:
        fail("CDP_COLLECTOR_URL is not set")
    key = os.environ.get("CDP_WRITE_KEY")
    if scenario == "wrong_key":
        key = "wrong-key"
    elif not key:
        fail("CDP_WRITE_KEY is not set")
    run = os.environ.get("CDP_RUN_ID") or f"run{int(time.time())}{uuid.uuid4().hex[:8]}"
    strict = os.environ.get("CDP_STRICT_MODE") == "1"
    use_gzip = os.environ.get("CDP_GZIP") == "1"

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="[%(name)s] %(levelname)s %(message)s")
    if os.environ.get("CDP_SDK_DEBUG") == "1":
        logging.getLogger(info["logger"]).setLevel(logging.DEBUG)

    try:
        import importlib
        import importlib.metadata

        sdk_mod = importlib.import_module(info["module"])
        request_mod = importlib.import_module(info["module"] + ".request")
        version = importlib.metadata.version(info["package"])
    except Exception as e:  # not installed: the script cannot do its job
        fail(f"cannot import {info['module']} ({info['package']}): {e!r}; run install.sh")
    Client = sdk_mod.Client

    # ---- observe the HTTP requests the SDK makes (pass-through) -------------------
    http = []
    http_lock = threading.Lock()
    session = request_mod._session  # both SDKs post through one module-level requests.Session
    if strict:
        session.headers["X-Strict-Mode"] = "1"
    real_post = session.post

    def recording_post(target, **kwargs):
        headers = kwargs.get("headers") or {}
        raw = kwargs.get("data")
        raw = raw.encode("utf-8") if isinstance(raw, str) else (raw or b"")
        gz = headers.get("Content-Encoding") == "gzip"
        entry = {"url": target, "gzip": gz, "body_bytes": len(raw), "retry_count_header": headers.get("X-Retry-Count")}
        try:
            body = json.loads(gzip_mod.decompress(raw) if gz else raw)
            entry["top_level_keys"] = sorted(body.keys())
            entry["messageIds"] = [m.get("messageId") for m in body.get("batch", [])]
            entry["_elements"] = body.get("batch", [])
        except Exception as e:
            entry["body_error"] = repr(e)
        try:
            res = real_post(target, **kwargs)
        except Exception as e:
            entry["error"] = f"{type(e).__name__}: {e}"
            with http_lock:
                http.append(entry)
            raise
        entry["status"] = res.status_code
        entry["auth_scheme"], entry["auth_key"] = auth_of(res.request.headers.get("Authorization"))
        entry["strict_header"] = res.request.headers.get("X-Strict-Mode")
        entry["response"] = res.text[:500]
        with http_lock:
            http.append(entry)
        return res

    session.post = recording_post

    # ---- what the SDK tells the caller ---------------------------------------------
    errors = []

    def on_error(e, batch):
        errors.append(
            {
                "error": str(e)[:500],
                "class": type(e).__name__,
                "status": getattr(e, "status", None),
                "code": getattr(e, "code", None),
                "message": (str(getattr(e, "message")) if getattr(e, "message", None) is not None else None),
                "messageIds": [m.get("messageId") for m in batch],
            }
        )

    common = dict(host=url, on_error=on_error, timeout=5, max_retries=2, gzip=use_gzip)
    if sdk == "segment":
        # Bound the rate-limit path (Retry-After) too; counted retries: 2 (delays 0 s, ~0.5 s).
        common.update(max_total_backoff_duration=10, max_rate_limit_duration=5)

    # ---- the calls of the scenario ---------------------------------------------------
    prefix = f"{run}-{sdk}-{LANG}"
    user = f"{prefix}-user"
    ctx = {"ip": "203.0.113.7", "locale": "en-US", "userAgent": "cdp-sdk-test/1.0", "campaign": {"name": "sdk-test", "source": "drive"}}

    def mid(label):
        return f"{prefix}-{label}" if scenario == "calls" else f"{prefix}-{scenario}-{label}"

    plan = []  # dicts: method, kwargs (SDK arguments), record (output), pad

    def add(method, label, expect, reason, pad_target=None, **kw):
        kw.setdefault("message_id", mid(label))
        plan.append({"method": method, "kwargs": kw, "expect": expect, "reason": reason, "pad_target": pad_target, "label": label})

    if scenario == "calls":
        add("identify", "identify", "kept", "valid", user_id=user, context=dict(ctx),
            traits={"email": "ada@example.com", "name": "Ada Lovelace", "plan": "pro", "logins": 3})
        add("track", "track", "kept", "valid", user_id=user, context=dict(ctx), event="Order Completed",
            properties={"orderId": "o-1", "revenue": 42.5, "currency": "EUR", "items": [{"sku": "s-1", "qty": 2}]})
        add("page", "page", "kept", "valid", user_id=user, context=dict(ctx), name="Pricing",
            properties={"path": "/pricing", "url": "https://example.com/pricing", "title": "Pricing"})
        add("screen", "screen", "kept", "valid", user_id=user, context=dict(ctx), name="Home",
            properties={"variant": "b", "loadMs": 120})
        add("group", "group", "kept", "valid", user_id=user, context=dict(ctx), group_id=f"{prefix}-acme",
            traits={"name": "Acme Inc", "industry": "Manufacturing", "employees": 120})
        add("alias", "alias", "kept", "valid", user_id=user, context=dict(ctx), previous_id=f"{prefix}-anon")
    elif scenario == "mixed":
        add("track", "valid1", "kept", "valid", user_id=user, context=dict(ctx), event="Signed Up", properties={"plan": "free"})
        add("identify", "valid2", "kept", "valid", user_id=user, context=dict(ctx), traits={"email": "grace@example.com"})
        add("track", "noevent", "rejected", "missing event", user_id=user, properties={"why": "no event"})
        add("track", "emptyevent", "rejected", "empty event", user_id=user, event="", properties={"why": "empty event"})
        long_id = mid("longid-")
        long_id += "L" * max(150 - len(long_id), 10)
        add("track", "longid", "rejected", "messageId over 100 characters", user_id=user, event="Long Id",
            properties={"length": len(long_id)}, message_id=long_id)
        # The SDK measures json.dumps() with its default ", " / ": " separators and drops
        # anything over 32768 bytes of that; this call is exactly at the SDK's limit, so its
        # compact JSON is just under 32 KiB (and over it once receivedAt is added).
        add("track", "near32k", "kept", "just under 32 KiB", user_id=user, event="Big But Fine",
            properties={"kind": "near"}, pad_target=("sdk", MAX_CALL_BYTES))
        add("track", "over32k", "rejected", "over 32 KiB", user_id=user, event="Too Big",
            properties={"kind": "over"}, pad_target=("compact", MAX_CALL_BYTES + 1))
        add("page", "valid3", "kept", "valid", user_id=user, name="Docs", properties={"path": "/docs"})
    else:  # wrong_key, bearer
        add("track", "track", "kept", "valid", user_id=user, context=dict(ctx), event="Key Checked",
            properties={"scenario": scenario})
        if scenario == "wrong_key":
            plan[-1]["expect"], plan[-1]["reason"] = "rejected", "wrong write key (401)"

    # ---- client-side checks, on a client that sends nothing ---------------------------
    # send=False runs exactly the validation and size check of track() & co. and
    # returns the message as it would be queued; used to size padding and to know how
    # many calls will reach the consumer (so that they leave in one request).
    probe = Client(key, send=False, **{k: v for k, v in common.items() if k != "on_error"})

    def sdk_size(msg):
        return len(json.dumps(msg, cls=request_mod.DatetimeSerializer).encode())

    for p in plan:
        if p["pad_target"]:
            basis, target = p["pad_target"]
            props = dict(p["kwargs"]["properties"], blob="")
            _, msg = getattr(probe, p["method"])(**fresh(dict(p["kwargs"], properties=props)))
            base = sdk_size(msg) if basis == "sdk" else compact_len(msg)
            p["pad_length"] = target - base
            p["kwargs"]["properties"] = dict(p["kwargs"]["properties"], blob="x" * p["pad_length"])
        try:
            _, msg = getattr(probe, p["method"])(**fresh(p["kwargs"]))
            p["sdk_bytes"] = sdk_size(msg)
            p["sdk_ok"] = True
        except Exception as e:
            p["sdk_ok"] = False
            p["sdk_error"] = f"{type(e).__name__}: {str(e)[:200]}"

    if strict:
        for p in plan:
            if p["sdk_ok"] and p["expect"] == "kept" and scenario == "mixed":
                p["expect"], p["reason"] = "rejected", "strict mode: the whole request is rejected (400)"
            elif p["sdk_ok"] and p["expect"] == "rejected" and scenario == "mixed":
                p["reason"] += "; strict mode: the whole request is rejected (400)"

    to_send = [p for p in plan if p["sdk_ok"]]
    if scenario == "mixed":
        # One request: the consumer's batch closes as soon as upload_size calls are in it,
        # and the 5 s window cannot close it first.
        client = Client(key, upload_size=max(len(to_send), 1), upload_interval=5.0, **common)
    else:
        client = Client(key, upload_size=100, upload_interval=0.3, **common)

    enqueue = {}
    for p in to_send:
        try:
            ok, msg = getattr(client, p["method"])(**fresh(p["kwargs"]))
            enqueue[p["kwargs"]["message_id"]] = "queued" if ok else "queue full"
        except Exception as e:  # should not happen: the probe accepted it
            p["sdk_ok"] = False
            p["sdk_error"] = f"{type(e).__name__}: {str(e)[:200]}"
            enqueue[p["kwargs"]["message_id"]] = p["sdk_error"]

    flush_result = {"value": None}

    def do_flush():
        try:
            # flush() returns once every queued call was sent (or given up on); join()
            # would also wait out the consumer's idle batch window, for nothing.
            client.flush()
            flush_result["value"] = "ok"
        except Exception as e:
            flush_result["value"] = f"{type(e).__name__}: {e}"

    started = time.monotonic()
    flusher = threading.Thread(target=do_flush, daemon=True)
    flusher.start()
    flusher.join(FLUSH_DEADLINE_S)
    if flusher.is_alive():
        flush_result["value"] = f"timeout after {FLUSH_DEADLINE_S:.0f}s"
    flush_seconds = round(time.monotonic() - started, 3)

    # ---- output ---------------------------------------------------------------------
    with http_lock:
        requests_seen = list(http)
    wire = {}
    for i, entry in enumerate(requests_seen):
        for el in entry.pop("_elements", []) or []:
            wire.setdefault(el.get("messageId"), (i, el))

    failed = {}
    for e in errors:
        for m in e["messageIds"]:
            failed[m] = e["error"]

    calls_out = []
    for p in plan:
        kw = p["kwargs"]
        rec = {"messageId": kw["message_id"], "type": p["method"]}
        if not p["sdk_ok"]:
            rec["expect"], rec["reason"] = "dropped_by_sdk", p["reason"]
            rec["sdk_error"] = p["sdk_error"]
        else:
            rec["expect"], rec["reason"] = p["expect"], p["reason"]
        for name, field in (("user_id", "userId"), ("anonymous_id", "anonymousId"), ("event", "event"),
                            ("name", "name"), ("category", "category"), ("group_id", "groupId"),
                            ("previous_id", "previousId"), ("traits", "traits"), ("context", "context")):
            if name in kw:
                rec[field] = kw[name]
        if "event" not in kw and p["method"] == "track":
            rec["event"] = None
        if "properties" in kw:
            props = dict(kw["properties"])
            if "pad_length" in p:
                props.pop("blob", None)
                rec["pad"] = {"field": "properties.blob", "char": "x", "length": p["pad_length"]}
            rec["properties"] = props
        if "sdk_bytes" in p:
            rec["sdk_measured_bytes"] = p["sdk_bytes"]
        if kw["message_id"] in wire:
            i, el = wire[kw["message_id"]]
            size = compact_len(el)
            rec["wire"] = {
                "request": i,
                "timestamp": el.get("timestamp"),
                "library": (el.get("context") or {}).get("library"),
                "bytes_as_sent": len(json.dumps(el).encode()),
                "compact_bytes": size,
                "compact_bytes_plus_receivedAt": size + RECEIVED_AT_BYTES,
            }
            if "pad_length" not in p:
                rec["wire"]["element"] = el  # the call exactly as it went out (parsed back)
        else:
            rec["wire"] = None
        calls_out.append(rec)

    per_call = {}
    for p in plan:
        m = p["kwargs"]["message_id"]
        if not p["sdk_ok"]:
            per_call[m] = "dropped: " + p["sdk_error"]
        elif m in failed:
            per_call[m] = "error: " + failed[m]
        else:
            per_call[m] = "no error reported"

    attempts_per_call = {}
    for entry in requests_seen:
        for m in entry.get("messageIds", []):
            attempts_per_call[m] = attempts_per_call.get(m, 0) + 1

    out = {
        "sdk": sdk,
        "package": info["package"],
        "version": version,
        "lang": LANG,
        "scenario": scenario,
        "run": run,
        "strict_mode": strict,
        "gzip": use_gzip,
        "auth_scheme_expected": expected_auth(sdk, request_mod, key),
        "calls": calls_out,
        "reported": {
            "errors": errors,
            "error_count": len(errors),
            "per_call": per_call,
            "enqueue": enqueue,
            "client_side_exceptions": {p["kwargs"]["message_id"]: p["sdk_error"] for p in plan if not p["sdk_ok"]},
            "flush": flush_result["value"],
            "flush_seconds": flush_seconds,
        },
        "http": requests_seen,
        "http_requests": len(requests_seen),
        "http_attempts_per_call": attempts_per_call,
    }
    if scenario == "bearer" and out["auth_scheme_expected"] != "Bearer":
        out["note"] = "this SDK does not send Bearer for this key; the call went with HTTP Basic"
    sys.stdout.write(json.dumps(out, separators=(",", ":")) + "\n")
    sys.stdout.flush()
    # The consumer thread may still sit in a retry wait after a flush timeout.
    os._exit(0)


def fresh(kwargs):
    """A deep copy of the call's arguments: the SDKs write context.library into the
    context dict they are given, and the output must show what the caller passed."""
    return json.loads(json.dumps(kwargs))


def expected_auth(sdk, request_mod, key):
    if sdk == "customerio":
        # customerio-cdp-analytics: Bearer for keys shaped like pk_us_..., sk_eu_...
        pattern = getattr(request_mod, "_API_KEY_PREFIX", None)
        if pattern is not None and pattern.match(key.strip()):
            return "Bearer"
    return "Basic"


if __name__ == "__main__":
    main()
