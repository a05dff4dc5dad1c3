#!/usr/bin/env python3
"""The PromQL of a Grafana dashboard, checked against Prometheus.

    dashboard_queries.py rules DASHBOARD.json > rules.yml
        every panel query as a recording rule, for `promtool check rules` (do they parse?)
    dashboard_queries.py check DASHBOARD.json PROMETHEUS_URL START END
        runs every panel query (and every template variable's) as Grafana would over
        [START, END] (Unix seconds); one line per query; exits 1 if any returns no data
    curl -s PROMETHEUS_URL/api/v1/rules | dashboard_queries.py alerts
        exits 1 if an alert rule could not be evaluated or StockInvariantBroken fires

Grafana's variables are replaced as follows: a template variable by its "All" value (`.*`),
$__rate_interval, $__interval and $__range by durations fitting a 1 s scrape interval and the
checked window. A range query has data when some series has a sample that is a number (not
NaN); an instant query (a panel target with `instant`) when it returns a series. Standard
library only.
"""

import json
import math
import re
import sys
import urllib.parse
import urllib.request

RATE_INTERVAL = "10s"  # Grafana: at least 4 scrape intervals (1 s in the check)
INTERVAL = "1s"


def substitute(expr, variables, range_secs):
    expr = expr.replace("$__rate_interval", RATE_INTERVAL).replace("${__rate_interval}", RATE_INTERVAL)
    expr = expr.replace("$__interval", INTERVAL).replace("${__interval}", INTERVAL)
    expr = expr.replace("$__range", f"{range_secs}s").replace("${__range}", f"{range_secs}s")
    for name, value in variables.items():
        expr = re.sub(r"\$\{" + name + r"(:[a-z]+)?\}|\$" + name + r"\b", value, expr)
    if "$" in expr:
        raise ValueError(f"a variable left in {expr!r}")
    return expr


def load(path):
    with open(path, encoding="utf-8") as f:
        dashboard = json.load(f)
    variables = {v["name"]: v.get("allValue") or ".*" for v in dashboard.get("templating", {}).get("list", [])}
    return dashboard, variables


def panels(dashboard):
    """Every panel, those inside collapsed rows too, in dashboard order."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def targets(dashboard):
    """(panel title, refId, expr, instant) of every query of every panel."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield panel["title"], target.get("refId", "?"), target["expr"], bool(target.get("instant"))


def rules(path):
    dashboard, variables = load(path)
    print("# Generated from the dashboard by dashboard_queries.py: each panel query as a rule.")
    print("groups:\n  - name: dashboard\n    rules:")
    for n, (title, ref, expr, _) in enumerate(targets(dashboard)):
        print(f"      - record: dashboard:panel_{n}_{ref}  # {title}")
        print(f"        expr: {json.dumps(substitute(expr, variables, 3600))}")
    return 0


def api(base, path, params):
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=30) as res:
        answer = json.load(res)
    if answer.get("status") != "success":
        raise RuntimeError(f"{path}: {answer}")
    return answer["data"]


def describe(series, values):
    labels = series.get("metric", {})
    name = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))[:60] or "{}"
    # The largest value too: a gauge that ends at 0 (open streams, a drained queue) had data.
    peak = max(float(v) for v in values)
    return f"{name} = {values[-1]} (max {peak:g})"


def check(path, base, start, end):
    dashboard, variables = load(path)
    start, end = float(start), float(end)
    range_secs = max(1, math.ceil(end - start))
    failed = 0

    def report(ok, what, detail):
        nonlocal failed
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {what}: {detail}", flush=True)

    # Template variables: label_values(selector, label) must offer at least one value.
    for var in dashboard.get("templating", {}).get("list", []):
        query = var.get("definition") or var.get("query", {}).get("query", "")
        found = re.fullmatch(r"\s*label_values\((.+),\s*(\w+)\)\s*", query)
        if not found:
            report(False, f"variable ${var['name']}", f"cannot check {query!r}")
            continue
        selector, label = substitute(found.group(1), variables, range_secs), found.group(2)
        series = api(base, "/api/v1/series", {"match[]": selector, "start": start, "end": end})
        values = sorted({s[label] for s in series if label in s})
        report(bool(values), f"variable ${var['name']}", f"{len(values)} values {values[:3]}")

    for title, ref, expr, instant in targets(dashboard):
        query = substitute(expr, variables, range_secs)
        what = f"panel {title!r} [{ref}]"
        try:
            if instant:
                data = api(base, "/api/v1/query", {"query": query, "time": end})
                result = [(s, [s["value"][1]]) for s in data["result"]]
            else:
                data = api(base, "/api/v1/query_range", {"query": query, "start": start, "end": end, "step": 1})
                result = [(s, [v for _, v in s["values"] if v.lower() != "nan"]) for s in data["result"]]
        except (OSError, RuntimeError, ValueError) as err:
            report(False, what, f"query failed: {err}")
            continue
        with_data = [(s, values) for s, values in result if values]
        if with_data:
            report(True, what, f"{len(with_data)} series, e.g. {describe(*with_data[0])}")
        else:
            report(False, what, f"no data ({len(result)} series, all NaN)" if result else f"no data: {query}")
    total = sum(1 for _ in targets(dashboard)) + len(dashboard.get("templating", {}).get("list", []))
    print(f"{total - failed} of {total} dashboard queries return data")
    return 1 if failed else 0


def alerts():
    groups = json.load(sys.stdin)["data"]["groups"]
    rules_seen = [rule for group in groups for rule in group["rules"]]
    broken = [f"{r['name']}: {r.get('lastError')}" for r in rules_seen if r.get("health") != "ok"]
    firing = sorted({a["labels"]["alertname"] for r in rules_seen for a in r.get("alerts", [])
                     if a.get("state") == "firing"})
    ok = bool(rules_seen) and not broken and "StockInvariantBroken" not in firing
    print(f"{'ok  ' if ok else 'FAIL'} alert rules: {len(rules_seen)} evaluated, "
          f"{len(broken)} with errors {broken}, firing {firing or 'none'}")
    return 0 if ok else 1


def main(argv):
    if len(argv) == 2 and argv[1] == "alerts":
        return alerts()
    if len(argv) == 3 and argv[1] == "rules":
        return rules(argv[2])
    if len(argv) == 6 and argv[1] == "check":
        return check(*argv[2:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
