#!/bin/bash
# One-shot job (compose service mongodb-setup, image mongo:5.0), after mongodb is healthy, at every `up`:
#   - initiates the single-node replica set rs0 (member mongodb:27017, the name every container resolves) once;
#   - waits until the member is primary;
#   - upserts the backup user: `backup` (mongodump of every database, the oplog included) and dbOwner of the scratch
#     database MONGO_APP_DATABASE_verify, where backups are restored to be verified; nothing on the app database;
#   - upserts the role flashmart_oplog_replay (anyAction on anyResource: MongoDB's `restore` role cannot replay an
#     oplog, its documentation says to grant such a role to whoever restores with --oplogReplay) and grants it to
#     the root user, who runs real restores.
# The passwords go to the shell inside the script on stdin (db.auth), never on its command line.
set -euo pipefail

# A JS string literal of a value (the image has no jq).
json() {
	local s=${1//\\/\\\\}
	s=${s//\"/\\\"}
	printf '"%s"' "$s"
}

mongo --quiet --host "${MONGO_HOST:-mongodb:27017}" admin <<JS
if (db.auth($(json "$MONGO_ROOT_USER"), $(json "$MONGO_ROOT_PASSWORD")) !== 1) quit(2);
const status = db.adminCommand({ replSetGetStatus: 1 });
if (status.ok !== 1) {
	// 94 NotYetInitialized: a new volume (or a standalone one being converted). Anything else is a real error.
	if (status.code !== 94) { printjson(status); quit(3); }
	const res = rs.initiate({ _id: "rs0", members: [{ _id: 0, host: "mongodb:27017" }] });
	if (res.ok !== 1) { printjson(res); quit(4); }
	print("mongodb-setup: initiated replica set rs0");
}
for (let i = 0; !db.isMaster().ismaster; i++) {
	if (i > 120) { print("mongodb-setup: no primary after 60 s"); quit(5); }
	sleep(500);
}

const admin = db.getSiblingDB("admin");
const verifyDb = $(json "${MONGO_APP_DATABASE:-flashmart}") + "_verify";
const replay = { privileges: [{ resource: { anyResource: true }, actions: ["anyAction"] }], roles: [] };
if (admin.getRole("flashmart_oplog_replay")) admin.updateRole("flashmart_oplog_replay", replay);
else admin.createRole(Object.assign({ role: "flashmart_oplog_replay" }, replay));
admin.grantRolesToUser($(json "$MONGO_ROOT_USER"), [{ role: "flashmart_oplog_replay", db: "admin" }]);

const backupUser = $(json "$MONGO_BACKUP_USER");
const backup = {
	pwd: $(json "$MONGO_BACKUP_PASSWORD"),
	roles: [{ role: "backup", db: "admin" }, { role: "dbOwner", db: verifyDb }]
};
if (admin.getUser(backupUser)) admin.updateUser(backupUser, backup);
else admin.createUser(Object.assign({ user: backupUser }, backup));
print("mongodb-setup: replica set rs0 primary; backup user and oplog-replay role up to date");
JS
