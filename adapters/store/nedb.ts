/**
 * The store without MONGO_URI: moleculer-db's MemoryAdapter, which is NeDB persisted to a file per collection under
 * DATA_DIR, with the NeDB patches of adapters/patches/ applied once its indexes exist.
 */
import fs from "node:fs";
import path from "node:path";
import DbService from "moleculer-db";
import { keepDatafileOpen, releaseDatafile } from "../patches/nedb-appends.patch";
import { fastNeDbIndexUpdates } from "../patches/nedb-indexes.patch";

/** An index as both backends take it: the fields, and the options computed once in index.ts. */
export interface IndexRequest {
	fields: Record<string, 1 | -1>;
	opts: { unique: boolean; sparse: boolean; expireAfterSeconds?: number };
}

export interface NeDbHandle {
	ensureIndex(opts: object): Promise<void>;
	setAutocompactionInterval(ms: number): void;
	stopAutocompaction(): void;
}

/** The NeDB file of `collection` under `dataDir`. */
export function nedbAdapter(dataDir: string, collection: string): unknown {
	fs.mkdirSync(dataDir, { recursive: true });
	return new DbService.MemoryAdapter({ filename: path.join(dataDir, `${collection}.db`) });
}

/** Creates the indexes (NeDB indexes single fields: a compound index indexes its first field), then tunes the file. */
export async function nedbIndexes(db: NeDbHandle, indexes: IndexRequest[]): Promise<void> {
	for (const index of indexes) {
		const [fieldName] = Object.keys(index.fields);
		await db.ensureIndex({ fieldName, ...index.opts });
	}
	fastNeDbIndexUpdates();
	// NeDB's file is append-only: compact it every 10 minutes so it does not grow without bound.
	db.setAutocompactionInterval(10 * 60 * 1000);
	keepDatafileOpen(db as never);
}

/** Stops what nedbIndexes started on a NeDB file (compaction, the kept-open file handle). */
export function closeNeDb(handle: NeDbHandle | undefined): void {
	handle?.stopAutocompaction();
	if (handle) releaseDatafile(handle);
}
