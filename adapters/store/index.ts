/**
 * The store port: a moleculer-db adapter per collection, MongoDB (mongo.ts) when `MONGO_URI` is set, otherwise a
 * NeDB file under `DATA_DIR` (nedb.ts); the declared indexes; and the one error test both backends share.
 */
import type { AppConfig } from "../../config";
import { type MongoHandle, mongoAdapter, mongoIndexes } from "./mongo";
import { type IndexRequest, type NeDbHandle, nedbAdapter, nedbIndexes } from "./nedb";

export { type NeDbHandle, closeNeDb } from "./nedb";

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

export async function createIndexes(
	store: DbAdapter,
	indexes: IndexSpec[]
): Promise<NeDbHandle | undefined> {
	const adapter = store as unknown as { db?: NeDbHandle; collection?: MongoHandle };
	const requests: IndexRequest[] = indexes.map(index => ({
		fields: index.fields,
		opts: {
			unique: !!index.unique,
			sparse: !!index.sparse,
			...(index.expireAfterSeconds !== undefined
				? { expireAfterSeconds: index.expireAfterSeconds }
				: {})
		}
	}));
	if (adapter.collection) await mongoIndexes(adapter.collection, requests);
	else if (adapter.db) await nedbIndexes(adapter.db, requests);
	return adapter.db;
}

/** A moleculer-db adapter for `collection`: MongoDB when MONGO_URI is set, else a NeDB file under DATA_DIR. */
export function resolveStore(cfg: StoreConfig, collection: string): unknown {
	return cfg.mongoUri ? mongoAdapter(cfg.mongoUri) : nedbAdapter(cfg.dataDir, collection);
}

export interface ConnectableAdapter extends DbAdapter {
	init(broker: unknown, service: unknown): void;
	connect(): Promise<void>;
	disconnect(): Promise<void>;
}

/** Whether a store write failed on a unique index (NeDB's `uniqueViolated`, MongoDB's E11000). */
export function isDuplicateKeyError(err: unknown): boolean {
	const e = err as { errorType?: string; code?: number } | null;
	return !!e && (e.errorType === "uniqueViolated" || e.code === 11000);
}
