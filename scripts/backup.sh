#!/usr/bin/env bash
# Backs up FlashMart's database: mongodump of the app database (MONGO_URI) as one archive, gzip-compressed, uploaded
# to the S3 bucket BACKUP_BUCKET (default `backups`) as <BACKUP_PREFIX>flashmart-<UTC timestamp>.archive.gz; then
# removes backups older than BACKUP_RETENTION_DAYS (the newest backup is always kept).
#
# Usable from cron: no prompts, progress lines on stdout, errors on stderr, exit code non-zero on any failure,
# and a second run while one is in progress stops at once (lock file BACKUP_LOCK_FILE).
# Environment (see .env.example, "Operator scripts"): MONGO_URI; MINIO_ENDPOINT, MINIO_PORT, MINIO_USE_SSL,
# MINIO_ACCESS_KEY, MINIO_SECRET_KEY (for the default S3 client); BACKUP_BUCKET, BACKUP_PREFIX,
# BACKUP_RETENTION_DAYS; MONGODUMP_CMD (default mongodump), S3_CMD (default node dist/scripts/s3.js).
set -euo pipefail
SCRIPT_NAME=backup
# shellcheck source=scripts/lib/backup-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/backup-common.sh"

require MONGO_URI
[[ $BACKUP_RETENTION_DAYS =~ ^[0-9]+$ ]] || die "BACKUP_RETENTION_DAYS must be a number of days"

exec 9>"${BACKUP_LOCK_FILE:-${TMPDIR:-/tmp}/flashmart-backup.lock}"
flock -n 9 || die "another backup is running"

read -r -a DUMP <<<"$MONGODUMP_CMD"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
archive="$work/dump.archive.gz"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
key="${BACKUP_PREFIX}${BACKUP_NAME}-${stamp}.archive.gz"

log "dumping the database with ${DUMP[0]}"
# pipefail: a failing dump fails the pipeline even though gzip succeeds.
"${DUMP[@]}" --uri="$MONGO_URI" --archive | gzip -c >"$archive" || die "the dump failed"
gzip -t "$archive" || die "the compressed dump is corrupt"
size=$(wc -c <"$archive" | tr -d ' ')
[ "$size" -gt 20 ] || die "the dump is empty"
log "dump done: $(human_size "$size") compressed"

log "uploading to $BACKUP_BUCKET/$key"
"${S3[@]}" put "$BACKUP_BUCKET" "$key" "$size" <"$archive" || die "the upload failed"
log "uploaded $BACKUP_BUCKET/$key"

# Retention: by the timestamp in the name, so a copied or re-uploaded backup keeps its age.
cutoff=$(date -u -d "@$(($(date -u +%s) - BACKUP_RETENTION_DAYS * 86400))" +%Y%m%dT%H%M%SZ)
listing=$(list_backups) || die "listing $BACKUP_BUCKET failed"
backups=()
[ -z "$listing" ] || mapfile -t backups <<<"$listing"
[ "${#backups[@]}" -gt 0 ] || die "the new backup is not listed in $BACKUP_BUCKET"
newest=${backups[-1]}
removed=0
for old in "${backups[@]}"; do
	[ "$old" != "$newest" ] || continue
	if [[ "$(backup_stamp "$old")" < "$cutoff" ]]; then
		"${S3[@]}" rm "$BACKUP_BUCKET" "$old" || die "removing $old failed"
		log "removed $old (older than $BACKUP_RETENTION_DAYS days)"
		removed=$((removed + 1))
	fi
done
log "retention: kept $((${#backups[@]} - removed)) backup(s), removed $removed"
log "done: $BACKUP_BUCKET/$key"
