#!/bin/bash
# One-shot job (compose service elasticsearch-setup), as the `elastic` superuser. Idempotent: every call is an
# upsert, so it runs at every `docker compose up` and applies rotated passwords and a changed retention.
#   - the passwords of the built-in users Kibana (kibana_system) and the exporter (remote_monitoring_user) log in with;
#   - the ILM policy flashmart-logs: each daily index logs-flashmart-YYYY.MM.DD is deleted ES_LOGS_RETENTION_DAYS
#     (default 30) days after its creation (no rollover: the index name already changes every day);
#   - the index template logs-flashmart (logs-template.json: the shipper's mappings, the ILM policy, one shard, no
#     replica on a single node). Installed here, because the log shipper's user may not manage templates;
#   - the log-shipping user ES_LOGS_USER, Grafana's reader ES_LOGS_READER_USER and Jaeger's ES_TRACES_USER, each with
#     one role (below).
#
# Privileges, by the calls each user makes, and no more (Elasticsearch 8 privilege names):
#   flashmart_logs_writer (the nodes' shipper: POST /_bulk with `index` actions without _id, into the day's index)
#     indices logs-flashmart-*: create_doc      index new documents (ids generated: authorised as op_type create);
#                                                no update or overwrite of an existing document
#                               auto_configure  auto-create the day's index on its first _bulk, and update its
#                                                mapping for dynamic fields
#     no cluster privilege: the shipper's PUT _index_template (needs manage_index_templates) is refused with 403,
#     which it logs once and ships on; the template is this job's.
#   flashmart_logs_reader (Grafana's Elasticsearch datasource: _msearch, _mapping, _field_caps)
#     indices logs-flashmart-*: read, view_index_metadata
#   flashmart_traces (Jaeger v2's Elasticsearch storage, docker/jaeger/config.yaml: pings for the version, installs its
#   index templates at start, bulk-writes spans and services into daily indices, searches them for queries)
#     cluster: monitor, manage_index_templates
#     indices flashmart-jaeger-*: create_index, write, read, view_index_metadata
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
retention=${ES_LOGS_RETENTION_DAYS:-30}
[[ $retention =~ ^[1-9][0-9]*$ ]] || {
	echo "elasticsearch-setup: ES_LOGS_RETENTION_DAYS must be a number of days" >&2
	exit 1
}

# The password goes to curl on stdin (-K -), so it is never on a command line.
es() {
	local method=$1 path=$2 body=$3
	local pw=${ELASTIC_PASSWORD//\\/\\\\}
	curl -fsS -K - -H 'Content-Type: application/json' \
		-X "$method" "$ELASTICSEARCH_URL$path" --data-binary "$body" >/dev/null <<<"user = \"elastic:${pw//\"/\\\"}\""
}
# JSON string of a value (bash only: the image has no jq).
json() {
	local s=${1//\\/\\\\}
	s=${s//\"/\\\"}
	printf '"%s"' "$s"
}

es POST /_security/user/kibana_system/_password "{\"password\": $(json "$KIBANA_SYSTEM_PASSWORD")}"
es POST /_security/user/remote_monitoring_user/_password "{\"password\": $(json "$ES_MONITORING_PASSWORD")}"

es PUT /_ilm/policy/flashmart-logs "{
	\"policy\": {
		\"_meta\": {\"description\": \"FlashMart daily log indices: deleted after $retention days (docker/elasticsearch/setup.sh)\"},
		\"phases\": {
			\"hot\": {\"min_age\": \"0ms\", \"actions\": {\"set_priority\": {\"priority\": 100}}},
			\"delete\": {\"min_age\": \"${retention}d\", \"actions\": {\"delete\": {}}}
		}
	}
}"
es PUT /_index_template/logs-flashmart "@$here/logs-template.json"

es PUT /_security/role/flashmart_logs_writer '{
	"cluster": [],
	"indices": [{ "names": ["logs-flashmart-*"], "privileges": ["create_doc", "auto_configure"] }]
}'
es PUT /_security/role/flashmart_logs_reader '{
	"cluster": [],
	"indices": [{ "names": ["logs-flashmart-*"], "privileges": ["read", "view_index_metadata"] }]
}'
es PUT /_security/role/flashmart_traces '{
	"cluster": ["monitor", "manage_index_templates"],
	"indices": [
		{ "names": ["flashmart-jaeger-*"], "privileges": ["create_index", "write", "read", "view_index_metadata"] }
	]
}'
es PUT "/_security/user/$ES_LOGS_USER" "{\"password\": $(json "$ES_LOGS_PASSWORD"), \"roles\": [\"flashmart_logs_writer\"]}"
es PUT "/_security/user/$ES_LOGS_READER_USER" "{\"password\": $(json "$ES_LOGS_READER_PASSWORD"), \"roles\": [\"flashmart_logs_reader\"]}"
es PUT "/_security/user/$ES_TRACES_USER" "{\"password\": $(json "$ES_TRACES_PASSWORD"), \"roles\": [\"flashmart_traces\"]}"
echo "elasticsearch-setup: users, ILM policy flashmart-logs (${retention}d) and template logs-flashmart are ready"
