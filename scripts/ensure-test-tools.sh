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

# kubectl comes with the machine image (Google's kubectl package, kustomize v5 built in). Not installed from Debian:
# bookworm's kubernetes-client is kubectl 1.20, whose kustomize (v2.0.3) refuses deploy/kubernetes at its first
# v3+ field (`patches` with targets, `labels`, `replicas`, `envs`, generator `options`; docs/kubernetes.md lists
# them), and npm has no kustomize: so a message naming the tool and the version found.
check_kubectl() {
	local found="none on PATH" version
	if have kubectl; then
		# Read whole, not piped into grep -q or head: their early exit would fail the pipeline (pipefail).
		version="$(kubectl version --client 2>/dev/null || true)"
		[[ "$version" =~ Kustomize\ Version:\ v[5-9] ]] && return 0
		found="${version%%$'\n'*}"
	fi
	echo "The tests need kubectl 1.27 or later (kustomize v5 built in) on PATH, found: ${found}." >&2
	echo "Debian's kubernetes-client (1.20) is too old for deploy/kubernetes: https://kubernetes.io/docs/tasks/tools/" >&2
	exit 1
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
