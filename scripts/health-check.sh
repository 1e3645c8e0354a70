#!/usr/bin/env bash
# Checks every part of the FlashMart stack and prints a table; exits 1 when any part is down, 0 when all are up.
# Usable from cron or a monitoring agent: no prompts, one line per component, the exit code says it all.
#
#   scripts/health-check.sh            (defaults: the ports docker compose publishes on 127.0.0.1)
#
# The data stores publish nothing in compose (docs/operations.md): without HEALTH_ELASTICSEARCH_URL, HEALTH_MINIO_URL,
# HEALTH_NATS_URL or HEALTH_MONGODB_EXPORTER_URL, that component is checked through Prometheus' last scrape of it
# (elasticsearch_cluster_health_status, up{job="minio"}, gnatsd_varz_connections, mongodb_up).
#
# Where each part is: HEALTH_GATEWAY_URL, HEALTH_PROMETHEUS_URL, HEALTH_GRAFANA_URL, HEALTH_ALERTMANAGER_URL,
# HEALTH_ELASTICSEARCH_URL, HEALTH_KIBANA_URL, HEALTH_MINIO_URL, HEALTH_NATS_URL (monitoring port),
# HEALTH_MONGODB_EXPORTER_URL (MongoDB is checked through mongodb-exporter's mongodb_up, which logs in with its own
# user). With ELASTIC_PASSWORD set, Elasticsearch and Kibana are checked as the `elastic` user (cluster status,
# Kibana's overall status); without it, only that they answer. HEALTH_TIMEOUT: seconds per check (default 5).
set -uo pipefail

GATEWAY=${HEALTH_GATEWAY_URL:-http://127.0.0.1:5921}
PROMETHEUS=${HEALTH_PROMETHEUS_URL:-http://127.0.0.1:9090}
GRAFANA=${HEALTH_GRAFANA_URL:-http://127.0.0.1:3000}
ALERTMANAGER=${HEALTH_ALERTMANAGER_URL:-http://127.0.0.1:9093}
ELASTICSEARCH=${HEALTH_ELASTICSEARCH_URL:-}
KIBANA=${HEALTH_KIBANA_URL:-http://127.0.0.1:5601}
MINIO=${HEALTH_MINIO_URL:-}
NATS=${HEALTH_NATS_URL:-}
MONGODB_EXPORTER=${HEALTH_MONGODB_EXPORTER_URL:-}
TIMEOUT=${HEALTH_TIMEOUT:-5}

command -v curl >/dev/null 2>&1 || {
	echo "health-check: curl is required" >&2
	exit 2
}

# GET a URL: sets STATUS (HTTP code, 000 when nothing answered) and BODY. With a second argument "elastic", logs in
# as elastic with ELASTIC_PASSWORD, given to curl on stdin so that it never shows in the process list.
STATUS=000
BODY=
fetch() {
	local url=$1 login=${2:-} out config=
	if [ "$login" = elastic ]; then
		local pw=${ELASTIC_PASSWORD//\\/\\\\}
		config="user = \"elastic:${pw//\"/\\\"}\""
	fi
	out=$(curl -sS -m "$TIMEOUT" -w '\n%{http_code}' -K - "$url" <<<"$config" 2>/dev/null) || true
	STATUS=${out##*$'\n'}
	[[ $STATUS =~ ^[0-9]{3}$ ]] || STATUS=000
	BODY=${out%$'\n'*}
	[ "$BODY" != "$out" ] || BODY=
}
login=
[ -z "${ELASTIC_PASSWORD:-}" ] || login=elastic
# The value of a PromQL query's first sample (empty when there is none), from Prometheus' HTTP API.
prom_value() {
	local out
	out=$(curl -sS -m "$TIMEOUT" -G --data-urlencode "query=$1" "$PROMETHEUS/api/v1/query" 2>/dev/null) || true
	sed -n 's/.*"value":\[[^,]*,"\([^"]*\)"\].*/\1/p' <<<"$out" | head -n1
}
# A check through Prometheus: up when the query's value is 1.
prom_check() {
	local name=$1 query=$2 value
	value=$(prom_value "$query")
	if [ "$value" = 1 ]; then row "$name" UP "via Prometheus: $query"; else row "$name" DOWN "via Prometheus: $query -> ${value:-no data}"; fi
}
# The value of a top-level string field of a JSON body ("status": "green" -> green), without jq.
json_field() { sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\\([^\"]*\\)\".*/\\1/p" <<<"$BODY" | head -n1; }

ROWS=()
FAILED=0
row() {
	ROWS+=("$1|$2|$3")
	[ "$2" = UP ] || FAILED=$((FAILED + 1))
}
# A check whose answer is up when the HTTP status is the one expected.
expect_status() {
	local name=$1 url=$2 want=$3
	shift 3
	fetch "$url" "$@"
	if [ "$STATUS" = "$want" ]; then row "$name" UP "$url -> $STATUS"; else row "$name" DOWN "$url -> $STATUS"; fi
}

expect_status "gateway /health" "$GATEWAY/health" 200
expect_status "gateway /api/health" "$GATEWAY/api/health" 200
expect_status "prometheus" "$PROMETHEUS/-/healthy" 200
expect_status "alertmanager" "$ALERTMANAGER/-/healthy" 200

fetch "$GRAFANA/api/health"
if [ "$STATUS" = 200 ] && [ "$(json_field database)" = ok ]; then
	row grafana UP "database ok"
else
	row grafana DOWN "$GRAFANA/api/health -> $STATUS $(json_field database)"
fi

if [ -z "$ELASTICSEARCH" ]; then
	prom_check elasticsearch 'max(elasticsearch_cluster_health_status{color=~"green|yellow"})'
else
fetch "$ELASTICSEARCH/_cluster/health" "$login"
es_status=$(json_field status)
if [ "$STATUS" = 200 ] && { [ "$es_status" = green ] || [ "$es_status" = yellow ]; }; then
	row elasticsearch UP "cluster $es_status"
elif [ "$STATUS" = 401 ] && [ -z "$login" ]; then
	row elasticsearch UP "answers (set ELASTIC_PASSWORD for the cluster status)"
else
	row elasticsearch DOWN "$ELASTICSEARCH -> $STATUS ${es_status:-}"
fi
fi

if [ -n "$login" ]; then
	fetch "$KIBANA/api/status" "$login"
	# Kibana 8: {"status": {"overall": {"level": "available", ...}}}
	level=$(sed -n 's/.*"overall"[[:space:]]*:[[:space:]]*{[^}]*"level"[[:space:]]*:[[:space:]]*"\([a-z_]*\)".*/\1/p' <<<"$BODY" | head -n1)
	if [ "$STATUS" = 200 ] && [ "$level" = available ]; then
		row kibana UP "available"
	else
		row kibana DOWN "$KIBANA/api/status -> $STATUS ${level:-}"
	fi
else
	# Security on: an anonymous request is sent to the login page once Kibana is up.
	fetch "$KIBANA/"
	case $STATUS in
	200 | 302) row kibana UP "answers $STATUS (set ELASTIC_PASSWORD for its status)" ;;
	*) row kibana DOWN "$KIBANA -> $STATUS" ;;
	esac
fi

if [ -z "$MINIO" ]; then
	prom_check minio 'max(up{job="minio"})'
else
	expect_status "minio" "$MINIO/minio/health/live" 200
fi
if [ -z "$NATS" ]; then
	prom_check "nats (jetstream)" 'min(up{job="nats"}) * (count(gnatsd_varz_connections{job="nats"}) > bool 0)'
else
	expect_status "nats (jetstream)" "$NATS/healthz?js-enabled-only=true" 200
fi

if [ -z "$MONGODB_EXPORTER" ]; then
	prom_check mongodb 'max(mongodb_up)'
else
fetch "$MONGODB_EXPORTER/metrics"
if [ "$STATUS" = 200 ] && grep -Eq '^mongodb_up(\{[^}]*\})? 1$' <<<"$BODY"; then
	row mongodb UP "mongodb_up 1 (via mongodb-exporter)"
elif [ "$STATUS" = 200 ]; then
	row mongodb DOWN "mongodb-exporter cannot reach MongoDB (mongodb_up is not 1)"
else
	row mongodb DOWN "mongodb-exporter $MONGODB_EXPORTER -> $STATUS"
fi
fi

printf '%-22s %-6s %s\n' COMPONENT STATUS DETAIL
for r in "${ROWS[@]}"; do
	IFS='|' read -r name state detail <<<"$r"
	printf '%-22s %-6s %s\n' "$name" "$state" "$detail"
done
if [ "$FAILED" -gt 0 ]; then
	printf '%d of %d checks failed\n' "$FAILED" "${#ROWS[@]}" >&2
	exit 1
fi
printf 'all %d checks passed\n' "${#ROWS[@]}"
