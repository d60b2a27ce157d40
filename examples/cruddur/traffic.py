"""Bounded traffic generator for the Cruddur backend.

    python examples/cruddur/traffic.py http://127.0.0.1:4567 --duration 60 --rate 5 --seed 1
    python examples/cruddur/traffic.py http://127.0.0.1:4567 --requests 200

Several simulated users (X-Cruddur-User header) hit every route; most requests are normal,
some are slow (?slow=SECONDS, londo is always a bit slow) and some fail (?fail=1 -> 500,
unknown handles -> 404, blank input -> 422), so heatmaps, BubbleUp and error views have
something to show. Stops by itself after --duration seconds or --requests requests
(whichever comes first; 200 requests when neither is given). Standard library only.
"""
from __future__ import annotations

import argparse
import collections
import json
import random
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

USERS = ["andrewbrown", "worf", "garek", "bayko", "londo", None]  # None: anonymous
HANDLES = ["andrewbrown", "worf", "garek", "bayko", "londo"]
ACTIVITY_UUIDS = ["68f126b0-1ceb-4a33-88be-d90fa7109eee", "66e12864-8c26-4c3a-9658-95a10f8fea67",
                  "248959df-3079-4947-b847-9e0892d1bab4"]
MESSAGES = ["Cloud is very fun!", "I am out of prune juice", "My dear doctor, I am just simple tailor",
            "Observability is a property of the system", "Today is a good day to deploy",
            "Who watches the watchers?", "Spans all the way down"]
TTLS = ["30-days", "7-days", "3-days", "1-day", "12-hours", "3-hours", "1-hour"]

# (weight, name) of each kind of request
MIX = [
    (34, "home"), (14, "user"), (3, "user_unknown"), (8, "search"), (2, "search_blank"),
    (8, "create_activity"), (1, "create_activity_invalid"), (5, "reply"), (8, "message_groups"),
    (8, "messages"), (5, "create_message"), (1, "rollbar"), (3, "health"),
]


def plan_request(rng: random.Random, slow_fraction: float, fail_fraction: float):
    """Returns (method, path, query dict, json body or None, user)."""
    kind = rng.choices([k for _, k in MIX], weights=[w for w, _ in MIX])[0]
    user = rng.choice(USERS)
    query: dict[str, str] = {}
    body = None
    method = "GET"
    if kind == "home":
        path = "/api/activities/home"
    elif kind == "user":
        path = f"/api/activities/@{rng.choice(HANDLES)}"
    elif kind == "user_unknown":
        path = f"/api/activities/@ghost{rng.randint(1, 99)}"
    elif kind == "search":
        path = "/api/activities/search"
        query["term"] = rng.choice(["cloud", "prune", "tailor", "honor", "fun"])
    elif kind == "search_blank":
        path = "/api/activities/search"
    elif kind == "create_activity":
        method, path = "POST", "/api/activities"
        body = {"message": rng.choice(MESSAGES), "ttl": rng.choice(TTLS)}
    elif kind == "create_activity_invalid":
        method, path = "POST", "/api/activities"
        body = {"message": "", "ttl": rng.choice(TTLS)}
    elif kind == "reply":
        method, path = "POST", f"/api/activities/{rng.choice(ACTIVITY_UUIDS)}/reply"
        body = {"message": rng.choice(MESSAGES)}
    elif kind == "message_groups":
        path = "/api/message_groups"
    elif kind == "messages":
        path = f"/api/messages/@{rng.choice(HANDLES)}"
    elif kind == "create_message":
        method, path = "POST", "/api/messages"
        body = {"message": rng.choice(MESSAGES), "handle": rng.choice(HANDLES)}
    elif kind == "rollbar":
        path = "/rollbar/test"
    else:
        path = "/api/health"

    if kind not in ("health", "rollbar"):
        if rng.random() < slow_fraction:
            query["slow"] = f"{rng.uniform(0.2, 1.5):.2f}"
        elif user == "londo":  # one user who always has a slow connection to the mock data
            query["slow"] = f"{rng.uniform(0.1, 0.3):.2f}"
        if rng.random() < fail_fraction:
            query["fail"] = "1"
    return kind, method, path, query, body, user


def send(base: str, method: str, path: str, query: dict, body, user, timeout: float = 15.0) -> int:
    url = base + path + ("?" + urllib.parse.urlencode(query) if query else "")
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if user:
        req.add_header("X-Cruddur-User", user)
    req.add_header("User-Agent", "cruddur-traffic/1.0")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        e.read()
        return e.code
    except (urllib.error.URLError, OSError):
        return 0  # connection problem


def run_traffic(base: str, duration: float | None = None, requests: int | None = None, rate: float = 5.0,
                seed: int = 0, slow_fraction: float = 0.08, fail_fraction: float = 0.04,
                workers: int = 8, stop: threading.Event | None = None, quiet: bool = False) -> dict:
    """Send traffic until duration/requests is reached (or `stop` is set). Returns counters."""
    if duration is None and requests is None:
        requests = 200
    base = base.rstrip("/")
    rng = random.Random(seed)
    stop = stop or threading.Event()
    statuses: collections.Counter = collections.Counter()
    kinds: collections.Counter = collections.Counter()
    lock = threading.Lock()
    interval = 1.0 / rate if rate > 0 else 0.0
    start = time.monotonic()
    sent = 0

    def one(plan):
        kind, method, path, query, body, user = plan
        status = send(base, method, path, query, body, user)
        with lock:
            statuses[status] += 1
            kinds[kind] += 1

    with ThreadPoolExecutor(max_workers=workers) as pool:
        while not stop.is_set():
            if requests is not None and sent >= requests:
                break
            if duration is not None and time.monotonic() - start >= duration:
                break
            pool.submit(one, plan_request(rng, slow_fraction, fail_fraction))
            sent += 1
            if interval:
                next_at = start + sent * interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    stop.wait(delay)
    result = {"sent": sent, "seconds": round(time.monotonic() - start, 2),
              "statuses": {str(k): v for k, v in sorted(statuses.items())}, "kinds": dict(kinds)}
    if not quiet:
        print(json.dumps(result), flush=True)
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("backend_url", nargs="?", default="http://127.0.0.1:4567")
    ap.add_argument("--duration", type=float, help="seconds to run")
    ap.add_argument("--requests", type=int, help="number of requests to send")
    ap.add_argument("--rate", type=float, default=5.0, help="requests per second (0 = as fast as possible)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--slow-fraction", type=float, default=0.08)
    ap.add_argument("--fail-fraction", type=float, default=0.04)
    ap.add_argument("--workers", type=int, default=8)
    args = ap.parse_args(argv)
    stop = threading.Event()
    try:
        import signal
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    except ValueError:
        pass
    try:
        result = run_traffic(args.backend_url, args.duration, args.requests, args.rate, args.seed,
                             args.slow_fraction, args.fail_fraction, args.workers, stop)
    except KeyboardInterrupt:
        stop.set()
        return 130
    return 0 if result["statuses"].get("0", 0) < result["sent"] else 1


if __name__ == "__main__":
    sys.exit(main())
