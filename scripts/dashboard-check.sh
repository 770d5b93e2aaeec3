#!/usr/bin/env bash
# Checks the shipped Grafana dashboard: valid JSON, and every PromQL expression in
# it parses (promtool, on a generated rules file: Grafana's $__rate_interval and
# $instance are replaced by values PromQL accepts). That every metric it names is
# one the guardian exports is internal/metrics's TestDashboardMetricsExist.
set -euo pipefail
cd "$(dirname "$0")/.."
dash=packaging/grafana/redis-guardian.json
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$dash" "$tmp/dashboard.rules.yml" <<'PY'
import json, sys
dash = json.load(open(sys.argv[1]))
exprs = []
def walk(panels):
    for p in panels:
        for t in p.get("targets", []):
            exprs.append((p["title"], t["expr"]))
        walk(p.get("panels", []))
walk(dash["panels"])
if not exprs:
    sys.exit("dashboard: no PromQL expressions found")
with open(sys.argv[2], "w") as out:
    out.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, (title, e) in enumerate(exprs):
        e = e.replace("$__rate_interval", "5m").replace("$instance", ".*")
        out.write("      - record: dashboard:expr_%d\n        expr: %s\n" % (i, json.dumps(e)))
print("dashboard: %d panels, %d expressions" % (len(dash["panels"]), len(exprs)))
PY
promtool check rules "$tmp/dashboard.rules.yml"
