/**
 * One bucket through the official MinIO client: the same client code speaks to MinIO in the cluster mode and to the
 * embedded S3 server in the embedded mode.
 */
import type { Readable } from "node:stream";
import { Client } from "minio";
import type { AppConfig } from "../../config";

/** Where the bucket is: config's object store settings, with the endpoint settled (MinIO's or the embedded one). */
export type ObjectStoreOptions = Omit<AppConfig["objectStore"], "endpoint"> & { endpoint: string };

/** S3 error codes that mean "no such object". */
const NOT_FOUND_CODES = new Set(["NoSuchKey", "NotFound", "NoSuchObject"]);

export function isNotFound(err: unknown): boolean {
	const code = (err as { code?: unknown } | null)?.code;
	return typeof code === "string" && NOT_FOUND_CODES.has(code);
}

/** One bucket of an S3 server. */
export class ObjectStore {
	constructor(
		readonly client: Client,
		readonly bucket: string,
		readonly region: string
	) {}

	/** Creates the bucket when it is missing (another node creating it at the same moment is fine). */
	async ensureBucket(): Promise<void> {
		if (await this.client.bucketExists(this.bucket)) return;
		try {
			await this.client.makeBucket(this.bucket, this.region);
		} catch (err) {
			const code = (err as { code?: unknown }).code;
			if (code !== "BucketAlreadyOwnedByYou" && code !== "BucketAlreadyExists") throw err;
		}
	}

	/** Whether the server answers and the bucket exists. */
	async reachable(): Promise<boolean> {
		return this.client.bucketExists(this.bucket);
	}

	/** One PUT of a known size (well below the client's part size: never a multipart upload). */
	async put(key: string, body: Buffer, contentType: string): Promise<void> {
		await this.client.putObject(this.bucket, key, body, body.length, {
			"Content-Type": contentType
		});
	}

	/** The object's bytes, or null when there is no such object. */
	async get(key: string): Promise<Readable | null> {
		try {
			return await this.client.getObject(this.bucket, key);
		} catch (err) {
			if (isNotFound(err)) return null;
			throw err;
		}
	}

	/** Deletes an object; deleting one that is not there is not an error (S3 semantics). */
	async remove(key: string): Promise<void> {
		await this.client.removeObject(this.bucket, key);
	}
}

export function createObjectStore(opts: ObjectStoreOptions): ObjectStore {
	const client = new Client({
		endPoint: opts.endpoint,
		port: opts.port,
		useSSL: opts.useSSL,
		accessKey: opts.accessKey,
		secretKey: opts.secretKey,
		// A known region spares a GetBucketLocation round trip before the first request.
		region: opts.region,
		// Callers have deadlines and their own error answers; the client's retries would print to the console.
		retryOptions: { disableRetry: true }
	});
	return new ObjectStore(client, opts.bucket, opts.region);
}
