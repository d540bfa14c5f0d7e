#!/usr/bin/env python3
"""Checks that every PromQL expression in Grafana dashboards parses.

Usage: deploy/check-dashboard.py [--promtool PATH] [DASHBOARD.json ...]

Collects every panel target's `expr` (rows and nested panels included) and the
selectors of `label_values(...)`/`query_result(...)` template variables,
replaces Grafana variables ($__rate_interval, $__range, $job, ${name}, ...)
by values that keep the expression valid, writes them as recording rules to a
temporary file and runs `promtool check rules` on it. Also fails when an
expression uses a dashboard variable the dashboard does not define.
Standard library only. Default dashboard: deploy/grafana/dashboards/*.json
next to this script.
"""

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

# Grafana's global variables that stand for durations, and one stand-in each.
DURATION_VARS = {
    "__interval": "1m",
    "__rate_interval": "1m",
    "__range": "1h",
}
# Other global variables and what they expand to.
OTHER_GLOBALS = {
    "__interval_ms": "60000",
    "__range_s": "3600",
    "__range_ms": "3600000",
    "__dashboard": "dashboard",
    "__name": "name",
    "__org": "1",
    "__user": "user",
    "__from": "0",
    "__to": "0",
}
VAR_RE = re.compile(
    r"\$\{(?P<braced>[A-Za-z0-9_]+)(?::[A-Za-z0-9_]+)?\}"  # ${var} or ${var:format}
    r"|\[\[(?P<bracket>[A-Za-z0-9_]+)(?::[A-Za-z0-9_]+)?\]\]"  # [[var]]
    r"|\$(?P<plain>[A-Za-z0-9_]+)"  # $var
)
LABEL_VALUES_RE = re.compile(r"^\s*label_values\((?P<args>.*)\)\s*$", re.S)
QUERY_RESULT_RE = re.compile(r"^\s*query_result\((?P<expr>.*)\)\s*$", re.S)


def walk_panels(panels):
    for panel in panels or []:
        yield panel
        yield from walk_panels(panel.get("panels"))


def collect(dashboard):
    """Returns [(where, expr)] for every PromQL expression in the dashboard."""
    exprs = []
    for panel in walk_panels(dashboard.get("panels")):
        for target in panel.get("targets") or []:
            expr = target.get("expr")
            if isinstance(expr, str) and expr.strip():
                where = "panel %r (id %s) target %s" % (
                    panel.get("title", ""), panel.get("id"), target.get("refId", "?"))
                exprs.append((where, expr))
    for var in (dashboard.get("templating") or {}).get("list") or []:
        if var.get("type") != "query":
            continue
        query = var.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if not isinstance(query, str) or not query.strip():
            continue
        where = "variable %r" % var.get("name")
        m = LABEL_VALUES_RE.match(query)
        if m:
            args = m.group("args")
            # label_values(label) has no selector; label_values(selector, label) has one.
            if "," in args:
                selector = args.rsplit(",", 1)[0]
                exprs.append((where, selector))
            continue
        m = QUERY_RESULT_RE.match(query)
        if m:
            exprs.append((where, m.group("expr")))
            continue
        if re.match(r"^\s*(label_names|metrics)\(", query):
            continue
        exprs.append((where, query))
    return exprs


def substitute(expr, defined):
    """Replaces Grafana variables; returns (expr, [undefined variable names])."""
    undefined = []

    def repl(m):
        name = m.group("braced") or m.group("bracket") or m.group("plain")
        if name in DURATION_VARS:
            return DURATION_VARS[name]
        if name in OTHER_GLOBALS:
            return OTHER_GLOBALS[name]
        if name not in defined:
            undefined.append(name)
        # Dashboard variables are used inside label matchers: any regex works.
        return ".*"

    return VAR_RE.sub(repl, expr), undefined


def rule_name(i):
    return "dashboard_check:expr_%d" % i


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dashboards", nargs="*",
                        default=sorted(glob.glob(os.path.join(here, "grafana", "dashboards", "*.json"))))
    parser.add_argument("--promtool", default=os.environ.get("PROMTOOL", "promtool"))
    args = parser.parse_args()

    promtool = shutil.which(args.promtool)
    if promtool is None:
        print("check-dashboard: promtool not found (%s); install Prometheus' promtool "
              "(Debian: apt-get install prometheus)" % args.promtool, file=sys.stderr)
        return 2
    if not args.dashboards:
        print("check-dashboard: no dashboards given or found", file=sys.stderr)
        return 2

    failed = False
    for path in args.dashboards:
        with open(path, encoding="utf-8") as f:
            dashboard = json.load(f)
        defined = {v.get("name") for v in (dashboard.get("templating") or {}).get("list") or []}
        exprs = collect(dashboard)
        if not exprs:
            print("%s: no expressions found" % path, file=sys.stderr)
            failed = True
            continue
        where_of = {}
        lines = ["groups:", "  - name: dashboard_check", "    rules:"]
        for i, (where, expr) in enumerate(exprs, 1):
            expr, undefined = substitute(expr, defined)
            for name in undefined:
                print("%s: %s uses undefined variable $%s" % (path, where, name), file=sys.stderr)
                failed = True
            where_of[rule_name(i)] = where
            lines.append("      - record: %s" % rule_name(i))
            # JSON strings are valid YAML double-quoted scalars.
            lines.append("        expr: %s" % json.dumps(expr))
        with tempfile.NamedTemporaryFile("w", suffix=".rules.yml", delete=False) as tmp:
            tmp.write("\n".join(lines) + "\n")
            rules_file = tmp.name
        try:
            proc = subprocess.run([promtool, "check", "rules", rules_file],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        finally:
            os.unlink(rules_file)
        if proc.returncode != 0:
            failed = True
            out = proc.stdout
            for name, where in where_of.items():
                out = re.sub(r"\b%s\b" % re.escape(name), "%s [%s]" % (name, where), out)
            print("%s: promtool rejects expressions:\n%s" % (path, out), file=sys.stderr)
        else:
            print("%s: %d expressions parse" % (path, len(exprs)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
