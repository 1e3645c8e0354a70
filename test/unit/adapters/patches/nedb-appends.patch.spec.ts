import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { keepDatafileOpen, releaseDatafile } from "../../../../adapters/patches/nedb-appends.patch";

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
		keepDatafileOpen(db as never);
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
});
