#!/usr/bin/env bash
# Makes sure the system tools the tests run for real are installed: nats-server (JetStream); Prometheus, promtool,
# Alertmanager and amtool for the monitoring tests; shellcheck and curl for the monitoring scripts.
# Installs what is missing with apt-get when running as root; otherwise stops with a message naming the tool.
set -euo pipefail

declare -A PACKAGE_OF=(
	[nats-server]=nats-server
	[prometheus]=prometheus
	[promtool]=prometheus
	[prometheus-alertmanager]=prometheus-alertmanager
	[amtool]=prometheus-alertmanager
	[shellcheck]=shellcheck
	[curl]=curl
)

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

missing=()
for tool in "${!PACKAGE_OF[@]}"; do
	have "$tool" || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "The tests need: ${missing[*]}. Install them (Debian: apt-get install ${missing[*]/#/}) and run again." >&2
	exit 1
fi

packages=()
for tool in "${missing[@]}"; do
	# One package can bring several tools (prometheus: prometheus and promtool): install it once.
	[[ " ${packages[*]} " == *" ${PACKAGE_OF[$tool]} "* ]] || packages+=("${PACKAGE_OF[$tool]}")
done
echo "Installing test tools: ${packages[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null

for tool in "${missing[@]}"; do
	have "$tool" || { echo "$tool is still missing after installing ${PACKAGE_OF[$tool]}" >&2; exit 1; }
done
