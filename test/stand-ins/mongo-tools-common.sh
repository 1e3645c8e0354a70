# Shared by the mongodump and mongorestore stand-ins (sourced). What they enforce, at least as strictly as the real
# MongoDB Database Tools 100.x against FlashMart's compose MongoDB (a replica set with auth on):
#   - no password on the command line (--password, -p, or a password in --uri): it would show in `ps`; the real
#     tools accept it, the stand-ins refuse it, because FlashMart's scripts must not do it;
#   - the connection comes from --config=<YAML file> (uri:, password:), a file only its owner can read (0600/0400);
#   - the archive is --archive (stdout or stdin), as the scripts stream it through gzip.
# shellcheck shell=bash

fail() {
	printf '%s\tFailed: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.000+0000)" "$*" >&2
	exit 1
}
say() { printf '%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.000+0000)" "$*" >&2; }

CONFIG=
# shellcheck disable=SC2034 # read by the tool that sources this file
ARCHIVE=
ARCHIVE_SET=no
declare -a REST=()
parse_common() {
	local a
	for a in "$@"; do
		case $a in
		--password | --password=* | -p | -p*) fail "error parsing command line options: a password on the command line is refused (use --config)" ;;
		--uri=*://*:*@*) fail "a password in --uri on the command line is refused (use --config)" ;;
		--config=*) CONFIG=${a#--config=} ;;
		--archive) ARCHIVE_SET=yes ;;
		--archive=*)
			ARCHIVE_SET=yes
			# shellcheck disable=SC2034 # read by the tool that sources this file
			ARCHIVE=${a#--archive=}
			;;
		*) REST+=("$a") ;;
		esac
	done
	[ -n "$CONFIG" ] || fail "no --config: this MongoDB requires authentication"
	[ -r "$CONFIG" ] || fail "error opening config file: open $CONFIG: no such file or directory"
	local mode
	mode=$(stat -c %a "$CONFIG")
	case $mode in 600 | 400) ;; *) fail "config file $CONFIG has mode $mode: readable by others (want 0600)" ;; esac
	grep -Eq '^uri: ' "$CONFIG" || fail "config file $CONFIG has no uri"
	grep -Eq '^password: ' "$CONFIG" || fail "(AuthenticationFailed) Authentication failed: no password in $CONFIG"
	[ "$ARCHIVE_SET" = yes ] || fail "the stand-in only speaks --archive"
}
# The database named in the config's URI path (empty for a full-instance URI).
uri_database() {
	sed -n 's/^uri: "\{0,1\}mongodb:\/\/[^/]*\/\([^?"]*\).*/\1/p' "$CONFIG" | head -n1
}
