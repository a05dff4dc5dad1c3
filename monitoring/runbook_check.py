"""Every alert rule of alerts.yml is ready for someone woken by it: severity critical or
warning, a summary, a description, and a runbook_url whose anchor is a heading of
monitoring/README.md (GitHub's anchor: the heading lowercased, spaces as dashes).

    python3 runbook_check.py alerts.yml README.md      (monitoring/check.sh)
"""
import re
import sys

import yaml


def anchors(markdown):
    found = set()
    for line in markdown.splitlines():
        m = re.match(r"#+\s+(.*)", line)
        if m:
            heading = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower())
            found.add(heading.replace(" ", "-"))
    return found


def main(rules_file, readme):
    known = anchors(open(readme).read())
    problems = []
    rules = [r for g in yaml.safe_load(open(rules_file))["groups"] for r in g["rules"] if "alert" in r]
    for rule in rules:
        name, notes = rule["alert"], rule.get("annotations", {})
        if rule.get("labels", {}).get("severity") not in ("critical", "warning"):
            problems.append(f"{name}: severity is not critical or warning")
        for key in ("summary", "description", "runbook_url"):
            if not notes.get(key):
                problems.append(f"{name}: no {key}")
        url = notes.get("runbook_url", "")
        if url and (not url.startswith("monitoring/README.md#") or url.split("#", 1)[1] not in known):
            problems.append(f"{name}: runbook_url {url} is no section of {readme}")
    for problem in problems:
        print(problem)
    print(f"runbooks: {len(rules)} alerts, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
