#!/usr/bin/env python3
"""Checks a running ticketd after a fuzz or load run, from its own /metrics:
no 5xx was answered, and every category holds available + held + sold == total with
sold <= total. Given a PostgreSQL URL, also checks that the persisted reservations agree
with the live counters (held and sold per category) once the stream has caught up.

    infra/check-stock.py http://127.0.0.1:8080 [postgres://postgres@127.0.0.1/ticketd]
"""
import re
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict

LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}
GAUGE_PERIOD_S = 2  # the runtime refreshes the ticket gauges this often


def scrape(base):
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
        return response.read().decode()


def samples(text, name):
    """(labels, value) of every sample of metric `name`."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        labels = {
            key: re.sub(r"\\.", lambda m: UNESCAPE.get(m.group(0), m.group(0)), raw)
            for key, raw in LABEL.findall(head)
        }
        yield labels, float(value)


def counters(text):
    """{(event, category): {state: count}} from the `tickets` gauges."""
    found = defaultdict(dict)
    for labels, value in samples(text, "tickets"):
        found[(labels["event"], labels["category"])][labels["state"]] = int(value)
    return found


def persisted(database_url):
    """{(event, category): {"held": n, "sold": n}} from the reservations in PostgreSQL."""
    query = (
        "select event_id, category, status, sum(qty) from reservations "
        "where status in ('held', 'confirmed') group by 1, 2, 3"
    )
    out = subprocess.run(
        ["psql", database_url, "-XAtF", "\x1f", "-c", query],
        check=True, capture_output=True, text=True, timeout=30,
    ).stdout
    found = defaultdict(lambda: {"held": 0, "sold": 0})
    for row in out.splitlines():
        event, category, status, qty = row.split("\x1f")
        found[(event, category)]["held" if status == "held" else "sold"] += int(qty)
    return found


def main(base, database_url=None):
    time.sleep(GAUGE_PERIOD_S + 0.5)  # the gauges of the last change
    text = scrape(base)
    problems = []
    server_errors = sum(
        value for labels, value in samples(text, "http_requests_total")
        if labels.get("status", "").startswith("5")
    )
    if server_errors:
        problems.append(f"{server_errors:.0f} answers were 5xx")
    live = counters(text)
    for (event, category), c in sorted(live.items()):
        if c["available"] + c["held"] + c["sold"] != c["total"] or c["sold"] > c["total"]:
            problems.append(f"invariant broken in {event}/{category!r}: {c}")
    broken = sum(value for _, value in samples(text, "stock_invariant_broken"))
    if broken:
        problems.append(f"stock_invariant_broken is {broken:.0f}")
    summary = (
        f"{len(live)} categories, {sum(c['held'] for c in live.values())} held, "
        f"{sum(c['sold'] for c in live.values())} sold, 5xx {server_errors:.0f}"
    )

    if database_url and not problems:
        # The stream delivers within a second or so; give it up to 30 s.
        for _ in range(60):
            stored = persisted(database_url)
            disagree = [
                f"{key}: live held {c['held']} sold {c['sold']}, stored {stored.get(key)}"
                for key, c in live.items()
                if (c["held"], c["sold"]) != (stored[key]["held"], stored[key]["sold"])
            ]
            if not disagree:
                break
            time.sleep(0.5)
        problems += disagree
        summary += ", PostgreSQL agrees" if not disagree else ""

    if problems:
        print("stock check FAILED:\n  " + "\n  ".join(problems))
        return 1
    print(f"stock check: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
