/**
 * scripts/backup.sh and scripts/restore.sh for real against an S3 server that checks SigV4 (@20minutes/s3rver),
 * through FlashMart's own S3 client (dist/scripts/s3.js). Only mongodump and mongorestore are replaced, by the
 * stand-ins in test/stand-ins (MONGODUMP_CMD / MONGORESTORE_CMD): at least as strict as the real tools against the
 * compose replica set (no password on the command line, --config 0600, --oplog required and full dumps only,
 * --oplogReplay only from an --oplog archive), they write a fake archive of known collections and report counts in
 * the real tools' log lines, which is what the verification reads.
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
const STAND_INS = path.join(ROOT, "test", "stand-ins");
const NAME = /^mongodb\/flashmart-(\d{8}T\d{6}Z)\.archive\.gz$/;

let s3: EmbeddedS3;
let client: Client;
let dir: string;
let config: string;
let metricsDir: string;

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
				MONGO_CONFIG: config,
				MONGODUMP_CMD: path.join(STAND_INS, "mongodump"),
				MONGORESTORE_CMD: path.join(STAND_INS, "mongorestore"),
				FAKE_DIR: dir,
				BACKUP_LOCK_FILE: path.join(dir, "backup.lock"),
				BACKUP_METRICS_DIR: metricsDir,
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
	// The tools' config file, as docker/mongodb/secrets.sh writes it: the password in the file, not in arguments.
	config = path.join(dir, "backup.yaml");
	fs.writeFileSync(
		config,
		'uri: "mongodb://backup@127.0.0.1:27017/?authSource=admin&directConnection=true"\npassword: "b-secret"\n',
		{ mode: 0o600 }
	);
	metricsDir = path.join(dir, "textfile");
});

afterAll(async () => {
	await s3?.close();
	await stopAll();
});

beforeEach(async () => {
	await emptyBucket();
	for (const f of ["dump-args", "restore-args", "restored"])
		fs.rmSync(path.join(dir, f), { force: true });
	fs.rmSync(metricsDir, { recursive: true, force: true });
	fs.chmodSync(config, 0o600);
});

/** A stand-in archive's text: what the mongodump stand-in writes for these collections. */
function archiveOf(collections: Record<string, number>, noise = ""): string {
	return [
		"FAKE-MONGODUMP-ARCHIVE oplog",
		...Object.entries(collections).map(([ns, n]) => `${ns} ${n}`),
		`noise ${noise}`,
		""
	].join("\n");
}

/** The textfile metrics backup.sh wrote, as name → value. */
function metrics(): Record<string, number> {
	const text = fs.readFileSync(path.join(metricsDir, "flashmart_backup.prom"), "utf8");
	return Object.fromEntries(
		text
			.split("\n")
			.filter(l => l && !l.startsWith("#"))
			.map(l => [l.split(" ")[0], Number(l.split(" ")[1])])
	);
}

describe("scripts/backup.sh", () => {
	it("dumps with --config, --oplog and --archive, verifies, compresses, and uploads under a UTC timestamp", async () => {
		const content = `archive ${randomBytes(64).toString("hex")}`;
		const before = new Date();
		const r = await run("backup.sh", [], { FAKE_DUMP_CONTENT: content });
		expect(r.stderr).toBe("");
		expect(r.code).toBe(0);

		expect(fs.readFileSync(path.join(dir, "dump-args"), "utf8").split("\n")).toEqual([
			`--config=${config}`,
			"--oplog",
			"--archive",
			""
		]);
		const stored = await keys();
		expect(stored).toHaveLength(2);
		const archiveKey = stored.find(k => NAME.test(k))!;
		const stamp = archiveKey.match(NAME)?.[1];
		expect(stamp).toBeDefined();
		const made = new Date(
			stamp!.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, "$1-$2-$3T$4:$5:$6Z")
		);
		expect(made.getTime()).toBeGreaterThanOrEqual(Math.floor(before.getTime() / 1000) * 1000);
		expect(made.getTime()).toBeLessThanOrEqual(Date.now());
		expect(gunzipSync(await getObject(archiveKey)).toString()).toBe(
			archiveOf({ "flashmart.orders": 3, "flashmart.users": 2, "admin.system.users": 4 }, content)
		);
		// The counts of the app database's collections, beside the archive.
		expect(stored).toContain(archiveKey.replace(/\.archive\.gz$/, ".counts"));
		expect((await getObject(archiveKey.replace(/\.archive\.gz$/, ".counts"))).toString()).toBe(
			"orders\t3\nusers\t2\n"
		);
		// Progress for a cron log: the dump, its size, the verification, the upload, the retention summary.
		expect(r.stdout).toMatch(/\[backup\] dumping the database/);
		expect(r.stdout).toMatch(/dump done: .*B compressed, 2 collection\(s\) of flashmart/);
		expect(r.stdout).toContain("verified: 2 collection(s), 5 document(s), counts equal");
		expect(r.stdout).toContain(`uploaded ${BUCKET}/${archiveKey}`);
		expect(r.stdout).toMatch(/retention: kept 1 backup\(s\), removed 0/);
	});

	it("verifies in the scratch database only: renamed namespaces, app database only, no oplog replay", async () => {
		expect((await run("backup.sh")).code).toBe(0);
		expect(fs.readFileSync(path.join(dir, "restore-args"), "utf8").split("\n")).toEqual([
			`--config=${config}`,
			"--archive",
			"--drop",
			"--nsInclude=flashmart.*",
			"--nsFrom=flashmart.*",
			"--nsTo=flashmart_verify.*",
			""
		]);
		expect(fs.readFileSync(path.join(dir, "restored"), "utf8")).toBe(
			"flashmart_verify.orders 3\nflashmart_verify.users 2\n"
		);
	});

	it("records the last verified backup's time and size for node-exporter's textfile collector", async () => {
		const before = Math.floor(Date.now() / 1000);
		expect((await run("backup.sh")).code).toBe(0);
		const m = metrics();
		expect(m.flashmart_backup_last_success_timestamp_seconds).toBeGreaterThanOrEqual(before);
		expect(m.flashmart_backup_last_success_timestamp_seconds).toBeLessThanOrEqual(
			Date.now() / 1000
		);
		expect(m.flashmart_backup_last_size_bytes).toBeGreaterThan(20);
		expect(m.flashmart_backup_last_run_success).toBe(1);
		const text = fs.readFileSync(path.join(metricsDir, "flashmart_backup.prom"), "utf8");
		expect(text).toMatch(/^# TYPE flashmart_backup_last_success_timestamp_seconds gauge$/m);
	});

	it("fails, uploads nothing and keeps the last success's time when a collection does not restore whole", async () => {
		expect((await run("backup.sh")).code).toBe(0);
		const good = metrics().flashmart_backup_last_success_timestamp_seconds;
		await emptyBucket();
		await new Promise(res => setTimeout(res, 1100));
		const cases: Array<Record<string, string>> = [
			{ FAKE_RESTORE_LOSE: "flashmart.orders" },
			{ FAKE_RESTORE_FAIL: "flashmart.users" }
		];
		for (const env of cases) {
			const r = await run("backup.sh", [], env);
			expect(r.code).not.toBe(0);
			expect(r.stderr).toMatch(
				/verify: \d+ collection\(s\) differ between the dump and its restore/
			);
			expect(r.stderr).toMatch(
				env.FAKE_RESTORE_LOSE
					? /orders: 3 documents dumped, 2 restored, 0 failed/
					: /users: 2 documents dumped, 1 restored, 1 failed/
			);
			expect(await keys()).toEqual([]);
			expect(metrics().flashmart_backup_last_success_timestamp_seconds).toBe(good);
			expect(metrics().flashmart_backup_last_run_success).toBe(0);
		}
	});

	it("refuses a dump without any collection of the app database", async () => {
		const r = await run("backup.sh", [], { FAKE_COLLECTIONS: "admin.system.users=4" });
		expect(r.code).not.toBe(0);
		expect(r.stderr).toMatch(/the dump has no collection of flashmart/);
		expect(await keys()).toEqual([]);
		expect(metrics().flashmart_backup_last_success_timestamp_seconds).toBeUndefined();
	});

	it("never puts a password on a command line: a config readable by others is refused", async () => {
		fs.chmodSync(config, 0o644);
		const r = await run("backup.sh");
		expect(r.code).not.toBe(0);
		expect(r.stderr).toMatch(/backup\.yaml has mode 644: it holds a password, make it 0600/);
		expect(fs.existsSync(path.join(dir, "dump-args"))).toBe(false);
	});

	it("the stand-ins are as strict as the real tools against the replica set (the checks can fail)", async () => {
		const tool = (name: string, args: string[], input = ""): Promise<Run> =>
			new Promise((resolve, reject) => {
				const child = spawn(path.join(STAND_INS, name), args, {
					env: { PATH: process.env.PATH, FAKE_DIR: dir }
				});
				let stdout = "";
				let stderr = "";
				child.stdout.on("data", d => (stdout += d));
				child.stderr.on("data", d => (stderr += d));
				child.on("error", reject);
				child.on("close", code => resolve({ code, stdout, stderr }));
				child.stdin.end(input);
			});
		const refusals: Array<[string, string[], RegExp]> = [
			[
				"mongodump",
				["--uri=mongodb://u:pw@h/?authSource=admin", "--oplog", "--archive"],
				/password in --uri/
			],
			[
				"mongodump",
				[`--config=${config}`, "--password=pw", "--oplog", "--archive"],
				/password on the command line/
			],
			["mongodump", [`--config=${config}`, "--archive"], /without --oplog/],
			[
				"mongodump",
				[`--config=${config}`, "--oplog", "--db=flashmart", "--archive"],
				/only supported on full dumps/
			],
			["mongodump", ["--oplog", "--archive"], /no --config/],
			[
				"mongorestore",
				[`--config=${config}`, "--archive", "--oplogReplay", "--nsFrom=a.*", "--nsTo=b.*"],
				/oplogReplay with --nsFrom/
			],
			[
				"mongorestore",
				[`--config=${config}`, "--archive", "--nsFrom=a.*"],
				/Different number of nsFrom and nsTo/
			]
		];
		for (const [name, args, message] of refusals) {
			const r = await tool(name, args, archiveOf({ "flashmart.orders": 1 }));
			expect({ name, args, code: r.code }).toEqual({ name, args, code: 1 });
			expect(r.stderr).toMatch(message);
		}
		const noOplog = await tool(
			"mongorestore",
			[`--config=${config}`, "--archive", "--oplogReplay"],
			"FAKE-MONGODUMP-ARCHIVE plain\n"
		);
		expect(noOplog.stderr).toMatch(/no oplog file to replay/);
	});

	it("removes backups older than BACKUP_RETENTION_DAYS by the date in their name, and their counts, nothing else", async () => {
		const old = [keyOf(30), keyOf(15)];
		const recent = [keyOf(13), keyOf(1)];
		const foreign = [
			"mongodb/notes.txt",
			"mongodb/other-20200101T000000Z.archive.gz",
			"elsewhere.gz"
		];
		for (const k of [...old, ...recent, ...foreign]) await putObject(k, gzipSync("x"));
		await putObject(old[0].replace(/\.archive\.gz$/, ".counts"), Buffer.from("orders\t1\n"));

		const r = await run("backup.sh", [], {
			FAKE_DUMP_CONTENT: "fresh archive",
			BACKUP_RETENTION_DAYS: "14"
		});
		expect(r.code).toBe(0);
		const after = await keys();
		for (const k of old) expect(after).not.toContain(k);
		expect(after).not.toContain(old[0].replace(/\.archive\.gz$/, ".counts"));
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
		expect(gunzipSync(await getObject(after[0])).toString()).toContain("noise newest archive");
	});

	it("uploads nothing and exits non-zero when the dump fails, showing mongodump's error", async () => {
		const r = await run("backup.sh", [], { FAKE_DUMP_CONTENT: "x", FAKE_DUMP_FAIL: "1" });
		expect(r.code).not.toBe(0);
		expect(r.stderr).toMatch(/connection refused/);
		expect(r.stderr).toMatch(/the dump failed/);
		expect(await keys()).toEqual([]);
		expect(metrics().flashmart_backup_last_run_success).toBe(0);
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

	it("refuses to run without MONGO_CONFIG", async () => {
		const r = await run("backup.sh", [], { MONGO_CONFIG: "" });
		expect(r.code).not.toBe(0);
		expect(r.stderr).toMatch(/MONGO_CONFIG is not set/);
	});
});

describe("scripts/restore.sh", () => {
	const older = keyOf(3);
	const newer = keyOf(1);
	const counts = (k: string) => k.replace(/\.archive\.gz$/, ".counts");

	beforeEach(async () => {
		await putObject(older, gzipSync(archiveOf({ "flashmart.orders": 7, "flashmart.carts": 1 })));
		await putObject(counts(older), Buffer.from("carts\t1\norders\t7\n"));
		await putObject(newer, gzipSync(archiveOf({ "flashmart.orders": 9, "admin.system.users": 4 })));
		await putObject(counts(newer), Buffer.from("orders\t9\n"));
		await putObject("mongodb/notes.txt", Buffer.from("not a backup"));
	});

	it("lists the backups oldest first (not their counts)", async () => {
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

	it("restores the latest backup with --yes: the app database only, dropping what it replaces, replaying the oplog", async () => {
		const r = await run("restore.sh", ["--yes"]);
		expect(r.stderr).toBe("");
		expect(r.code).toBe(0);
		expect(fs.readFileSync(path.join(dir, "restored"), "utf8")).toBe("flashmart.orders 9\n");
		expect(fs.readFileSync(path.join(dir, "restore-args"), "utf8").split("\n")).toEqual([
			`--config=${config}`,
			"--archive",
			"--drop",
			"--nsInclude=flashmart.*",
			"--oplogReplay",
			""
		]);
		expect(r.stdout).toContain(
			"9 document(s) restored successfully. 0 document(s) failed to restore."
		);
		expect(r.stdout).toContain(`done: restored ${BUCKET}/${newer}`);
	});

	it("restores with MONGO_RESTORE_CONFIG when set (root in compose: the oplog replay needs it)", async () => {
		const rootConfig = path.join(dir, "restore.yaml");
		fs.writeFileSync(rootConfig, fs.readFileSync(config), { mode: 0o600 });
		const r = await run("restore.sh", ["--yes"], { MONGO_RESTORE_CONFIG: rootConfig });
		expect(r.code).toBe(0);
		expect(fs.readFileSync(path.join(dir, "restore-args"), "utf8")).toContain(
			`--config=${rootConfig}\n`
		);
	});

	it("restores a named backup, by key or file name; RESTORE_CONFIRM=yes confirms for cron", async () => {
		let r = await run("restore.sh", ["--yes", older]);
		expect(r.code).toBe(0);
		expect(fs.readFileSync(path.join(dir, "restored"), "utf8")).toBe(
			"flashmart.orders 7\nflashmart.carts 1\n"
		);

		fs.rmSync(path.join(dir, "restored"));
		r = await run("restore.sh", [path.basename(older)], { RESTORE_CONFIRM: "yes" });
		expect(r.code).toBe(0);
		expect(fs.readFileSync(path.join(dir, "restored"), "utf8")).toBe(
			"flashmart.orders 7\nflashmart.carts 1\n"
		);
	});

	it("--verify restores a backup into the scratch database and compares its counts, without --yes", async () => {
		const r = await run("restore.sh", ["--verify", path.basename(older)]);
		expect(r.stderr).toBe("");
		expect(r.code).toBe(0);
		expect(fs.readFileSync(path.join(dir, "restored"), "utf8")).toBe(
			"flashmart_verify.orders 7\nflashmart_verify.carts 1\n"
		);
		expect(r.stdout).toContain("verified: 2 collection(s), 8 document(s), counts equal");
		expect(r.stdout).toContain(`done: ${BUCKET}/${older} restores whole`);
	});

	it("--verify fails when a collection comes back short, or is missing from the archive", async () => {
		let r = await run("restore.sh", ["--verify"], { FAKE_RESTORE_LOSE: "flashmart.orders" });
		expect(r.code).not.toBe(0);
		expect(r.stderr).toMatch(/orders: 9 documents dumped, 8 restored, 0 failed/);

		await putObject(counts(newer), Buffer.from("orders\t9\nusers\t3\n"));
		r = await run("restore.sh", ["--verify"]);
		expect(r.code).not.toBe(0);
		expect(r.stderr).toMatch(/users: 3 documents dumped, none restored/);
	});

	it("--verify refuses a backup without counts", async () => {
		await client.removeObject(BUCKET, counts(newer));
		const r = await run("restore.sh", ["--verify"]);
		expect(r.code).not.toBe(0);
		expect(r.stderr).toMatch(/no counts for/);
		expect(fs.existsSync(path.join(dir, "restore-args"))).toBe(false);
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

	it("restores what backup.sh stored (a round trip), and verifies it again", async () => {
		const content = `round trip ${randomBytes(16).toString("hex")}`;
		expect((await run("backup.sh", [], { FAKE_DUMP_CONTENT: content })).code).toBe(0);
		let r = await run("restore.sh", ["--verify", "latest"]);
		expect(r.code).toBe(0);
		r = await run("restore.sh", ["--yes", "latest"]);
		expect(r.code).toBe(0);
		expect(fs.readFileSync(path.join(dir, "restored"), "utf8")).toBe(
			"flashmart.orders 3\nflashmart.users 2\n"
		);
	});
});
