/**
 * The store port: a moleculer-db adapter per collection, MongoDB (moleculer-db-adapter-mongo) when `MONGO_URI` is
 * set, otherwise a NeDB file under `DATA_DIR`; the declared indexes; and the one error test both backends share.
 */
import fs from "node:fs";
import path from "node:path";
import DbService from "moleculer-db";
import type MongoAdapterClass from "moleculer-db-adapter-mongo";
import type { AppConfig } from "../../config";
import { keepDatafileOpen, releaseDatafile } from "../patches/nedb-appends.patch";
import { fastNeDbIndexUpdates } from "../patches/nedb-indexes.patch";

/** What the store needs of the configuration. */
export type StoreConfig = Pick<AppConfig, "mongoUri" | "dataDir">;

export interface IndexSpec {
	/** Field name → 1 | -1. NeDB indexes single fields; a compound index there indexes its first field only. */
	fields: Record<string, 1 | -1>;
	unique?: boolean;
	sparse?: boolean;
	/** MongoDB only: documents expire this many seconds after the date in the (single) field. */
	expireAfterSeconds?: number;
}

/** The parts of moleculer-db's adapter API that FlashMart uses; both adapters implement them. */
export interface DbAdapter {
	find(filters: {
		query?: object;
		limit?: number;
		offset?: number;
		sort?: string[] | string;
	}): Promise<object[]>;
	findOne(query: object): Promise<object | null>;
	findById(id: string): Promise<object | null>;
	count(filters?: { query?: object }): Promise<number>;
	insert(entity: object): Promise<object>;
	updateMany(query: object, update: object): Promise<number>;
	updateById(id: string, update: object): Promise<object | null>;
	removeMany(query: object): Promise<number>;
	removeById(id: string): Promise<object | null>;
	clear(): Promise<number>;
}

export interface NeDbHandle {
	ensureIndex(opts: object): Promise<void>;
	setAutocompactionInterval(ms: number): void;
	stopAutocompaction(): void;
}
interface MongoHandle {
	createIndex(keys: object, opts: object): Promise<string>;
}

export async function createIndexes(
	store: DbAdapter,
	indexes: IndexSpec[]
): Promise<NeDbHandle | undefined> {
	const adapter = store as unknown as { db?: NeDbHandle; collection?: MongoHandle };
	for (const index of indexes) {
		const opts = {
			unique: !!index.unique,
			sparse: !!index.sparse,
			...(index.expireAfterSeconds !== undefined
				? { expireAfterSeconds: index.expireAfterSeconds }
				: {})
		};
		if (adapter.collection) {
			await adapter.collection.createIndex(index.fields, opts);
		} else if (adapter.db) {
			const [fieldName] = Object.keys(index.fields);
			await adapter.db.ensureIndex({ fieldName, ...opts });
		}
	}
	if (adapter.db) fastNeDbIndexUpdates();
	// NeDB's file is append-only: compact it every 10 minutes so it does not grow without bound.
	adapter.db?.setAutocompactionInterval(10 * 60 * 1000);
	if (adapter.db) keepDatafileOpen(adapter.db as never);
	return adapter.db;
}

/** A moleculer-db adapter for `collection`: MongoDB when MONGO_URI is set, else a NeDB file under DATA_DIR. */
export function resolveStore(cfg: StoreConfig, collection: string): unknown {
	if (cfg.mongoUri) {
		// Loaded only with MONGO_URI: the adapter and its driver are about 30 MB a node on NeDB never needs.
		// eslint-disable-next-line @typescript-eslint/no-require-imports
		const MongoAdapter = require("moleculer-db-adapter-mongo") as typeof MongoAdapterClass;
		return new MongoAdapter(cfg.mongoUri, { useUnifiedTopology: true });
	}
	fs.mkdirSync(cfg.dataDir, { recursive: true });
	return new DbService.MemoryAdapter({ filename: path.join(cfg.dataDir, `${collection}.db`) });
}

export interface ConnectableAdapter extends DbAdapter {
	init(broker: unknown, service: unknown): void;
	connect(): Promise<void>;
	disconnect(): Promise<void>;
}

/** Stops what createIndexes started on a NeDB file (compaction, the kept-open file handle). */
export function closeNeDb(handle: NeDbHandle | undefined): void {
	handle?.stopAutocompaction();
	if (handle) releaseDatafile(handle);
}

/** Whether a store write failed on a unique index (NeDB's `uniqueViolated`, MongoDB's E11000). */
export function isDuplicateKeyError(err: unknown): boolean {
	const e = err as { errorType?: string; code?: number } | null;
	return !!e && (e.errorType === "uniqueViolated" || e.code === 11000);
}
