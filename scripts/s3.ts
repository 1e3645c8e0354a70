/**
 * A small S3 client for the operator scripts (backup.sh, restore.sh): the same minio client and MINIO_* settings
 * (through config/) as the application, so it works wherever a FlashMart node works, in the image included.
 *
 *   node dist/scripts/s3.js ls  <bucket> [prefix]   one line per object: key<TAB>size<TAB>last modified (ISO)
 *   node dist/scripts/s3.js put <bucket> <key> <size>  uploads standard input, <size> bytes
 *   node dist/scripts/s3.js get <bucket> <key>      writes the object to standard output
 *   node dist/scripts/s3.js rm  <bucket> <key>...   removes objects
 *
 * Streams only (no file paths), so it also runs inside a container: `docker compose exec -T catalog node ...`.
 * Exit codes: 0 done, 1 S3 error, 2 usage or configuration error, 3 no such object (get).
 */
import { pipeline } from "node:stream/promises";
import type { Client } from "minio";
import { loadConfig } from "../config";
import { createObjectStore, isNotFound } from "../adapters/object-store";

const USAGE =
	"usage: s3.js ls <bucket> [prefix] | put <bucket> <key> | get <bucket> <key> | rm <bucket> <key>...";

class UsageError extends Error {}

function client(): Client {
	const { objectStore } = loadConfig(process.env, { withoutServices: true });
	if (!objectStore.endpoint)
		throw new UsageError("MINIO_ENDPOINT is not set (and MINIO_ACCESS_KEY, MINIO_SECRET_KEY)");
	return createObjectStore({ ...objectStore, endpoint: objectStore.endpoint }).client;
}

async function list(bucket: string, prefix: string): Promise<void> {
	const stream = client().listObjectsV2(bucket, prefix, true);
	for await (const item of stream as AsyncIterable<{
		name?: string;
		size: number;
		lastModified: Date;
	}>) {
		if (!item.name) continue;
		process.stdout.write(`${item.name}\t${item.size}\t${item.lastModified.toISOString()}\n`);
	}
}

async function run(argv: string[]): Promise<void> {
	const [command, bucket, ...rest] = argv;
	if (!bucket) throw new UsageError(USAGE);
	switch (command) {
		case "ls":
			return list(bucket, rest[0] ?? "");
		case "put":
			if (rest.length !== 2 || !/^\d+$/.test(rest[1])) throw new UsageError(USAGE);
			// A known size: one PUT below the client's part size (64 MiB), multipart above. A stream of unknown size
			// would always take the multipart path, which S3 servers used in tests do not implement.
			await client().putObject(bucket, rest[0], process.stdin, Number(rest[1]));
			return;
		case "get": {
			if (rest.length !== 1) throw new UsageError(USAGE);
			const body = await client().getObject(bucket, rest[0]);
			await pipeline(body, process.stdout);
			return;
		}
		case "rm":
			if (rest.length === 0) throw new UsageError(USAGE);
			for (const key of rest) await client().removeObject(bucket, key);
			return;
		default:
			throw new UsageError(USAGE);
	}
}

run(process.argv.slice(2)).then(
	() => process.exit(0),
	(err: unknown) => {
		const e = err as { name?: string; message?: string; code?: string };
		if (err instanceof UsageError || e.name === "ConfigError") {
			process.stderr.write(`s3: ${e.message}\n`);
			process.exit(2);
		}
		if (isNotFound(err)) {
			process.stderr.write(`s3: no such object (${e.code})\n`);
			process.exit(3);
		}
		process.stderr.write(`s3: ${e.code ?? e.name ?? "error"}: ${e.message}\n`);
		process.exit(1);
	}
);
