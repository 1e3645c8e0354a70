#!/usr/bin/env bash
# Backs up FlashMart's database: a point-in-time mongodump of the replica set (--oplog: a full-instance dump plus the
# oplog of its duration) as one archive, gzip-compressed; verified by restoring it into a scratch database
# (MONGO_VERIFY_DATABASE) and comparing every collection's document count with what mongodump reported; uploaded to
# the S3 bucket BACKUP_BUCKET (default `backups`) as <BACKUP_PREFIX>flashmart-<UTC timestamp>.archive.gz, with its
# counts beside it (.counts); then removes backups older than BACKUP_RETENTION_DAYS (the newest is always kept).
# Last, it writes node-exporter textfile metrics (BACKUP_METRICS_DIR/flashmart_backup.prom):
# flashmart_backup_last_success_timestamp_seconds only moves when a backup was verified and stored.
#
# Usable from cron: no prompts, progress lines on stdout, errors on stderr, exit code non-zero on any failure,
# and a second run while one is in progress stops at once (lock file BACKUP_LOCK_FILE).
# Credentials never on a command line: mongodump and mongorestore get --config=MONGO_CONFIG (YAML with uri and
# password, mode 0600, a path where they run; in compose /etc/flashmart-mongo/backup.yaml).
# Environment (see .env.example, "Operator scripts"): MONGO_CONFIG, MONGO_APP_DATABASE, MONGO_VERIFY_DATABASE;
# MINIO_ENDPOINT, MINIO_PORT, MINIO_USE_SSL, MINIO_ACCESS_KEY, MINIO_SECRET_KEY (for the default S3 client);
# BACKUP_BUCKET, BACKUP_PREFIX, BACKUP_RETENTION_DAYS, BACKUP_VERIFY (yes), BACKUP_METRICS_DIR; MONGODUMP_CMD
# (default mongodump), MONGORESTORE_CMD (default mongorestore), S3_CMD (default node dist/scripts/s3.js).
set -euo pipefail
SCRIPT_NAME=backup
# shellcheck source=scripts/lib/backup-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/backup-common.sh"

BACKUP_VERIFY=${BACKUP_VERIFY:-yes}
BACKUP_METRICS_DIR=${BACKUP_METRICS_DIR-/var/lib/node_exporter/textfile_collector}
[[ $BACKUP_RETENTION_DAYS =~ ^[0-9]+$ ]] || die "BACKUP_RETENTION_DAYS must be a number of days"
check_config "$MONGO_CONFIG"

exec 9>"${BACKUP_LOCK_FILE:-${TMPDIR:-/tmp}/flashmart-backup.lock}"
flock -n 9 || die "another backup is running"

started=$(date -u +%s)
size=0
ok=no
ran=no
work=$(mktemp -d)

# Metrics for node-exporter's textfile collector, written atomically (a temp file renamed). A failed run keeps the
# last success's timestamp and size, so the age of the last good backup stays right.
write_metrics() {
	[ -n "$BACKUP_METRICS_DIR" ] || return 0
	local file="$BACKUP_METRICS_DIR/flashmart_backup.prom" last_ts=0 last_size=0 now
	now=$(date -u +%s)
	if [ "$ok" = yes ]; then
		last_ts=$now
		last_size=$size
	elif [ -r "$file" ]; then
		last_ts=$(awk '$1 == "flashmart_backup_last_success_timestamp_seconds" { print $2 }' "$file")
		last_size=$(awk '$1 == "flashmart_backup_last_size_bytes" { print $2 }' "$file")
	fi
	{
		echo "# HELP flashmart_backup_last_success_timestamp_seconds When the last verified backup was stored."
		echo "# TYPE flashmart_backup_last_success_timestamp_seconds gauge"
		[ "${last_ts:-0}" = 0 ] || echo "flashmart_backup_last_success_timestamp_seconds $last_ts"
		echo "# HELP flashmart_backup_last_size_bytes Compressed size of the last verified backup."
		echo "# TYPE flashmart_backup_last_size_bytes gauge"
		echo "flashmart_backup_last_size_bytes ${last_size:-0}"
		echo "# HELP flashmart_backup_last_run_success Whether the last backup run succeeded (1) or failed (0)."
		echo "# TYPE flashmart_backup_last_run_success gauge"
		echo "flashmart_backup_last_run_success $([ "$ran" = yes ] && echo 1 || echo 0)"
		echo "# HELP flashmart_backup_last_run_timestamp_seconds When the last backup run ended."
		echo "# TYPE flashmart_backup_last_run_timestamp_seconds gauge"
		echo "flashmart_backup_last_run_timestamp_seconds $now"
		echo "# HELP flashmart_backup_last_run_duration_seconds How long the last backup run took."
		echo "# TYPE flashmart_backup_last_run_duration_seconds gauge"
		echo "flashmart_backup_last_run_duration_seconds $((now - started))"
	} >"$work/metrics.prom" 2>/dev/null &&
		mkdir -p "$BACKUP_METRICS_DIR" 2>/dev/null &&
		cp "$work/metrics.prom" "$file.tmp" 2>/dev/null && mv "$file.tmp" "$file" ||
		printf '%s [backup] warning: could not write %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$file" >&2
}
finish() {
	write_metrics
	rm -rf "$work"
}
trap finish EXIT

read -r -a DUMP <<<"$MONGODUMP_CMD"
archive="$work/dump.archive.gz"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
key="${BACKUP_PREFIX}${BACKUP_NAME}-${stamp}.archive.gz"

log "dumping the database with ${DUMP[0]} (--oplog: point in time)"
# pipefail: a failing dump fails the pipeline even though gzip succeeds. mongodump's progress goes to a log, shown
# when it fails; its "done dumping" lines are the counts the verification compares.
if ! "${DUMP[@]}" --config="$MONGO_CONFIG" --oplog --archive 2>"$work/dump.log" | gzip -c >"$archive"; then
	sed 's/^/  /' "$work/dump.log" >&2
	die "the dump failed"
fi
gzip -t "$archive" || die "the compressed dump is corrupt"
size=$(wc -c <"$archive" | tr -d ' ')
[ "$size" -gt 20 ] || die "the dump is empty"
dump_counts "$work/dump.log" >"$work/counts"
[ -s "$work/counts" ] || die "the dump has no collection of $MONGO_APP_DATABASE"
log "dump done: $(human_size "$size") compressed, $(wc -l <"$work/counts" | tr -d ' ') collection(s) of $MONGO_APP_DATABASE"

if [ "$BACKUP_VERIFY" = yes ]; then
	verify_archive "$archive" "$work/counts" "$work/verify.log"
else
	log "not verified (BACKUP_VERIFY=$BACKUP_VERIFY): the last-success metric is not updated"
fi

log "uploading to $BACKUP_BUCKET/$key"
"${S3[@]}" put "$BACKUP_BUCKET" "$key" "$size" <"$archive" || die "the upload failed"
counts_size=$(wc -c <"$work/counts" | tr -d ' ')
"${S3[@]}" put "$BACKUP_BUCKET" "$(counts_key "$key")" "$counts_size" <"$work/counts" ||
	die "the upload of the counts failed"
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
		# Backups made before verification existed have no counts: removing nothing is fine.
		"${S3[@]}" rm "$BACKUP_BUCKET" "$(counts_key "$old")" >/dev/null 2>&1 || true
		log "removed $old (older than $BACKUP_RETENTION_DAYS days)"
		removed=$((removed + 1))
	fi
done
log "retention: kept $((${#backups[@]} - removed)) backup(s), removed $removed"
ran=yes
[ "$BACKUP_VERIFY" != yes ] || ok=yes
log "done: $BACKUP_BUCKET/$key"
