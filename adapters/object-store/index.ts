/**
 * The object store, spoken to through the official MinIO client only: MinIO in the cluster mode, and in the
 * embedded mode an S3 server (@20minutes/s3rver, SigV4 checked) that the media service starts on loopback with its
 * files under DATA_DIR. The same client code runs against both. Plain code: no broker here.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import type { AddressInfo } from "node:net";
import { type Readable, Transform } from "node:stream";
import { Client } from "minio";
import type { AppConfig } from "../../config";

/** Where the bucket is: config's object store settings, with the endpoint settled (MinIO's or the embedded one). */
export type ObjectStoreOptions = Omit<AppConfig["objectStore"], "endpoint"> & { endpoint: string };

/**
 * Bytes cross the transporter in pieces at most this big. The JSON serializer writes a Buffer as an array of numbers
 * (up to 4 characters a byte) and NATS refuses messages over its max_payload (1 MiB by default), so Moleculer's own
 * 256 KiB chunks are too big for unlucky bytes.
 */
export const TRANSIT_CHUNK_BYTES = 64 * 1024;

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

/** Splits a byte stream into pieces of at most `max` bytes (see TRANSIT_CHUNK_BYTES). */
export function inTransitChunks(max = TRANSIT_CHUNK_BYTES): Transform {
	return new Transform({
		transform(chunk: Buffer, _encoding, done) {
			for (let i = 0; i < chunk.length; i += max) this.push(chunk.subarray(i, i + max));
			done();
		}
	});
}

interface S3rverInstance {
	run(): Promise<AddressInfo>;
	close(): Promise<void>;
}
type S3rverClass = new (options: {
	address: string;
	port: number;
	directory: string;
	silent: boolean;
	resetOnClose: boolean;
	allowMismatchedSignatures: boolean;
}) => S3rverInstance;
interface S3rverAccounts {
	DUMMY_ACCOUNT: {
		createKeyPair(accessKey: string, secretKey: string): void;
		revokeAccessKey(accessKey: string): void;
	};
}

export interface EmbeddedS3 {
	/** Always loopback. */
	endpoint: string;
	port: number;
	accessKey: string;
	secretKey: string;
	close(): Promise<void>;
}

/**
 * Starts an S3 server on 127.0.0.1 (port 0: a free one) storing under `directory`, accepting requests signed with
 * `accessKey`/`secretKey` (random ones when not given).
 */
export async function startEmbeddedS3(opts: {
	directory: string;
	port?: number;
	accessKey?: string;
	secretKey?: string;
}): Promise<EmbeddedS3> {
	// The package ships no typings; these are the two parts used.
	const S3rver = require("@20minutes/s3rver") as S3rverClass;
	const accounts = require("@20minutes/s3rver/lib/models/account") as S3rverAccounts;
	const accessKey = opts.accessKey ?? `fm${randomBytes(9).toString("hex")}`;
	const secretKey = opts.secretKey ?? randomBytes(24).toString("base64url");
	// s3rver checks signatures against its one built-in account; this key pair joins that account.
	accounts.DUMMY_ACCOUNT.createKeyPair(accessKey, secretKey);

	fs.mkdirSync(opts.directory, { recursive: true });
	const server = new S3rver({
		address: "127.0.0.1",
		port: opts.port ?? 0,
		directory: opts.directory,
		silent: true,
		resetOnClose: false,
		allowMismatchedSignatures: false
	});
	const address = await server.run();
	return {
		endpoint: "127.0.0.1",
		port: address.port,
		accessKey,
		secretKey,
		async close() {
			await server.close();
			accounts.DUMMY_ACCOUNT.revokeAccessKey(accessKey);
		}
	};
}
