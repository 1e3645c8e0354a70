#!/bin/sh
# One-shot job (compose service minio-setup, image minio/mc): creates the buckets and the application's access key,
# limited by docker/minio/flashmart-policy.json to those buckets. Idempotent: runs at every `docker compose up`, so a
# changed MINIO_APP_SECRET_KEY in .env is applied by the next `up`.
set -eu

mc alias set local http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null

for bucket in $MINIO_BUCKETS; do
	mc mb --ignore-existing "local/$bucket"
done

mc admin policy create local flashmart /setup/flashmart-policy.json
# `user add` on an existing user sets its secret key: this is also how the key is rotated.
mc admin user add local "$MINIO_APP_ACCESS_KEY" "$MINIO_APP_SECRET_KEY"
if ! mc admin user info local "$MINIO_APP_ACCESS_KEY" | grep -q 'flashmart'; then
	mc admin policy attach local flashmart --user "$MINIO_APP_ACCESS_KEY"
fi
echo "minio-setup: buckets ($MINIO_BUCKETS) and the application key are ready"
