/**
 * Gives a service a moleculer-db store: MongoDB (moleculer-db-adapter-mongo) when `MONGO_URI` is set, otherwise a
 * NeDB file under `DATA_DIR`. Creates the declared indexes once connected, seeds an empty collection when asked,
 * switches off moleculer-db's generated CRUD actions (they carry REST paths and no auth: each service exposes
 * its own actions instead), and adds a `health` action that `/ready` uses to check the store is reachable.
 */
import fs from "node:fs";
import path from "node:path";
import type { Context, ServiceSchema } from "moleculer";
import DbService from "moleculer-db";
import type MongoAdapterClass from "moleculer-db-adapter-mongo";
import { config } from "../config";
import { ServiceUnavailableError } from "../lib/errors";
import { keepDatafileOpen, releaseDatafile } from "../lib/nedb-appends";
import { fastNeDbIndexUpdates } from "../lib/nedb-indexes";

export interface IndexSpec {
	/** Field name → 1 | -1. NeDB indexes single fields; a compound index there indexes its first field only. */
	fields: Record<string, 1 | -1>;
	unique?: boolean;
	sparse?: boolean;
	/** MongoDB only: documents expire this many seconds after the date in the (single) field. */
	expireAfterSeconds?: number;
}

export interface DbMixinOptions {
	collection: string;
	indexes?: IndexSpec[];
	/**
	 * More collections the same service owns, each its own adapter at `this.stores[name]` (same backend as the main
	 * one), connected and indexed before the service's own `started` runs.
	 */
	stores?: Record<string, { collection: string; indexes?: IndexSpec[] }>;
	/** Called once the store is connected and indexes exist, when the collection is empty. */
	seed?: (this: DbServiceThis) => Promise<void>;
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

export interface DbServiceThis {
	adapter: DbAdapter;
	stores: Record<string, DbAdapter>;
	name: string;
	logger: { info: (...args: unknown[]) => void; warn: (...args: unknown[]) => void };
	[key: string]: unknown;
}

/** moleculer-db's generated actions, all switched off. */
const GENERATED_ACTIONS = ["find", "count", "list", "create", "insert", "get", "update", "remove"];

interface NeDbHandle {
	ensureIndex(opts: object): Promise<void>;
	setAutocompactionInterval(ms: number): void;
	stopAutocompaction(): void;
}
interface MongoHandle {
	createIndex(keys: object, opts: object): Promise<string>;
}

async function createIndexes(
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
function makeAdapter(collection: string): unknown {
	const cfg = config();
	if (cfg.mongoUri) {
		// Loaded only with MONGO_URI: the adapter and its driver are about 30 MB a node on NeDB never needs.
		// eslint-disable-next-line @typescript-eslint/no-require-imports
		const MongoAdapter = require("moleculer-db-adapter-mongo") as typeof MongoAdapterClass;
		return new MongoAdapter(cfg.mongoUri, { useUnifiedTopology: true });
	}
	fs.mkdirSync(cfg.dataDir, { recursive: true });
	return new DbService.MemoryAdapter({ filename: path.join(cfg.dataDir, `${collection}.db`) });
}

interface ConnectableAdapter extends DbAdapter {
	init(broker: unknown, service: unknown): void;
	connect(): Promise<void>;
	disconnect(): Promise<void>;
}

export function DbMixin(opts: DbMixinOptions): Partial<ServiceSchema> {
	const disabled = Object.fromEntries(GENERATED_ACTIONS.map(name => [name, false]));

	return {
		mixins: [DbService as unknown as ServiceSchema],
		adapter: makeAdapter(opts.collection),
		collection: opts.collection,
		actions: {
			...disabled,

			/** Whether this service's store answers; `/ready` and `/api/health` call it. */
			health: {
				visibility: "public",
				timeout: 2000,
				async handler(this: DbServiceThis, _ctx: Context) {
					try {
						await this.adapter.count({ query: { _id: "__health__" } });
						return { status: "up" };
					} catch (err) {
						this.logger.warn("Store health check failed", err);
						throw new ServiceUnavailableError("Store unreachable");
					}
				}
			}
		},
		async afterConnected(this: DbServiceThis) {
			this.nedbHandles = [await createIndexes(this.adapter, opts.indexes ?? [])];
			if (opts.seed && (await this.adapter.count()) === 0) {
				this.logger.info(`Seeding the empty '${opts.collection}' collection...`);
				await opts.seed.call(this);
			}
		},
		async started(this: DbServiceThis) {
			this.stores = {};
			for (const [name, spec] of Object.entries(opts.stores ?? {})) {
				const store = makeAdapter(spec.collection) as ConnectableAdapter;
				// Mongo's adapter takes its collection name from the service schema it is given.
				store.init(this.broker, { ...this, schema: { collection: spec.collection } });
				await store.connect();
				(this.nedbHandles as Array<NeDbHandle | undefined>).push(
					await createIndexes(store, spec.indexes ?? [])
				);
				this.stores[name] = store;
			}
		},
		async stopped(this: DbServiceThis) {
			for (const handle of (this.nedbHandles as Array<NeDbHandle | undefined>) ?? []) {
				handle?.stopAutocompaction();
				if (handle) releaseDatafile(handle);
			}
			for (const store of Object.values(this.stores ?? {}))
				await (store as ConnectableAdapter).disconnect();
		}
	} as unknown as Partial<ServiceSchema>;
}

/** Whether a store write failed on a unique index (NeDB's `uniqueViolated`, MongoDB's E11000). */
export function isDuplicateKeyError(err: unknown): boolean {
	const e = err as { errorType?: string; code?: number } | null;
	return !!e && (e.errorType === "uniqueViolated" || e.code === 11000);
}
