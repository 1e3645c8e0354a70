#!/usr/bin/env bash
# Makes sure the system tools the tests run for real are installed: nats-server (JetStream); Prometheus, promtool,
# Alertmanager and amtool for the monitoring tests; shellcheck and curl for the monitoring scripts; jq and git for the
# documented commands (test/e2e/docs-commands.spec.ts); kubectl (its
# built-in kustomize v5) for deploy/kubernetes.
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
	[jq]=jq
	[git]=git
)

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

# kubectl comes with the machine image (Google's kubectl package); Debian's kubernetes-client is 1.20, whose
# kustomize (v2) cannot render deploy/kubernetes, and npm has no kustomize: so no install, a message.
check_kubectl() {
	if ! have kubectl || ! kubectl version --client 2>/dev/null | grep -q "Kustomize Version: v[5-9]"; then
		echo "The tests need kubectl 1.27 or later (kustomize v5 built in) on PATH: https://kubernetes.io/docs/tasks/tools/" >&2
		exit 1
	fi
}

missing=()
for tool in "${!PACKAGE_OF[@]}"; do
	have "$tool" || missing+=("$tool")
done
if [ ${#missing[@]} -eq 0 ]; then
	check_kubectl
	exit 0
fi

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
check_kubectl
