#!/bin/bash
# Runs once, on the first start of an empty mongodb-data volume (the image's docker-entrypoint-initdb.d), as root
# against the not yet published server. Creates:
#   - the application user: readWrite on MONGO_APP_DATABASE only (the app never uses root);
#   - the exporter's user: clusterMonitor plus read on `local` (what mongodb_exporter needs, nothing more).
# Passwords reach the shell as JSON strings inside the script it reads on stdin (root logs in with db.auth there), so
# quotes or backslashes in them cannot break it and none is on a command line. The backup user is made by
# mongodb-setup (docker/mongodb/replica-set.sh), which also runs on volumes created before it existed.
set -euo pipefail

# The mongo image has no jq or node: escape backslashes and double quotes for a JS string literal.
json() {
	local s=${1//\\/\\\\}
	s=${s//\"/\\\"}
	printf '"%s"' "$s"
}

mongo --quiet --host 127.0.0.1 admin <<JS
if (db.auth($(json "$MONGO_INITDB_ROOT_USERNAME"), $(json "$MONGO_INITDB_ROOT_PASSWORD")) !== 1) quit(2);
const app = db.getSiblingDB($(json "$MONGO_APP_DATABASE"));
app.createUser({
	user: $(json "$MONGO_APP_USER"),
	pwd: $(json "$MONGO_APP_PASSWORD"),
	roles: [{ role: "readWrite", db: $(json "$MONGO_APP_DATABASE") }]
});
db.getSiblingDB("admin").createUser({
	user: $(json "$MONGO_EXPORTER_USER"),
	pwd: $(json "$MONGO_EXPORTER_PASSWORD"),
	roles: [{ role: "clusterMonitor", db: "admin" }, { role: "read", db: "local" }]
});
print("flashmart: created the application user and the exporter user");
JS
