#!/bin/bash
# One-shot job (compose service elasticsearch-setup): sets the passwords of the built-in users Kibana
# (kibana_system) and the exporter (remote_monitoring_user) log in with, and creates the application's
# log-shipping user, who may only create and write logs-flashmart-* indices (and read them, for Grafana).
# Idempotent: every call is an upsert, so it runs at every `docker compose up` and applies rotated passwords.
set -euo pipefail

es() {
	local method=$1 path=$2 body=$3
	curl -fsS -u "elastic:$ELASTIC_PASSWORD" -H 'Content-Type: application/json' \
		-X "$method" "$ELASTICSEARCH_URL$path" --data-binary "$body" >/dev/null
}
# JSON string of a value (bash only: the image has no jq).
json() {
	local s=${1//\\/\\\\}
	s=${s//\"/\\\"}
	printf '"%s"' "$s"
}

es POST /_security/user/kibana_system/_password "{\"password\": $(json "$KIBANA_SYSTEM_PASSWORD")}"
es POST /_security/user/remote_monitoring_user/_password "{\"password\": $(json "$ES_MONITORING_PASSWORD")}"
es PUT /_security/role/flashmart_logs_writer '{
	"indices": [{
		"names": ["logs-flashmart-*"],
		"privileges": ["create_index", "create_doc", "index", "auto_configure", "read", "view_index_metadata"]
	}]
}'
es PUT "/_security/user/$ES_LOGS_USER" "{\"password\": $(json "$ES_LOGS_PASSWORD"), \"roles\": [\"flashmart_logs_writer\"]}"
echo "elasticsearch-setup: kibana_system, remote_monitoring_user and $ES_LOGS_USER are ready"
