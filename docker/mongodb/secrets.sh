#!/bin/bash
# One-shot job (compose service mongodb-keyfile, image mongo:5.0), before mongod starts. On the mongodb-secrets
# volume (mounted read-only in mongodb at /etc/flashmart-mongo):
#   keyfile       the replica set's internal authentication key (a replica set with auth on needs one), made once;
#                 mongod refuses a keyFile readable by others, so it is 0400 and owned by mongod's uid (999).
#   backup.yaml   mongodump/mongorestore --config for the backup user (scripts/backup.sh, restore.sh --verify)
#   restore.yaml  the same for root, whose restores replay the oplog (scripts/restore.sh --yes)
# The config files are 0600 root: `docker compose exec mongodb` runs as root. They are rewritten at every `up`, so a
# changed password in .env reaches them; the keyfile is kept (changing it needs every member restarted).
set -euo pipefail
umask 077
dir=${SECRETS_DIR:-/secrets}

if [ ! -s "$dir/keyfile" ]; then
	head -c 756 /dev/urandom | base64 -w 0 >"$dir/keyfile.tmp"
	mv "$dir/keyfile.tmp" "$dir/keyfile"
	echo "mongodb-keyfile: made a new keyfile"
fi
chmod 0400 "$dir/keyfile"
chown 999:999 "$dir/keyfile"

# A YAML double-quoted string (the password may hold any character but a newline).
yaml() {
	local s=${1//\\/\\\\}
	s=${s//\"/\\\"}
	printf '"%s"' "$s"
}
# The URI names the user; the password is its own key, so it needs no URL encoding. No database in the path:
# mongodump --oplog works on full dumps only. directConnection: the tools run inside the mongodb container.
tool_config() {
	local user=$1 password=$2 file=$3
	printf 'uri: %s\npassword: %s\n' \
		"$(yaml "mongodb://$user@127.0.0.1:27017/?authSource=admin&directConnection=true")" \
		"$(yaml "$password")" >"$file.tmp"
	chmod 0600 "$file.tmp"
	mv "$file.tmp" "$file"
}
tool_config "$MONGO_BACKUP_USER" "$MONGO_BACKUP_PASSWORD" "$dir/backup.yaml"
tool_config "$MONGO_ROOT_USER" "$MONGO_ROOT_PASSWORD" "$dir/restore.yaml"
echo "mongodb-keyfile: keyfile, backup.yaml and restore.yaml are ready"
