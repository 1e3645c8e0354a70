# Shared by backup.sh and restore.sh (sourced): settings, logging, the S3 client, and the backup naming scheme.
# Backups are objects <BACKUP_BUCKET>/<BACKUP_PREFIX><BACKUP_NAME>-<YYYYMMDDTHHMMSSZ>.archive.gz (UTC): the name
# alone orders them and dates them, so retention and "latest" need no object metadata.
# shellcheck shell=bash

BACKUP_BUCKET=${BACKUP_BUCKET:-backups}
BACKUP_PREFIX=${BACKUP_PREFIX-mongodb/}
BACKUP_NAME=${BACKUP_NAME:-flashmart}
BACKUP_RETENTION_DAYS=${BACKUP_RETENTION_DAYS:-14}
MONGODUMP_CMD=${MONGODUMP_CMD:-mongodump}
MONGORESTORE_CMD=${MONGORESTORE_CMD:-mongorestore}
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
S3_CMD=${S3_CMD:-node $REPO_ROOT/dist/scripts/s3.js}

# Commands are words split on spaces, so they may carry arguments: "docker compose exec -T mongodb mongodump".
read -r -a S3 <<<"$S3_CMD"

log() { printf '%s [%s] %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${SCRIPT_NAME:-backup}" "$*"; }
die() {
	log "error: $*" >&2
	exit 1
}
require() {
	local name
	for name in "$@"; do
		[ -n "${!name:-}" ] || die "$name is not set"
	done
}
human_size() { numfmt --to=iec-i --suffix=B "$1" 2>/dev/null || printf '%s bytes' "$1"; }

# Backup objects under the prefix, one key per line, oldest first (other objects under the prefix are ignored).
list_backups() {
	local listing
	listing=$("${S3[@]}" ls "$BACKUP_BUCKET" "$BACKUP_PREFIX") || return 1
	printf '%s\n' "$listing" | cut -f1 |
		grep -E "^${BACKUP_PREFIX}${BACKUP_NAME}-[0-9]{8}T[0-9]{6}Z\\.archive\\.gz\$" | sort || true
}

# The UTC timestamp in a backup's key.
backup_stamp() {
	local key=${1##*/}
	key=${key#"$BACKUP_NAME"-}
	printf '%s' "${key%.archive.gz}"
}
