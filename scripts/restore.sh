#!/usr/bin/env bash
# Restores FlashMart's database from a backup made by backup.sh: the latest one, or the one named.
#
#   scripts/restore.sh --list                 the backups, oldest first
#   scripts/restore.sh --yes                  restore the latest backup
#   scripts/restore.sh --yes <name>           restore that backup (its key or its file name)
#
# Restoring replaces the collections in the backup (mongorestore --drop): without --yes (or RESTORE_CONFIRM=yes, for
# cron) it only says what it would restore and exits with code 2. Stop the application nodes first
# (docker compose stop gateway users catalog commerce payments) so nothing writes during the restore.
# Environment: as backup.sh, with MONGORESTORE_CMD (default mongorestore) instead of MONGODUMP_CMD.
set -euo pipefail
SCRIPT_NAME=restore
# shellcheck source=scripts/lib/backup-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/backup-common.sh"

confirmed=${RESTORE_CONFIRM:-no}
list=no
name=
while [ $# -gt 0 ]; do
	case $1 in
	--yes | -y) confirmed=yes ;;
	--list | -l) list=yes ;;
	-h | --help)
		sed -n '2,12p' "$0"
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

if [ "$confirmed" != yes ]; then
	log "would restore $BACKUP_BUCKET/$key (made $(backup_stamp "$key")), dropping the collections it contains"
	log "not confirmed: run again with --yes (or RESTORE_CONFIRM=yes)" >&2
	exit 2
fi
require MONGO_URI

read -r -a RESTORE <<<"$MONGORESTORE_CMD"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
archive="$work/restore.archive.gz"

log "downloading $BACKUP_BUCKET/$key"
"${S3[@]}" get "$BACKUP_BUCKET" "$key" >"$archive" || die "the download failed"
gzip -t "$archive" || die "the backup is corrupt"
log "downloaded $(human_size "$(wc -c <"$archive" | tr -d ' ')")"

log "restoring with ${RESTORE[0]} (collections in the backup are dropped first)"
gzip -dc "$archive" | "${RESTORE[@]}" --uri="$MONGO_URI" --archive --drop || die "the restore failed"
log "done: restored $BACKUP_BUCKET/$key"
