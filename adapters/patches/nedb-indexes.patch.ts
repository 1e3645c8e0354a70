/**
 * NeDB (the store without MONGO_URI) updates every index of a collection on every update of a document, whether or
 * not the indexed field changed; removing a document from a key many documents share (`status: "paid"`) walks and
 * copies all of them, so each order update cost time in proportion to the orders already paid.
 *
 * This gives NeDB's index update a fast path for an indexed field the update did not change: the new version takes
 * the old one's place under the same key. Every other case goes through NeDB's own code, and a batch that fails there
 * (a unique constraint) has its fast-path swaps undone first, so NeDB's own rollback finds the index as it left it.
 *
 * It also makes a query that names one `_id` read that document through the `_id` index: NeDB otherwise picks the
 * last indexed field of the query (`{ _id, status }` read every order of that status). The whole query is still
 * matched against the candidate, so results are NeDB's own.
 */
import { createRequire } from "node:module";
import { type PatchTarget, outOfRange, replacing, unpatched, warnSkipped } from "./target";

/** lib/indexes.js, lib/datastore.js and lib/model.js are NeDB's internals, free to change in any minor release. */
export const TARGET: PatchTarget = { package: "@seald-io/nedb", range: "~3.1.0" };

interface TreeLike {
	search(key: unknown): unknown[];
}
interface IndexLike {
	fieldName: string;
	tree: TreeLike;
	update(oldDoc: unknown, newDoc?: unknown): void;
	updateMultipleDocs(pairs: Pair[]): void;
}
interface DatastoreLike {
	indexes: Record<string, { getMatching(value: unknown): unknown[] }>;
	_getRawCandidates(query: unknown): unknown[];
}
interface Pair {
	oldDoc: object;
	newDoc: object;
}
interface Internals {
	proto: IndexLike;
	datastore: DatastoreLike;
	model: {
		getDotValue(doc: object, field: string): unknown;
		compareThings(a: unknown, b: unknown): number;
	};
}

/** The internals the patch wraps, or why they are not what it was written against. */
export function probe(): Internals | string {
	try {
		const load = createRequire(require.resolve(TARGET.package));
		const Index = load("./lib/indexes") as { prototype?: IndexLike };
		const Datastore = load("./lib/datastore") as { prototype?: DatastoreLike };
		const model = load("./lib/model") as Partial<Internals["model"]>;
		const proto = Index.prototype;
		if (typeof proto?.update !== "function") return "Index.prototype.update is missing";
		if (typeof proto.updateMultipleDocs !== "function") {
			return "Index.prototype.updateMultipleDocs is missing";
		}
		// The fast path stands in for NeDB's remove-then-insert, and hands arrays to updateMultipleDocs as NeDB does.
		const update = String(unpatched(proto.update));
		if (!update.includes("this.remove(oldDoc)")) {
			return "Index.prototype.update no longer removes then inserts";
		}
		if (!update.includes("updateMultipleDocs")) {
			return "Index.prototype.update no longer delegates arrays to updateMultipleDocs";
		}
		if (typeof Datastore.prototype?._getRawCandidates !== "function") {
			return "Datastore.prototype._getRawCandidates is missing";
		}
		if (typeof model.getDotValue !== "function" || typeof model.compareThings !== "function") {
			return "model.getDotValue or model.compareThings is missing";
		}
		return { proto, datastore: Datastore.prototype, model: model as Internals["model"] };
	} catch (err) {
		return `NeDB internals not found (${(err as Error).message})`;
	}
}

let applied: boolean | null = null;

/** Patches NeDB's Index (see above); true when done (now or before), false when left as it was. */
export function fastNeDbIndexUpdates(): boolean {
	if (applied !== null) return applied;
	applied = false;
	const found = outOfRange(TARGET) ?? probe();
	if (typeof found === "string") {
		warnSkipped("nedb-indexes", found);
		return applied;
	}
	const { proto, datastore, model } = found;
	// Another copy of this module (a test's isolated registry) patched it already.
	applied = unpatched(proto.update) !== proto.update;
	if (applied) return applied;
	const rawCandidates = datastore._getRawCandidates;
	const update = proto.update;
	const updateMultipleDocs = proto.updateMultipleDocs;

	/** Puts `to` in `from`'s place if both sit under the same plain key; true when it did. */
	const swap = (index: IndexLike, from: object, to: object): boolean => {
		const before = model.getDotValue(from, index.fieldName);
		const after = model.getDotValue(to, index.fieldName);
		if (before === undefined || after === undefined) return false;
		if (Array.isArray(before) || Array.isArray(after)) return false;
		if (model.compareThings(before, after) !== 0) return false;
		const docs = index.tree.search(before);
		const at = docs.indexOf(from);
		if (at < 0) return false;
		docs[at] = to;
		return true;
	};

	proto.update = replacing(function (this: IndexLike, oldDoc: unknown, newDoc?: unknown) {
		if (Array.isArray(oldDoc)) return this.updateMultipleDocs(oldDoc as Pair[]);
		if (swap(this, oldDoc as object, newDoc as object)) return;
		update.call(this, oldDoc, newDoc);
	}, update);
	proto.updateMultipleDocs = replacing(function (this: IndexLike, pairs: Pair[]) {
		const swapped: Pair[] = [];
		const rest: Pair[] = [];
		for (const pair of pairs) (swap(this, pair.oldDoc, pair.newDoc) ? swapped : rest).push(pair);
		if (rest.length === 0) return;
		try {
			updateMultipleDocs.call(this, rest);
		} catch (err) {
			for (const pair of swapped) swap(this, pair.newDoc, pair.oldDoc);
			throw err;
		}
	}, updateMultipleDocs);
	datastore._getRawCandidates = replacing(function (this: DatastoreLike, query: unknown) {
		const id = (query as { _id?: unknown } | null)?._id;
		if ((typeof id === "string" || typeof id === "number") && this.indexes._id) {
			return this.indexes._id.getMatching(id);
		}
		return rawCandidates.call(this, query);
	}, rawCandidates);
	applied = true;
	return applied;
}
