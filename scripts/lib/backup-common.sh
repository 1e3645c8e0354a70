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
# The tools' --config file (YAML: uri, password), as a path where the tools run: no password is ever on a command
# line. In compose: /etc/flashmart-mongo/backup.yaml (made by docker/mongodb/secrets.sh), restore.yaml for restores.
MONGO_CONFIG=${MONGO_CONFIG:-}
MONGO_RESTORE_CONFIG=${MONGO_RESTORE_CONFIG:-$MONGO_CONFIG}
MONGO_APP_DATABASE=${MONGO_APP_DATABASE:-flashmart}
MONGO_VERIFY_DATABASE=${MONGO_VERIFY_DATABASE:-${MONGO_APP_DATABASE}_verify}
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

# A tools config file that exists here must be private (when the tools run in a container, it is checked there).
check_config() {
	local file=$1 mode
	[ -n "$file" ] || die "MONGO_CONFIG is not set (the mongodump/mongorestore --config file with the credentials)"
	[ -e "$file" ] || return 0
	mode=$(stat -c %a "$file")
	case $mode in 600 | 400) ;; *) die "$file has mode $mode: it holds a password, make it 0600" ;; esac
}

# The manifest object of a backup: the per-collection counts mongodump reported, one "collection<TAB>count" a line.
counts_key() { printf '%s.counts' "${1%.archive.gz}"; }

# "collection<TAB>count[<TAB>failures]" of the lines of a tools log that start with `<marker> <database>.`:
# mongodump's "done dumping db.coll (N documents)", mongorestore's "finished restoring db.coll (N documents, F
# failures)". Literal matching (awk index), so no character of a name is taken for a pattern.
log_counts() {
	awk -v prefix="$2 $3." '
		{ i = index($0, prefix); if (!i) next
		  rest = substr($0, i + length(prefix)); j = index(rest, " ("); if (!j) next
		  coll = substr(rest, 1, j - 1); split(substr(rest, j + 2), f, /[ ,)]+/)
		  if (f[3] != "") print coll "\t" f[1] "\t" f[3]; else print coll "\t" f[1] }' "$1" | sort
}
# Per-collection document counts of the app database from a mongodump log.
dump_counts() { log_counts "$1" "done dumping" "$MONGO_APP_DATABASE"; }

# Restores a compressed archive into the scratch database MONGO_VERIFY_DATABASE (never the app database: the
# namespaces are renamed, and the oplog is not replayed) and compares every collection's restored count with the
# manifest. Succeeds only when every collection came back whole, with no failed document.
verify_archive() {
	local archive=$1 manifest=$2 log=$3 coll want got failures problems=0 restore
	read -r -a restore <<<"$MONGORESTORE_CMD"
	[ -s "$manifest" ] || die "verify: the manifest lists no collection of $MONGO_APP_DATABASE"
	log "verifying: restoring into the scratch database $MONGO_VERIFY_DATABASE with ${restore[0]}"
	if ! gzip -dc "$archive" | "${restore[@]}" --config="$MONGO_CONFIG" --archive --drop \
		--nsInclude="$MONGO_APP_DATABASE.*" --nsFrom="$MONGO_APP_DATABASE.*" \
		--nsTo="$MONGO_VERIFY_DATABASE.*" 2>"$log"; then
		sed 's/^/  /' "$log" >&2
		die "verify: the restore into $MONGO_VERIFY_DATABASE failed"
	fi
	log_counts "$log" "finished restoring" "$MONGO_VERIFY_DATABASE" >"$log.counts"
	while IFS=$'\t' read -r coll want; do
		got=$(awk -F '\t' -v c="$coll" '$1 == c { print $2 " " $3; exit }' "$log.counts")
		failures=${got#* }
		got=${got% *}
		if [ -z "$got" ]; then
			log "verify: $coll: $want documents dumped, none restored" >&2
			problems=$((problems + 1))
		elif [ "$got" != "$want" ] || [ "$failures" != 0 ]; then
			log "verify: $coll: $want documents dumped, $got restored, $failures failed" >&2
			problems=$((problems + 1))
		fi
	done <"$manifest"
	[ "$problems" -eq 0 ] || die "verify: $problems collection(s) differ between the dump and its restore"
	log "verified: $(wc -l <"$manifest" | tr -d ' ') collection(s), $(awk -F '\t' '{ n += $2 } END { print n + 0 }' "$manifest") document(s), counts equal"
}

# The UTC timestamp in a backup's key.
backup_stamp() {
	local key=${1##*/}
	key=${key#"$BACKUP_NAME"-}
	printf '%s' "${key%.archive.gz}"
}
