#!/usr/bin/env bash
# Restores FlashMart's database from a backup made by backup.sh: the latest one, or the one named.
#
#   scripts/restore.sh --list                 the backups, oldest first
#   scripts/restore.sh --verify [<name>]      restore the latest backup (or that one) into the scratch database
#                                             MONGO_VERIFY_DATABASE and compare its collection counts with the dump's
#   scripts/restore.sh --yes                  restore the latest backup
#   scripts/restore.sh --yes <name>           restore that backup (its key or its file name)
#
# Restoring replaces the app database's collections in the backup (mongorestore --drop, --nsInclude of
# MONGO_APP_DATABASE only) and replays the oplog the dump captured (--oplogReplay: the point in time at the dump's
# end). Without --yes (or RESTORE_CONFIRM=yes, for cron) it only says what it would restore and exits with code 2.
# --verify never touches the app database and needs no confirmation. Stop the application nodes first
# (docker compose stop gateway users catalog commerce payments) so nothing writes during the restore.
# Environment: as backup.sh; the restore logs in with MONGO_RESTORE_CONFIG (default MONGO_CONFIG; in compose
# /etc/flashmart-mongo/restore.yaml, root: replaying an oplog needs more than the `restore` role), --verify with
# MONGO_CONFIG (the backup user).
set -euo pipefail
SCRIPT_NAME=restore
# shellcheck source=scripts/lib/backup-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/backup-common.sh"

confirmed=${RESTORE_CONFIRM:-no}
list=no
verify=no
name=
while [ $# -gt 0 ]; do
	case $1 in
	--yes | -y) confirmed=yes ;;
	--list | -l) list=yes ;;
	--verify) verify=yes ;;
	-h | --help)
		sed -n '2,19p' "$0"
		exit 0
		;;
	-*) die "unknown option $1 (see --help)" ;;
	*)
		[ -z "$name" ] || die "one backup at a time"
		name=$1
		;;
	esac
	shift
done

listing=$(list_backups) || die "listing $BACKUP_BUCKET failed"
backups=()
[ -z "$listing" ] || mapfile -t backups <<<"$listing"
if [ "$list" = yes ]; then
	[ "${#backups[@]}" -eq 0 ] || printf '%s\n' "${backups[@]}"
	exit 0
fi
[ "${#backups[@]}" -gt 0 ] || die "no backup under $BACKUP_BUCKET/$BACKUP_PREFIX"

if [ -z "$name" ] || [ "$name" = latest ]; then
	key=${backups[-1]}
else
	key=
	for candidate in "${backups[@]}"; do
		if [ "$candidate" = "$name" ] || [ "${candidate##*/}" = "$name" ]; then key=$candidate; fi
	done
	[ -n "$key" ] || die "no backup named $name under $BACKUP_BUCKET/$BACKUP_PREFIX (see --list)"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
archive="$work/restore.archive.gz"
download() {
	log "downloading $BACKUP_BUCKET/$key"
	"${S3[@]}" get "$BACKUP_BUCKET" "$key" >"$archive" || die "the download failed"
	gzip -t "$archive" || die "the backup is corrupt"
	log "downloaded $(human_size "$(wc -c <"$archive" | tr -d ' ')")"
}

if [ "$verify" = yes ]; then
	check_config "$MONGO_CONFIG"
	"${S3[@]}" get "$BACKUP_BUCKET" "$(counts_key "$key")" >"$work/counts" 2>/dev/null ||
		die "no counts for $key ($(counts_key "$key")): made before backups were verified, or incomplete"
	download
	verify_archive "$archive" "$work/counts" "$work/verify.log"
	log "done: $BACKUP_BUCKET/$key restores whole"
	exit 0
fi

if [ "$confirmed" != yes ]; then
	log "would restore $BACKUP_BUCKET/$key (made $(backup_stamp "$key")), dropping the collections it contains"
	log "not confirmed: run again with --yes (or RESTORE_CONFIRM=yes)" >&2
	exit 2
fi
check_config "$MONGO_RESTORE_CONFIG"

read -r -a RESTORE <<<"$MONGORESTORE_CMD"
download

log "restoring $MONGO_APP_DATABASE with ${RESTORE[0]} (collections in the backup are dropped first, then the oplog replayed)"
if ! gzip -dc "$archive" | "${RESTORE[@]}" --config="$MONGO_RESTORE_CONFIG" --archive --drop \
	--nsInclude="$MONGO_APP_DATABASE.*" --oplogReplay 2>"$work/restore.log"; then
	sed 's/^/  /' "$work/restore.log" >&2
	die "the restore failed"
fi
grep -E 'document\(s\) restored successfully' "$work/restore.log" | sed 's/^[^\t]*\t//' | while read -r line; do log "$line"; done || true
log "done: restored $BACKUP_BUCKET/$key"
