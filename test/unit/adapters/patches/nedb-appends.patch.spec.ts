import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
	COMPACT_AFTER_BYTES,
	TARGET,
	keepDatafileOpen,
	probe,
	releaseDatafile
} from "../../../../adapters/patches/nedb-appends.patch";
import { outOfRange } from "../../../../adapters/patches/target";

// The NeDB moleculer-db's MemoryAdapter uses.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const Datastore = require("@seald-io/nedb") as new (opts: object) => NeDb;

interface NeDb {
	loadDatabaseAsync(): Promise<void>;
	insertAsync(doc: object): Promise<{ _id: string }>;
	updateAsync(query: object, update: object, opts?: object): Promise<unknown>;
	removeAsync(query: object, opts?: object): Promise<number>;
	findAsync(query: object): Promise<Array<Record<string, unknown>>>;
	compactDatafileAsync(): Promise<void>;
	ensureIndexAsync(opts: object): Promise<void>;
}

/** What a fresh process would read from the file. */
async function reload(filename: string) {
	const db = new Datastore({ filename });
	await db.loadDatabaseAsync();
	const docs = await db.findAsync({});
	return docs
		.map(d => ({ sku: d.sku, qty: d.qty, at: d.at }))
		.sort((a, b) => String(a.sku).localeCompare(String(b.sku)));
}

describe("nedb-appends: NeDB with its data file kept open", () => {
	let dir: string;
	beforeEach(() => {
		dir = fs.mkdtempSync(path.join(os.tmpdir(), "flashmart-nedb-"));
	});
	afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

	it("writes every insert, update and removal to the file, as NeDB itself would", async () => {
		const filename = path.join(dir, "things.db");
		const db = new Datastore({ filename });
		await db.loadDatabaseAsync();
		expect(keepDatafileOpen(db as never)).toBe(true);
		await db.ensureIndexAsync({ fieldName: "sku", unique: true });
		const at = new Date("2026-01-02T03:04:05.000Z");
		await db.insertAsync({ sku: "a", qty: 1, at });
		await db.insertAsync({ sku: "b", qty: 2 });
		await db.insertAsync({ sku: "c", qty: 3 });
		await db.updateAsync({ sku: "a" }, { $inc: { qty: 10 } });
		await db.removeAsync({ sku: "b" });
		await expect(db.insertAsync({ sku: "a" })).rejects.toMatchObject({
			errorType: "uniqueViolated"
		});
		expect(await reload(filename)).toEqual([
			{ sku: "a", qty: 11, at },
			{ sku: "c", qty: 3, at: undefined }
		]);
		releaseDatafile(db);
	});

	it("appends to the new file after a compaction replaced it", async () => {
		const filename = path.join(dir, "things.db");
		const db = new Datastore({ filename });
		await db.loadDatabaseAsync();
		keepDatafileOpen(db as never);
		await db.insertAsync({ sku: "a", qty: 1 });
		await db.updateAsync({ sku: "a" }, { $set: { qty: 2 } });
		const inodeBefore = fs.statSync(filename).ino;
		await db.compactDatafileAsync();
		expect(fs.statSync(filename).ino).not.toBe(inodeBefore);
		await db.insertAsync({ sku: "b", qty: 5 });
		expect(await reload(filename)).toEqual([
			{ sku: "a", qty: 2, at: undefined },
			{ sku: "b", qty: 5, at: undefined }
		]);
		// One line per document after the compaction, then the append: nothing went to the replaced file.
		expect(fs.readFileSync(filename, "utf8").trim().split("\n")).toHaveLength(2);
		releaseDatafile(db);
	});

	it("keeps appending after the descriptor was released", async () => {
		const filename = path.join(dir, "things.db");
		const db = new Datastore({ filename });
		await db.loadDatabaseAsync();
		keepDatafileOpen(db as never);
		await db.insertAsync({ sku: "a", qty: 1 });
		releaseDatafile(db);
		await db.insertAsync({ sku: "b", qty: 1 });
		expect((await reload(filename)).map(d => d.sku)).toEqual(["a", "b"]);
		releaseDatafile(db);
	});

	it("compacts by growth: a document rewritten 1,000 times keeps the file near its live size", async () => {
		const filename = path.join(dir, "stock.db");
		const db = new Datastore({ filename });
		await db.loadDatabaseAsync();
		expect(keepDatafileOpen(db as never)).toBe(true);
		const padding = "x".repeat(20 * 1024);
		await db.insertAsync({ sku: "hot", qty: 0, padding });
		for (let i = 1; i <= 1000; i++) await db.updateAsync({ sku: "hot" }, { $set: { qty: i } });
		// 20 MB appended in all; without compaction by growth the file would hold every version until NeDB's timer.
		await db.findAsync({}); // after any compaction queued behind the last write
		expect(fs.statSync(filename).size).toBeLessThan(COMPACT_AFTER_BYTES + 100 * 1024);
		expect(await reload(filename)).toEqual([{ sku: "hot", qty: 1000, at: undefined }]);
		releaseDatafile(db);
	});
});

describe("nedb-appends: the NeDB it was written against", () => {
	it("targets the installed NeDB", () => {
		expect(TARGET.package).toBe("@seald-io/nedb");
		expect(outOfRange(TARGET)).toBeNull();
	});

	it("finds Persistence's append (one serialized line per document) and compaction as it expects", () => {
		const found = probe();
		expect(typeof found === "string" ? found : null).toBeNull();
	});

	it("finds the persistence fields it reads on a live datastore", () => {
		const dir = fs.mkdtempSync(path.join(os.tmpdir(), "flashmart-nedb-"));
		const db = new Datastore({ filename: path.join(dir, "x.db") }) as unknown as {
			persistence: Record<string, unknown> & { modes?: { fileMode?: unknown } };
		};
		const p = db.persistence;
		expect(typeof p.filename).toBe("string");
		expect(p.inMemoryOnly).toBe(false);
		expect(typeof p.modes?.fileMode).toBe("number");
		expect(typeof p.afterSerialization).toBe("function");
		fs.rmSync(dir, { recursive: true, force: true });
	});
});

describe("nedb-appends outside its range", () => {
	afterEach(() => jest.restoreAllMocks());

	it("warns and leaves the datastore on NeDB's own appends", () => {
		const warn = jest.spyOn(process, "emitWarning").mockImplementation(() => undefined);
		const dir = fs.mkdtempSync(path.join(os.tmpdir(), "flashmart-nedb-"));
		const db = new Datastore({ filename: path.join(dir, "x.db") }) as unknown as {
			persistence: { persistNewStateAsync: unknown };
		};
		const before = db.persistence.persistNewStateAsync;
		jest.isolateModules(() => {
			jest.doMock("../../../../adapters/patches/target", () => ({
				...jest.requireActual("../../../../adapters/patches/target"),
				outOfRange: () => "@seald-io/nedb 4.0.0 is outside ~3.1.0"
			}));
			const patch =
				require("../../../../adapters/patches/nedb-appends.patch") as typeof import("../../../../adapters/patches/nedb-appends.patch");
			expect(patch.keepDatafileOpen(db as never)).toBe(false);
		});
		expect(db.persistence.persistNewStateAsync).toBe(before);
		expect(warn).toHaveBeenCalledWith(
			expect.stringContaining("outside ~3.1.0"),
			expect.objectContaining({ code: "FLASHMART_PATCH_SKIPPED" })
		);
		fs.rmSync(dir, { recursive: true, force: true });
	});
});
