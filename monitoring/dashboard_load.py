#!/usr/bin/env python3
"""A little, bounded sale against one ticketd, so that every panel of the dashboard has data.

    python3 monitoring/dashboard_load.py --base-url http://127.0.0.1:PORT --secret S --seconds 20

Makes an event with two categories: `Floor` (a small stock, sold out within seconds, so that
later fans get 409 sold_out) and `Balcony` (plenty). For --seconds, each of --workers threads
plays one new fan after another, about ten a second: a reserve in Floor, a reserve in Balcony
that is then confirmed, cancelled or left to expire (one in three each), an availability read
and a reservation read. Meanwhile a second event with a waiting room (a small stock, a slow
pace) gets --room-fans fans at once: half follow their place on the event stream, half poll it;
each reserves with its admission once admitted and pays, until the room is sold out and tells
the rest. Then it waits until a hold left alone has expired (ticketd runs with a short
RESERVATION_TTL) and exits 1 unless it saw every outcome: held, sold_out, confirmed, cancelled,
expired; and in the room: admitted (on a stream and by polling), bought, room sold_out.
Standard library only; traffic only to --base-url.
"""

import argparse
import base64
import collections
import hashlib
import hmac
import http.client
import json
import sys
import threading
import time
import urllib.parse


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def token(secret, role, sub):
    """An HS256 token as ticketd expects it: sub, role, iat, exp."""
    now = int(time.time())
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64url(json.dumps({"sub": sub, "role": role, "iat": now, "exp": now + 3600}).encode())
    signing_input = f"{header}.{claims}".encode()
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{claims}.{b64url(signature)}"


class Client:
    """One keep-alive connection; reconnects once after a broken one."""

    def __init__(self, base_url):
        url = urllib.parse.urlsplit(base_url)
        if url.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit(f"dashboard_load: only loopback targets, not {base_url}")
        self.host, self.port = url.hostname, url.port or 80
        self.conn = None

    def call(self, method, path, bearer=None, body=None, extra_headers=None):
        headers = {"Content-Type": "application/json", **(extra_headers or {})}
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        payload = json.dumps(body) if body is not None else None
        for attempt in (1, 2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                self.conn.request(method, path, body=payload, headers=headers)
                res = self.conn.getresponse()
                raw = res.read()
                try:
                    parsed = json.loads(raw) if raw else None
                except ValueError:
                    parsed = None
                return res.status, parsed
            except (OSError, http.client.HTTPException):
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def error_code(parsed):
    try:
        return parsed["error"]["code"]
    except (TypeError, KeyError):
        return None


def setup(client, admin, floor_stock):
    status, event = client.call("POST", "/events", admin, {
        "name": "dashboard check", "date": "2030-06-01T20:00:00Z", "venue": "Loopback Arena"})
    if status != 201:
        raise SystemExit(f"dashboard_load: POST /events -> {status} {event}")
    for name, stock in (("Floor", floor_stock), ("Balcony", 1_000_000)):
        status, body = client.call("POST", f"/events/{event['id']}/ticket-category", admin, {
            "name": name, "total_stock": stock, "price": 49.99, "max_per_user": 2})
        if status != 201:
            raise SystemExit(f"dashboard_load: POST ticket-category {name} -> {status} {body}")
    return event["id"]


def worker(args, event_id, number, deadline, seen, left_alone, lock):
    client = Client(args.base_url)
    fan = 0
    counts = collections.Counter()
    while time.monotonic() < deadline:
        started = time.monotonic()
        fan += 1
        user = token(args.secret, "user", f"dash-{number}-{fan}")
        status, body = client.call("POST", "/reserve", user,
                                   {"event_id": event_id, "category": "Floor", "qty": 1})
        counts["held" if status == 201 else error_code(body) or f"status {status}"] += 1

        status, body = client.call("POST", "/reserve", user,
                                   {"event_id": event_id, "category": "Balcony", "qty": 1})
        if status == 201:
            counts["held"] += 1
            hold = body["reservation_id"]
            choice = fan % 3
            if choice == 2:
                with lock:
                    left_alone.append((hold, user))
            else:
                status, body = client.call("POST", "/confirm", user,
                                           {"reservation_id": hold, "payment_ok": choice == 0})
                counts[body["status"] if status == 200 else f"confirm {status}"] += 1
            client.call("GET", f"/reservations/{hold}", user)
        else:
            counts[error_code(body) or f"status {status}"] += 1
        client.call("GET", f"/events/{event_id}/availability")
        time.sleep(max(0.0, args.pace - (time.monotonic() - started)))
    with lock:
        seen.update(counts)


def room_setup(client, admin, args):
    """An event whose one category sells behind a slow waiting room."""
    status, event = client.call("POST", "/events", admin, {
        "name": "dashboard check: waiting room", "date": "2030-06-01T20:00:00Z",
        "venue": "Loopback Arena"})
    if status != 201:
        raise SystemExit(f"dashboard_load: POST /events -> {status} {event}")
    status, body = client.call("POST", f"/events/{event['id']}/ticket-category", admin, {
        "name": "Floor", "total_stock": args.room_stock, "price": 49.99, "max_per_user": 1})
    if status != 201:
        raise SystemExit(f"dashboard_load: POST ticket-category -> {status} {body}")
    status, body = client.call("PUT", f"/events/{event['id']}/waiting-room", admin, {
        "enabled": True, "admit_per_second": args.room_rate, "admission_ttl": 10})
    if status != 200:
        raise SystemExit(f"dashboard_load: PUT waiting-room -> {status} {body}")
    return event["id"]


def stream_places(client, path, bearer, deadline):
    """The fan's places from the event stream, until it ends or `deadline` passes."""
    conn = http.client.HTTPConnection(client.host, client.port, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {bearer}",
                                           "Accept": "text/event-stream"})
        res = conn.getresponse()
        if res.status != 200:
            raise RuntimeError(f"GET {path} -> {res.status} {res.read()[:200]!r}")
        data = None
        while time.monotonic() < deadline:
            line = res.readline()
            if not line:
                return
            line = line.decode().rstrip("\r\n")
            if line.startswith("data:"):
                data = line[5:].strip()
            elif not line and data:
                yield json.loads(data)
                data = None
    finally:
        conn.close()


def polled_places(client, path, bearer, deadline):
    """The fan's places from GET .../queue/me, twice a second, until `deadline` passes."""
    while time.monotonic() < deadline:
        status, place = client.call("GET", path, bearer)
        if status != 200:
            raise RuntimeError(f"GET {path} -> {status} {place}")
        yield place
        time.sleep(0.5)


def room_fan(args, event_id, number, deadline, seen, lock):
    """Joins the room, follows the place (stream or polling), reserves once admitted, pays."""
    client = Client(args.base_url)
    user = token(args.secret, "user", f"room-fan-{number}")
    outcome = collections.Counter()
    try:
        status, place = client.call("POST", f"/events/{event_id}/queue", user)
        if status not in (200, 201):
            raise RuntimeError(f"join -> {status} {place}")
        how = "stream" if number % 2 == 0 else "polling"
        places = (stream_places(client, f"/events/{event_id}/queue/stream", user, deadline)
                  if how == "stream" else
                  polled_places(client, f"/events/{event_id}/queue/me", user, deadline))
        for place in places:
            if place["status"] == "sold_out":
                outcome["room sold_out"] += 1
                break
            if place["status"] != "admitted":
                continue
            outcome[f"admitted ({how})"] += 1
            status, hold = client.call(
                "POST", "/reserve", user, {"event_id": event_id, "category": "Floor", "qty": 1},
                {"Admission": place["admission"]})
            if status == 201:
                status, paid = client.call("POST", "/confirm", user,
                                           {"reservation_id": hold["reservation_id"], "payment_ok": True})
                outcome["bought" if status == 200 else f"confirm {status}"] += 1
            else:
                outcome[f"admitted, then {error_code(hold) or status}"] += 1
            break
        else:
            outcome["still waiting"] += 1
    except (OSError, http.client.HTTPException, RuntimeError, ValueError, KeyError) as err:
        print(f"dashboard_load: room fan {number}: {err}", file=sys.stderr)
        outcome["room errors"] += 1
    with lock:
        seen.update(outcome)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--pace", type=float, default=0.1, help="least seconds per fan and worker")
    parser.add_argument("--floor-stock", type=int, default=40)
    parser.add_argument("--expiry-wait", type=float, default=30, help="most seconds to wait for an expiry")
    parser.add_argument("--room-fans", type=int, default=50, help="fans who join the waiting room at once")
    parser.add_argument("--room-stock", type=int, default=20)
    parser.add_argument("--room-rate", type=int, default=2, help="the room's admit_per_second")
    args = parser.parse_args()

    client = Client(args.base_url)
    admin = token(args.secret, "admin", "dashboard-admin")
    event_id = setup(client, admin, args.floor_stock)
    room_event = room_setup(client, admin, args)
    seen, left_alone, lock = collections.Counter(), [], threading.Lock()
    deadline = time.monotonic() + args.seconds
    threads = [threading.Thread(target=worker, args=(args, event_id, n, deadline, seen, left_alone, lock))
               for n in range(args.workers)]
    # The room sells out at its own pace: give it the run and then some.
    room_deadline = deadline + 20
    threads += [threading.Thread(target=room_fan, args=(args, room_event, n, room_deadline, seen, lock))
                for n in range(args.room_fans)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # The sweeper expires a hold left alone soon after its deadline (RESERVATION_TTL).
    give_up = time.monotonic() + args.expiry_wait
    if left_alone:
        hold, user = left_alone[-1]
        while time.monotonic() < give_up:
            status, body = client.call("GET", f"/reservations/{hold}", user)
            if status == 200 and body.get("status") == "expired":
                seen["expired"] += 1
                break
            time.sleep(0.5)

    print(f"dashboard_load: events {event_id} and {room_event} (waiting room): "
          + ", ".join(f"{k} {v}" for k, v in sorted(seen.items())))
    expected = ("held", "sold_out", "confirmed", "cancelled", "expired",
                "admitted (stream)", "admitted (polling)", "bought", "room sold_out")
    missing = [outcome for outcome in expected if not seen[outcome]]
    if seen["room errors"]:
        missing.append("a waiting room without errors")
    if missing:
        print(f"dashboard_load: never saw {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
