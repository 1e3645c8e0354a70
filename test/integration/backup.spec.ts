/**
 * scripts/backup.sh and scripts/restore.sh for real against an S3 server that checks SigV4 (@20minutes/s3rver),
 * through FlashMart's own S3 client (dist/scripts/s3.js). Only mongodump and mongorestore are replaced, by the
 * commands MONGODUMP_CMD / MONGORESTORE_CMD name: small scripts that write a known archive and record what they get.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { Client } from "minio";
import { type EmbeddedS3, startEmbeddedS3 } from "../../adapters/object-store";
import { ROOT, stopAll, tempDir } from "../../scripts/lib/cluster";

const BUCKET = "backups";
const MONGO_URI = "mongodb://app:app-secret@mongodb:27017/flashmart?authSource=flashmart";
const NAME = /^mongodb\/flashmart-(\d{8}T\d{6}Z)\.archive\.gz$/;

let s3: EmbeddedS3;
let client: Client;
let dir: string;

interface Run {
	code: number | null;
	stdout: string;
	stderr: string;
}

/** Runs a script to its end, asynchronously: the S3 server lives in this process and must keep answering. */
function run(script: string, args: string[] = [], env: Record<string, string> = {}): Promise<Run> {
	return new Promise((resolve, reject) => {
		const child = spawn("bash", [path.join(ROOT, "scripts", script), ...args], {
			env: {
				PATH: process.env.PATH,
				HOME: process.env.HOME,
				MINIO_ENDPOINT: s3.endpoint,
				MINIO_PORT: String(s3.port),
				MINIO_ACCESS_KEY: s3.accessKey,
				MINIO_SECRET_KEY: s3.secretKey,
				MONGO_URI,
				MONGODUMP_CMD: path.join(dir, "fake-mongodump"),
				MONGORESTORE_CMD: path.join(dir, "fake-mongorestore"),
				FAKE_DIR: dir,
				BACKUP_LOCK_FILE: path.join(dir, "backup.lock"),
				...env
			},
			stdio: ["ignore", "pipe", "pipe"]
		});
		let stdout = "";
		let stderr = "";
		child.stdout.on("data", d => (stdout += d));
		child.stderr.on("data", d => (stderr += d));
		child.on("error", reject);
		child.on("close", code => resolve({ code, stdout, stderr }));
	});
}

async function keys(): Promise<string[]> {
	const out: string[] = [];
	for await (const o of client.listObjectsV2(BUCKET, "", true) as AsyncIterable<{
		name?: string;
	}>) {
		if (o.name) out.push(o.name);
	}
	return out.sort();
}

async function getObject(key: string): Promise<Buffer> {
	const chunks: Buffer[] = [];
	for await (const c of await client.getObject(BUCKET, key)) chunks.push(c as Buffer);
	return Buffer.concat(chunks);
}

async function putObject(key: string, body: Buffer): Promise<void> {
	await client.putObject(BUCKET, key, body, body.length);
}

/** The backup key of a moment `daysAgo` days back. */
function keyOf(daysAgo: number, suffix = 0): string {
	const d = new Date(Date.now() - daysAgo * 86400_000 - suffix * 1000);
	const stamp = d
		.toISOString()
		.replace(/[-:]/g, "")
		.replace(/\.\d{3}/, "");
	return `mongodb/flashmart-${stamp}.archive.gz`;
}

async function emptyBucket(): Promise<void> {
	for (const k of await keys()) await client.removeObject(BUCKET, k);
}

beforeAll(async () => {
	dir = tempDir("backup");
	s3 = await startEmbeddedS3({ directory: path.join(dir, "s3") });
	client = new Client({
		endPoint: s3.endpoint,
		port: s3.port,
		useSSL: false,
		accessKey: s3.accessKey,
		secretKey: s3.secretKey,
		region: "us-east-1"
	});
	await client.makeBucket(BUCKET, "us-east-1");
	// mongodump's stand-in: records its arguments, writes FAKE_DUMP_CONTENT (plus noise, so the archive is not
	// trivially small) as the archive on stdout, or fails when FAKE_DUMP_FAIL is set.
	fs.writeFileSync(
		path.join(dir, "fake-mongodump"),
		[
			"#!/bin/sh",
			'printf "%s\\n" "$@" > "$FAKE_DIR/dump-args"',
			'if [ -n "${FAKE_DUMP_FAIL:-}" ]; then echo "dump: connection refused" >&2; exit 1; fi',
			'printf "%s" "$FAKE_DUMP_CONTENT"',
			""
		].join("\n"),
		{ mode: 0o755 }
	);
	// mongorestore's stand-in: records its arguments and the archive it reads on stdin.
	fs.writeFileSync(
		path.join(dir, "fake-mongorestore"),
		[
			"#!/bin/sh",
			'printf "%s\\n" "$@" > "$FAKE_DIR/restore-args"',
			'cat > "$FAKE_DIR/restored"',
			""
		].join("\n"),
		{ mode: 0o755 }
	);
});

afterAll(async () => {
	await s3?.close();
	await stopAll();
});

beforeEach(async () => {
	await emptyBucket();
	for (const f of ["dump-args", "restore-args", "restored"])
		fs.rmSync(path.join(dir, f), { force: true });
});

describe("scripts/backup.sh", () => {
	it("dumps with --uri and --archive, compresses, and uploads under a UTC timestamp", async () => {
		const content = `archive ${randomBytes(64).toString("hex")}`;
		const before = new Date();
		const r = await run("backup.sh", [], { FAKE_DUMP_CONTENT: content });
		expect(r.stderr).toBe("");
		expect(r.code).toBe(0);

		expect(fs.readFileSync(path.join(dir, "dump-args"), "utf8").split("\n")).toEqual([
			`--uri=${MONGO_URI}`,
			"--archive",
			""
		]);
		const stored = await keys();
		expect(stored).toHaveLength(1);
		const stamp = stored[0].match(NAME)?.[1];
		expect(stamp).toBeDefined();
		const made = new Date(
			stamp!.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, "$1-$2-$3T$4:$5:$6Z")
		);
		expect(made.getTime()).toBeGreaterThanOrEqual(Math.floor(before.getTime() / 1000) * 1000);
		expect(made.getTime()).toBeLessThanOrEqual(Date.now());
		expect(gunzipSync(await getObject(stored[0])).toString()).toBe(content);
		// Progress for a cron log: the dump, its size, the upload, the retention summary.
		expect(r.stdout).toMatch(/\[backup\] dumping the database/);
		expect(r.stdout).toMatch(/dump done: .*B compressed/);
		expect(r.stdout).toContain(`uploaded ${BUCKET}/${stored[0]}`);
		expect(r.stdout).toMatch(/retention: kept 1 backup\(s\), removed 0/);
	});

	it("removes backups older than BACKUP_RETENTION_DAYS by the date in their name, nothing else", async () => {
		const old = [keyOf(30), keyOf(15)];
		const recent = [keyOf(13), keyOf(1)];
		const foreign = [
			"mongodb/notes.txt",
			"mongodb/other-20200101T000000Z.archive.gz",
			"elsewhere.gz"
		];
		for (const k of [...old, ...recent, ...foreign]) await putObject(k, gzipSync("x"));

		const r = await run("backup.sh", [], {
			FAKE_DUMP_CONTENT: "fresh archive",
			BACKUP_RETENTION_DAYS: "14"
		});
		expect(r.code).toBe(0);
		const after = await keys();
		for (const k of old) expect(after).not.toContain(k);
		for (const k of [...recent, ...foreign]) expect(after).toContain(k);
		expect(after.filter(k => NAME.test(k))).toHaveLength(3);
		for (const k of old) expect(r.stdout).toContain(`removed ${k} (older than 14 days)`);
		expect(r.stdout).toMatch(/retention: kept 3 backup\(s\), removed 2/);
	});

	it("always keeps the newest backup, even with a retention of 0 days", async () => {
		await putObject(keyOf(2), gzipSync("older"));
		const r = await run("backup.sh", [], {
			FAKE_DUMP_CONTENT: "newest archive",
			BACKUP_RETENTION_DAYS: "0"
		});
		expect(r.code).toBe(0);
		const after = (await keys()).filter(k => NAME.test(k));
		expect(after).toHaveLength(1);
		expect(gunzipSync(await getObject(after[0])).toString()).toBe("newest archive");
	});

	it("uploads nothing and exits non-zero when the dump fails", async () => {
		const r = await run("backup.sh", [], { FAKE_DUMP_CONTENT: "x", FAKE_DUMP_FAIL: "1" });
		expect(r.code).not.toBe(0);
		expect(r.stderr).toMatch(/the dump failed/);
		expect(await keys()).toEqual([]);
	});

	it("exits non-zero when the S3 server refuses the credentials", async () => {
		const r = await run("backup.sh", [], {
			FAKE_DUMP_CONTENT: "archive that goes nowhere",
			MINIO_SECRET_KEY: "not-the-right-secret"
		});
		expect(r.code).not.toBe(0);
		expect(r.stderr).toMatch(/SignatureDoesNotMatch/);
		expect(r.stderr).toMatch(/the upload failed/);
		expect(await keys()).toEqual([]);
	});

	it("refuses to run without MONGO_URI", async () => {
		const r = await run("backup.sh", [], { MONGO_URI: "" });
		expect(r.code).not.toBe(0);
		expect(r.stderr).toMatch(/MONGO_URI is not set/);
	});
});

describe("scripts/restore.sh", () => {
	const older = keyOf(3);
	const newer = keyOf(1);

	beforeEach(async () => {
		await putObject(older, gzipSync("archive of three days ago"));
		await putObject(newer, gzipSync("archive of yesterday"));
		await putObject("mongodb/notes.txt", Buffer.from("not a backup"));
	});

	it("lists the backups oldest first", async () => {
		const r = await run("restore.sh", ["--list"]);
		expect(r.code).toBe(0);
		expect(r.stdout.trim().split("\n")).toEqual([older, newer]);
	});

	it("restores nothing without confirmation, and says what it would restore", async () => {
		const r = await run("restore.sh");
		expect(r.code).toBe(2);
		expect(r.stdout).toContain(`would restore ${BUCKET}/${newer}`);
		expect(r.stderr).toMatch(/--yes/);
		expect(fs.existsSync(path.join(dir, "restore-args"))).toBe(false);
	});

	it("restores the latest backup with --yes, dropping what it replaces", async () => {
		const r = await run("restore.sh", ["--yes"]);
		expect(r.stderr).toBe("");
		expect(r.code).toBe(0);
		expect(fs.readFileSync(path.join(dir, "restored"), "utf8")).toBe("archive of yesterday");
		expect(fs.readFileSync(path.join(dir, "restore-args"), "utf8").split("\n")).toEqual([
			`--uri=${MONGO_URI}`,
			"--archive",
			"--drop",
			""
		]);
		expect(r.stdout).toContain(`done: restored ${BUCKET}/${newer}`);
	});

	it("restores a named backup, by key or file name; RESTORE_CONFIRM=yes confirms for cron", async () => {
		let r = await run("restore.sh", ["--yes", older]);
		expect(r.code).toBe(0);
		expect(fs.readFileSync(path.join(dir, "restored"), "utf8")).toBe("archive of three days ago");

		fs.rmSync(path.join(dir, "restored"));
		r = await run("restore.sh", [path.basename(older)], { RESTORE_CONFIRM: "yes" });
		expect(r.code).toBe(0);
		expect(fs.readFileSync(path.join(dir, "restored"), "utf8")).toBe("archive of three days ago");
	});

	it("fails naming the backup when there is no such backup", async () => {
		const r = await run("restore.sh", ["--yes", "flashmart-19990101T000000Z.archive.gz"]);
		expect(r.code).not.toBe(0);
		expect(r.stderr).toMatch(/no backup named flashmart-19990101T000000Z\.archive\.gz/);
		expect(fs.existsSync(path.join(dir, "restore-args"))).toBe(false);
	});

	it("refuses a corrupt backup before touching the database", async () => {
		await putObject(keyOf(0.5), Buffer.from("not gzip at all"));
		const r = await run("restore.sh", ["--yes"]);
		expect(r.code).not.toBe(0);
		expect(r.stderr).toMatch(/the backup is corrupt/);
		expect(fs.existsSync(path.join(dir, "restore-args"))).toBe(false);
	});

	it("restores what backup.sh stored (a round trip)", async () => {
		const content = `round trip ${randomBytes(16).toString("hex")}`;
		expect((await run("backup.sh", [], { FAKE_DUMP_CONTENT: content })).code).toBe(0);
		const r = await run("restore.sh", ["--yes", "latest"]);
		expect(r.code).toBe(0);
		expect(fs.readFileSync(path.join(dir, "restored"), "utf8")).toBe(content);
	});
});
