#!/bin/sh
# Starts Alertmanager with the webhook URL taken from the environment. Alertmanager (up to 0.25, the one Debian and
# the tests ship) reads no environment variables in its config and has no `url_file` for webhooks, so this renders
# alertmanager.yml with ALERTMANAGER_WEBHOOK_URL in place of its placeholder URL, then execs Alertmanager on the
# result with the remaining arguments. POSIX sh: it runs in the busybox shell of the prom/alertmanager image.
#
#   ALERTMANAGER_WEBHOOK_URL       required: http(s) URL that receives the notifications
#   ALERTMANAGER_CONFIG_TEMPLATE   default /etc/alertmanager/alertmanager.yml
#   ALERTMANAGER_RENDERED_CONFIG   default /tmp/alertmanager.yml
#   ALERTMANAGER_BIN               default alertmanager
set -eu

PLACEHOLDER="http://alertmanager-webhook-url.invalid/"
template="${ALERTMANAGER_CONFIG_TEMPLATE:-/etc/alertmanager/alertmanager.yml}"
rendered="${ALERTMANAGER_RENDERED_CONFIG:-/tmp/alertmanager.yml}"
url="${ALERTMANAGER_WEBHOOK_URL:-}"

case "$url" in
	http://* | https://*) ;;
	*)
		echo "ALERTMANAGER_WEBHOOK_URL must be set to an http(s) URL (got '${url}')" >&2
		exit 1
		;;
esac
# The URL goes inside a double-quoted YAML string: refuse what would end or escape it.
case "$url" in
	*[[:space:]\"\\]*)
		echo "ALERTMANAGER_WEBHOOK_URL must not contain quotes, backslashes or blanks" >&2
		exit 1
		;;
esac

# Plain string replacement (awk's index/substr): no regex or sed metacharacters to escape in the URL.
PLACEHOLDER="$PLACEHOLDER" awk '
	BEGIN { p = ENVIRON["PLACEHOLDER"]; u = ENVIRON["ALERTMANAGER_WEBHOOK_URL"] }
	{
		out = ""; rest = $0
		while ((i = index(rest, p)) > 0) { out = out substr(rest, 1, i - 1) u; rest = substr(rest, i + length(p)) }
		print out rest
	}
' "$template" >"$rendered"

exec "${ALERTMANAGER_BIN:-alertmanager}" --config.file="$rendered" "$@"
