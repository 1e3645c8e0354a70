/**
 * NeDB's index update with a fast path for documents whose indexed field did not change, and queries naming one
 * `_id` read through the `_id` index: finds, sorts, unique constraints and rollbacks must be exactly NeDB's own.
 */
import path from "node:path";
import {
	TARGET,
	fastNeDbIndexUpdates,
	probe
} from "../../../../adapters/patches/nedb-indexes.patch";
import { outOfRange } from "../../../../adapters/patches/target";

// The NeDB moleculer-db's MemoryAdapter uses.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const Datastore = require("@seald-io/nedb") as new (opts: object) => NeDb;

interface NeDb {
	insertAsync(doc: object): Promise<{ _id: string }>;
	updateAsync(query: object, update: object, opts?: object): Promise<{ numAffected: number }>;
	findAsync(query: object): Promise<Array<Record<string, unknown>>>;
	countAsync(query: object): Promise<number>;
	ensureIndexAsync(opts: object): Promise<void>;
	getAllData(): Array<Record<string, unknown>>;
	_getRawCandidates(query: object): unknown[];
	indexes: Record<string, { getAll(): Array<Record<string, unknown>> }>;
}

async function orders() {
	const db = new Datastore({ inMemoryOnly: true });
	await db.ensureIndexAsync({ fieldName: "status" });
	await db.ensureIndexAsync({ fieldName: "ref", unique: true });
	await db.ensureIndexAsync({ fieldName: "pending", sparse: true });
	for (let i = 0; i < 50; i++) {
		await db.insertAsync({ _id: `o${i}`, ref: `r${i}`, status: i < 40 ? "paid" : "pending", n: 0 });
	}
	return db;
}

/** Every index holds exactly the documents the datastore holds (the same objects), once each. */
function expectIndexesConsistent(db: NeDb) {
	const all = db.getAllData();
	for (const [field, index] of Object.entries(db.indexes)) {
		const held = index.getAll();
		const expected = field === "pending" ? all.filter(d => d.pending !== undefined) : all;
		expect(held.length).toBe(expected.length);
		for (const doc of expected) expect(held.filter(d => d === doc).length).toBe(1);
	}
}

describe("fastNeDbIndexUpdates", () => {
	beforeAll(() => expect(fastNeDbIndexUpdates()).toBe(true));

	it("keeps finds by an unchanged indexed key right after updates of other fields", async () => {
		const db = await orders();
		await db.updateAsync({ status: "paid" }, { $inc: { n: 1 } }, { multi: true });
		await db.updateAsync({ _id: "o3" }, { $set: { note: "x" } });
		const paid = await db.findAsync({ status: "paid" });
		expect(paid.length).toBe(40);
		expect(paid.every(d => d.n === 1)).toBe(true);
		expect((await db.findAsync({ status: "paid", note: "x" })).map(d => d._id)).toEqual(["o3"]);
		expectIndexesConsistent(db);
	});

	it("moves a document whose indexed key changed, as NeDB does", async () => {
		const db = await orders();
		await db.updateAsync({ _id: "o41" }, { $set: { status: "paid", pending: 1 } });
		await db.updateAsync({ _id: "o41" }, { $unset: { pending: true } });
		expect(await db.countAsync({ status: "paid" })).toBe(41);
		expect(await db.countAsync({ status: "pending" })).toBe(9);
		expect(await db.countAsync({ pending: { $gt: 0 } })).toBe(0);
		expectIndexesConsistent(db);
	});

	it("refuses an update that breaks a unique key and leaves every index as it was", async () => {
		const db = await orders();
		// A multi-update: most documents keep their keys (fast path), one would take another's unique ref.
		await expect(
			db.updateAsync({ status: "pending" }, { $set: { ref: "r1" } }, { multi: true })
		).rejects.toMatchObject({ errorType: "uniqueViolated" });
		await expect(
			db.updateAsync({ _id: "o45" }, { $set: { ref: "r2", n: 5 } })
		).rejects.toMatchObject({ errorType: "uniqueViolated" });
		expect((await db.findAsync({ ref: "r45" })).map(d => [d._id, d.n])).toEqual([["o45", 0]]);
		expect(await db.countAsync({ status: "pending" })).toBe(10);
		expectIndexesConsistent(db);
	});

	it("reads one candidate for a query naming one _id, and matches the whole query against it", async () => {
		const db = await orders();
		// Without the fast path NeDB reads every paid order through the status index (the last indexed field).
		expect(db._getRawCandidates({ _id: "o3", status: "paid" })).toHaveLength(1);
		expect(db._getRawCandidates({ status: "paid" })).toHaveLength(40);
		expect(db._getRawCandidates({ _id: { $in: ["o1", "o2"] }, status: "paid" })).toHaveLength(40);
		expect(await db.countAsync({ _id: "o3", status: "pending" })).toBe(0);
		expect(await db.countAsync({ _id: "o3", status: "paid" })).toBe(1);
		expect(await db.countAsync({ _id: "nope", status: "paid" })).toBe(0);
		const moved = await db.updateAsync(
			{ _id: "o42", status: "pending" },
			{ $set: { status: "paid" } }
		);
		expect(moved.numAffected).toBe(1);
		expect(
			(await db.updateAsync({ _id: "o42", status: "pending" }, { $set: { n: 9 } })).numAffected
		).toBe(0);
		expect(await db.countAsync({ status: "paid" })).toBe(41);
		expectIndexesConsistent(db);
	});
});

describe("nedb-indexes: the NeDB it was written against", () => {
	it("targets the installed NeDB", () => {
		expect(TARGET.package).toBe("@seald-io/nedb");
		expect(outOfRange(TARGET)).toBeNull();
	});

	it("finds Index.update/updateMultipleDocs, Datastore._getRawCandidates and the model helpers as it expects", () => {
		const found = probe();
		expect(typeof found === "string" ? found : null).toBeNull();
	});

	it("finds the index tree's search and getMatching on a live datastore", async () => {
		const db = new Datastore({ inMemoryOnly: true }) as unknown as {
			indexes: Record<string, { tree?: { search?: unknown }; getMatching?: unknown }>;
		};
		expect(typeof db.indexes._id.tree?.search).toBe("function");
		expect(typeof db.indexes._id.getMatching).toBe("function");
	});

	it("patches the NeDB moleculer-db's MemoryAdapter loads", () => {
		const fromDb = require.resolve("@seald-io/nedb", {
			paths: [path.dirname(require.resolve("moleculer-db"))]
		});
		expect(fromDb).toBe(require.resolve("@seald-io/nedb"));
	});
});

describe("nedb-indexes outside its range", () => {
	afterEach(() => jest.restoreAllMocks());

	it("warns and leaves NeDB as it is", () => {
		const warn = jest.spyOn(process, "emitWarning").mockImplementation(() => undefined);
		jest.isolateModules(() => {
			jest.doMock("../../../../adapters/patches/target", () => ({
				...jest.requireActual("../../../../adapters/patches/target"),
				outOfRange: () => "@seald-io/nedb 4.0.0 is outside ~3.1.0"
			}));
			const patch =
				require("../../../../adapters/patches/nedb-indexes.patch") as typeof import("../../../../adapters/patches/nedb-indexes.patch");
			// The prototypes the patch would change (NeDB as Node loads it, not a jest module copy).
			const { proto, datastore } = patch.probe() as Exclude<ReturnType<typeof probe>, string>;
			const before = [proto.update, proto.updateMultipleDocs, datastore._getRawCandidates];
			expect(patch.fastNeDbIndexUpdates()).toBe(false);
			expect([proto.update, proto.updateMultipleDocs, datastore._getRawCandidates]).toEqual(before);
		});
		expect(warn).toHaveBeenCalledWith(
			expect.stringContaining("outside ~3.1.0"),
			expect.objectContaining({ code: "FLASHMART_PATCH_SKIPPED" })
		);
	});
});
