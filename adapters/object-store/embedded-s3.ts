/**
 * The embedded mode's object store: an S3 server (@20minutes/s3rver, SigV4 checked) on loopback, with its files
 * under DATA_DIR, so the embedded mode needs no MinIO.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import type { AddressInfo } from "node:net";

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
