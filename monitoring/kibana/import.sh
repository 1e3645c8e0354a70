#!/bin/sh
# Imports FlashMart's Kibana saved objects (the `logs-*` data view, saved searches, the logs dashboard) through
# Kibana's saved objects import API. Idempotent: objects keep fixed ids and are imported with overwrite=true, so a
# second run replaces them with the same content. Runs as the compose job `kibana-setup` (any image with sh and
# curl) or by hand. Waits for Kibana to be available first.
#
#   KIBANA_URL             default http://kibana:5601
#   KIBANA_USERNAME        with KIBANA_PASSWORD: basic auth (e.g. elastic), when Elasticsearch security is on
#   KIBANA_PASSWORD
#   KIBANA_SAVED_OBJECTS   default: saved-objects.ndjson next to this script
#   KIBANA_WAIT_SECONDS    how long to wait for Kibana, default 300
set -eu

url="${KIBANA_URL:-http://kibana:5601}"
url="${url%/}"
objects="${KIBANA_SAVED_OBJECTS:-$(dirname "$0")/saved-objects.ndjson}"
wait_seconds="${KIBANA_WAIT_SECONDS:-300}"

[ -r "$objects" ] || {
	echo "kibana import: cannot read $objects" >&2
	exit 1
}
if [ -n "${KIBANA_USERNAME:-}" ] && [ -z "${KIBANA_PASSWORD:-}" ]; then
	echo "kibana import: KIBANA_USERNAME is set but KIBANA_PASSWORD is not" >&2
	exit 1
fi

# curl with the credentials given on stdin as a config file, so the password never shows in the process list.
kibana_curl() {
	if [ -n "${KIBANA_USERNAME:-}" ]; then
		# Inside a quoted curl config value, backslashes and double quotes are escaped with a backslash.
		printf 'user = "%s"\n' "$(printf '%s:%s' "$KIBANA_USERNAME" "$KIBANA_PASSWORD" | sed 's/[\\"]/\\&/g')" |
			curl --config - "$@"
	else
		curl "$@" </dev/null
	fi
}

deadline=$(($(date +%s) + wait_seconds))
until [ "$(kibana_curl -s -o /dev/null -w '%{http_code}' "$url/api/status" || true)" = "200" ]; do
	if [ "$(date +%s)" -ge "$deadline" ]; then
		echo "kibana import: $url/api/status did not answer 200 within ${wait_seconds}s" >&2
		exit 1
	fi
	sleep 2
done

response="$(kibana_curl -sS -X POST "$url/api/saved_objects/_import?overwrite=true" \
	-H "kbn-xsrf: flashmart-kibana-import" --form "file=@$objects")"

case "$response" in
	*'"success":true'*)
		echo "kibana import: imported $(grep -c . "$objects") saved objects into $url: $response"
		;;
	*)
		echo "kibana import: Kibana refused the saved objects: $response" >&2
		exit 1
		;;
esac
