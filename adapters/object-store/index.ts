/**
 * The object store port: MinIO when `MINIO_ENDPOINT` is set, else an S3 server the media service starts on loopback;
 * both spoken to through the MinIO client (minio.ts). Plain code: no broker here.
 */
import path from "node:path";
import { Transform } from "node:stream";
import type { AppConfig } from "../../config";
import { type EmbeddedS3, startEmbeddedS3 } from "./embedded-s3";
import { type ObjectStore, createObjectStore } from "./minio";

export { type EmbeddedS3, startEmbeddedS3 } from "./embedded-s3";
export { ObjectStore, type ObjectStoreOptions, createObjectStore, isNotFound } from "./minio";

/**
 * Bytes cross the transporter in pieces at most this big. The JSON serializer writes a Buffer as an array of numbers
 * (up to 4 characters a byte) and NATS refuses messages over its max_payload (1 MiB by default), so Moleculer's own
 * 256 KiB chunks are too big for unlucky bytes.
 */
export const TRANSIT_CHUNK_BYTES = 64 * 1024;

/** Splits a byte stream into pieces of at most `max` bytes (see TRANSIT_CHUNK_BYTES). */
export function inTransitChunks(max = TRANSIT_CHUNK_BYTES): Transform {
	return new Transform({
		transform(chunk: Buffer, _encoding, done) {
			for (let i = 0; i < chunk.length; i += max) this.push(chunk.subarray(i, i + max));
			done();
		}
	});
}

/**
 * The bucket for this configuration: MinIO's at `MINIO_ENDPOINT`, or one on an embedded S3 server started here
 * (files under DATA_DIR/s3), which the caller closes when it stops.
 */
export async function resolveObjectStore(
	cfg: Pick<AppConfig, "objectStore" | "dataDir">
): Promise<{ store: ObjectStore; embedded: EmbeddedS3 | null }> {
	const os = cfg.objectStore;
	if (os.endpoint !== null)
		return { store: createObjectStore({ ...os, endpoint: os.endpoint }), embedded: null };
	const embedded = await startEmbeddedS3({ directory: path.join(cfg.dataDir, "s3") });
	const store = createObjectStore({
		...os,
		endpoint: embedded.endpoint,
		port: embedded.port,
		useSSL: false,
		accessKey: embedded.accessKey,
		secretKey: embedded.secretKey
	});
	return { store, embedded };
}
