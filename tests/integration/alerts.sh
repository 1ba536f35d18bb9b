#!/bin/sh
# SPDX-License-Identifier: MIT
# contrib/prometheus/certd-alerts.yml: well formed (groups of rules, each
# with alert, expr, a severity and a summary), every metric its rules name
# is one a running certd serves on GET /metrics, and, where promtool is
# installed (Debian: prometheus, too big to be a test dependency), `promtool
# check rules` passes and `promtool test rules` sees each alert fire on
# made-up series.
. "$(dirname "$0")/lib.sh"

RULES="$CERTD_SRCDIR/contrib/prometheus/certd-alerts.yml"
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3	# Debian's, with python3-yaml
if ! "$PY" -c 'import yaml' 2>/dev/null; then
	not_ok "python3 with yaml needed (python3-yaml; contrib/dev.sh deps installs it)"
	finish
fi

D="$T/data"; mkdir -p -m 700 "$D"
TOKEN=$(new_token admin '*' write "$D/tokens")
start_certd "$D"
body "$T/c" alias=www certificate=@"$PKI/leaf-ec.pem" private_key=@"$PKI/leaf-ec.key" \
    certificate_type=server
req POST /openapi/v1/teams/web/certificates "$T/c"; expect 200 "a certificate, for its gauges"
req GET /metrics; expect 200 "metrics"
cp "$T/out" "$T/metrics"

# The structure, and the metric names of the expressions: identifiers that
# are not PromQL keywords, functions, label names or label values.
"$PY" - "$RULES" "$T/metrics" > "$T/check" 2>&1 <<'PY' || true
import re, sys, yaml

rules_path, metrics_path = sys.argv[1], sys.argv[2]
served = set()
for line in open(metrics_path):
    m = re.match(r'# TYPE (\S+) ', line) or re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]', line)
    if m:
        served.add(m.group(1))
keywords = {"and", "or", "unless", "by", "without", "on", "ignoring",
            "group_left", "group_right", "bool", "offset", "inf", "nan"}
doc = yaml.safe_load(open(rules_path))
problems, names, used = [], set(), set()
if not isinstance(doc, dict) or set(doc) != {"groups"} or not isinstance(doc["groups"], list):
    problems.append("top level must be {groups: [...]}")
    doc = {"groups": []}
for g in doc["groups"]:
    if not isinstance(g, dict) or not isinstance(g.get("name"), str) or \
            not isinstance(g.get("rules"), list) or not g["rules"]:
        problems.append("group without a name or rules: %r" % (g,))
        continue
    for r in g["rules"]:
        a = r.get("alert")
        if not isinstance(a, str) or not re.fullmatch(r"[A-Z][A-Za-z0-9]*", a) or a in names:
            problems.append("bad or repeated alert name: %r" % (a,))
        names.add(a)
        extra = set(r) - {"alert", "expr", "for", "labels", "annotations"}
        if extra:
            problems.append("%s: unknown keys %s" % (a, sorted(extra)))
        if "for" in r and not re.fullmatch(r"[0-9]+[smhd]", str(r["for"])):
            problems.append("%s: bad for: %r" % (a, r["for"]))
        if r.get("labels", {}).get("severity") not in ("warning", "critical"):
            problems.append("%s: severity must be warning or critical" % a)
        if not r.get("annotations", {}).get("summary"):
            problems.append("%s: no summary" % a)
        expr = r.get("expr")
        if not isinstance(expr, str) or not expr.strip():
            problems.append("%s: no expr" % a)
            continue
        bare = re.sub(r'"[^"]*"', "", expr)             # label values
        bare = re.sub(r"\{[^}]*\}", "", bare)            # matchers
        bare = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", bare)
        for tok in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*(?:\s*\()?", bare):
            if tok.endswith("(") or tok.lower() in keywords:
                continue                                 # a function or keyword
            used.add(tok)
            if tok not in served:
                problems.append("%s: metric %s is not in certd's /metrics" % (a, tok))
for p in problems:
    print("problem:", p)
print("alerts:", " ".join(sorted(names)))
print("metrics:", " ".join(sorted(used)))
PY
if grep -q '^problem:' "$T/check" || ! grep -q '^alerts:' "$T/check"; then
	not_ok "certd-alerts.yml: $(grep -v '^alerts:\|^metrics:' "$T/check" | head -n 10)"
else
	ok "well formed: $(sed -n 's/^alerts: //p' "$T/check")"
	ok "every metric named is served by certd: $(sed -n 's/^metrics: //p' "$T/check")"
fi
for a in CertdCertificateExpiringSoon CertdCertificateExpired CertdSyncFailed \
    CertdStoreUnavailable; do
	sed -n 's/^alerts: //p' "$T/check" | tr ' ' '\n' | grep -qx "$a" ||
	    not_ok "no alert $a"
done

PROMTOOL=$(command -v promtool || true)
if [ -z "$PROMTOOL" ]; then
	ok "promtool check rules # SKIP promtool not installed (Debian: prometheus)"
	ok "promtool test rules # SKIP promtool not installed"
else
	"$PROMTOOL" check rules "$RULES" > "$T/pt" 2>&1 &&
	    ok "promtool check rules: $(grep -o 'SUCCESS.*' "$T/pt")" ||
	    not_ok "promtool check rules: $(cat "$T/pt")"
	# Each alert fires on series shaped as certd serves them.
	cat > "$T/alerts.test.yml" <<EOF
rule_files: ["$RULES"]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'certd_certificate_expiry_seconds{instance="h:7070",job="certd",team="web",id="1",alias="www"}'
        values: '2592000 500000 -60'
      - series: 'certd_subscribers_failed{instance="h:7070",job="certd"}'
        values: '0 1 1 1 1 1 1 1'
      - series: 'certd_store_writable{instance="h:7070",job="certd"}'
        values: '1 0 0 0'
    alert_rule_test:
      - {eval_time: 0m, alertname: CertdCertificateExpiringSoon, exp_alerts: []}
      - eval_time: 1m
        alertname: CertdCertificateExpiringSoon
        exp_alerts:
          - exp_labels: {severity: warning, instance: "h:7070", job: certd, team: web, id: "1", alias: www}
            exp_annotations:
              summary: "certificate web/www (id 1) on h:7070 expires in 5d 18h 53m 20s"
              description: "Renew it: PUT the new certificate and key (or certctl put --id). certd also sent an expiring event to its watchers and logged a warning."
      - {eval_time: 1m, alertname: CertdCertificateExpired, exp_alerts: []}
      - eval_time: 2m
        alertname: CertdCertificateExpired
        exp_alerts:
          - exp_labels: {severity: critical, instance: "h:7070", job: certd, team: web, id: "1", alias: www}
            exp_annotations:
              summary: "certificate web/www (id 1) on h:7070 has expired"
              description: "Servers fed from it present an expired certificate. Upload a valid one; certd refuses to store expired certificates, so this one expired while stored."
      - {eval_time: 5m, alertname: CertdSyncFailed, exp_alerts: []}
      - eval_time: 7m
        alertname: CertdSyncFailed
        exp_alerts:
          - exp_labels: {severity: critical, instance: "h:7070", job: certd}
            exp_annotations:
              summary: "1 subscriber(s) of certd on h:7070 failed to apply a certificate"
              description: "A subscriber (certctl sync) acked its last revision as failed: the server may still present the old certificate. GET /openapi/v1/teams/TEAM/certificates/ID/subscribers (or certctl subscribers TEAM ID) shows which one and why."
      - eval_time: 3m
        alertname: CertdStoreUnavailable
        exp_alerts:
          - exp_labels: {severity: critical, instance: "h:7070", job: certd}
            exp_annotations:
              summary: "certd on h:7070 cannot write its store"
              description: "Writes answer 503 storage unavailable (a full disk, or an I/O error: see certd's log). Reads and pushes go on; certd retries by itself once there is room, and after an I/O error while syncing it needs a restart."
EOF
	"$PROMTOOL" test rules "$T/alerts.test.yml" > "$T/ptt" 2>&1 &&
	    ok "promtool test rules: each alert fires when it should" ||
	    not_ok "promtool test rules: $(cat "$T/ptt")"
fi
stop_certd TERM && ok "SIGTERM exits 0" || not_ok "SIGTERM exits 0"
finish
