/**
 * NeDB (the store without MONGO_URI) updates every index of a collection on every update of a document: it removes
 * the old version from each index and inserts the new one, whether or not the indexed field changed. Removing one
 * document from a key that many documents share (`status: "paid"` of every paid order) walks all of them and copies
 * the rest into a new array: every order update cost time in proportion to the orders already paid, the orders
 * node's largest NeDB cost in the bench profile (`delete` in the AVL tree) and a steady stream of garbage.
 *
 * This gives NeDB's index update a fast path for the common case, an indexed field the update did not change: the new
 * version takes the old one's place under the same key (one identity search through the key's documents, no copy).
 * Every other case (the key changed, array keys, a sparse index's missing field) goes through NeDB's own code, and a
 * batch that fails there (a unique constraint) has its fast-path swaps undone before the error goes up, so NeDB's
 * own rollback finds the index as it left it.
 *
 * It also makes a query that names one `_id` read that document. NeDB picks the index it reads candidates from by the
 * last indexed field with a plain value in the query's key order, so `{ _id, status: "pending_payment" }` read every
 * pending order through the status index and matched each: a conditional update of one document cost time in
 * proportion to the documents sharing its status (0.68 ms against 0.07 ms at 5 000 of them). The `_id` index gives the
 * one candidate; the whole query is still matched against it, so results are NeDB's own.
 *
 * Applied once per process; if NeDB does not look as expected (another version), nothing is changed.
 */
import { createRequire } from "node:module";

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

let applied: boolean | null = null;

/** Patches NeDB's Index (see above); true when done (now or before), false when left as it was. */
export function fastNeDbIndexUpdates(): boolean {
	if (applied !== null) return applied;
	applied = false;
	try {
		const load = createRequire(require.resolve("@seald-io/nedb"));
		const Index = load("./lib/indexes") as { prototype: IndexLike };
		const model = load("./lib/model") as {
			getDotValue(doc: object, field: string): unknown;
			compareThings(a: unknown, b: unknown): number;
		};
		const proto = Index.prototype;
		if (
			typeof proto.update !== "function" ||
			typeof proto.updateMultipleDocs !== "function" ||
			!String(proto.update).includes("this.remove(oldDoc)")
		) {
			return false;
		}
		const Datastore = load("./lib/datastore") as { prototype: DatastoreLike };
		const rawCandidates = Datastore.prototype._getRawCandidates;
		if (typeof rawCandidates !== "function") return false;
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

		proto.update = function (this: IndexLike, oldDoc: unknown, newDoc?: unknown) {
			if (Array.isArray(oldDoc)) return this.updateMultipleDocs(oldDoc as Pair[]);
			if (swap(this, oldDoc as object, newDoc as object)) return;
			update.call(this, oldDoc, newDoc);
		};
		proto.updateMultipleDocs = function (this: IndexLike, pairs: Pair[]) {
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
		};
		Datastore.prototype._getRawCandidates = function (this: DatastoreLike, query: unknown) {
			const id = (query as { _id?: unknown } | null)?._id;
			if ((typeof id === "string" || typeof id === "number") && this.indexes._id) {
				return this.indexes._id.getMatching(id);
			}
			return rawCandidates.call(this, query);
		};
		applied = true;
	} catch {
		// Another NeDB layout: its own index updates stay.
	}
	return applied;
}
