#!/usr/bin/env python3
# A copy of ../shared/bench/gen_calls.py, the peer benchmark's generator, so that the
# benches need nothing outside the repository. The same generator, the same bytes.
"""Generate a realistic, reproducible NDJSON stream of CDP calls (Segment-spec).

Usage: gen_calls.py N [SEED] > calls.ndjson
Mix: 60% track, 20% page, 10% identify, 5% screen, 4% group, 1% alias.
"""
import json, random, sys, datetime

n = int(sys.argv[1]); rnd = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 7)
EVENTS = ["Order Completed", "Product Viewed", "Cart Updated", "Signed Up", "Video Played", "Checkout Step 2 Viewed"]
UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
base = datetime.datetime(2026, 11, 22, 10, 0, 0, tzinfo=datetime.timezone.utc)
HEX = "0123456789abcdef"
def hid(k): return "".join(rnd.choice(HEX) for _ in range(k))
def ts(off): return (base + datetime.timedelta(milliseconds=off)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
out = sys.stdout
for i in range(n):
    r = rnd.random()
    t = "track" if r < .60 else "page" if r < .80 else "identify" if r < .90 else "screen" if r < .95 else "group" if r < .99 else "alias"
    uid = f"user-{rnd.randrange(100000)}"
    off = i * 3
    c = {"type": t, "messageId": hid(24), "userId": uid, "anonymousId": hid(16),
         "timestamp": ts(off), "originalTimestamp": ts(off), "sentAt": ts(off + 40), "receivedAt": ts(off + 95),
         "context": {"ip": f"10.{rnd.randrange(255)}.{rnd.randrange(255)}.{rnd.randrange(255)}",
                     "library": {"name": "analytics.js", "version": "2.11.1"},
                     "locale": "en-US", "userAgent": UA,
                     "page": {"path": "/shop/cart", "url": "https://example.com/shop/cart", "referrer": "https://www.google.com/", "title": "Cart"}},
         "integrations": {}}
    if t == "track":
        c["event"] = rnd.choice(EVENTS)
        c["properties"] = {"order_id": hid(8), "total": round(rnd.random() * 300, 2), "currency": "USD",
                           "products": [{"sku": hid(6), "price": round(rnd.random() * 50, 2), "quantity": rnd.randrange(1, 4)} for _ in range(rnd.randrange(1, 4))]}
    elif t == "page":
        c["name"] = "Cart"; c["properties"] = {"path": "/shop/cart", "url": "https://example.com/shop/cart", "title": "Cart", "referrer": "https://www.google.com/", "search": ""}
    elif t == "screen":
        c["name"] = "Home"; c["properties"] = {"tab": "feed", "variant": rnd.choice(["a", "b"])}
    elif t == "identify":
        c["traits"] = {"email": f"{uid}@example.com", "name": "Cool Person", "plan": rnd.choice(["free", "pro"]), "likes_baseball": rnd.random() < .5,
                       "createdAt": ts(-off), "address": {"city": "Berlin", "country": "DE"}}
    elif t == "group":
        c["groupId"] = f"acct-{rnd.randrange(5000)}"; c["traits"] = {"name": "Acme", "employees": rnd.randrange(1, 5000), "objectTypeId": 1}
    else:
        c["previousId"] = hid(16)
    out.write(json.dumps(c, separators=(",", ":")) + "\n")
