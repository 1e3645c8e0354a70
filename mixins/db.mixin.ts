/**
 * Gives a service a moleculer-db store: MongoDB (moleculer-db-adapter-mongo) when `MONGO_URI` is set, otherwise a
 * NeDB file under `DATA_DIR`. Creates the declared indexes once connected, seeds an empty collection when asked,
 * switches off moleculer-db's generated CRUD actions (they carry REST paths and no auth: each service exposes
 * its own actions instead), and adds a `health` action that `/ready` uses to check the store is reachable.
 */
import type { Context, ServiceSchema } from "moleculer";
import DbService from "moleculer-db";
import {
	type ConnectableAdapter,
	type DbAdapter,
	type IndexSpec,
	type NeDbHandle,
	type StoreConfig,
	closeNeDb,
	createIndexes,
	resolveStore
} from "../adapters/store";
import { ServiceUnavailableError } from "../lib/errors";

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

export interface DbServiceThis {
	adapter: DbAdapter;
	stores: Record<string, DbAdapter>;
	name: string;
	logger: { info: (...args: unknown[]) => void; warn: (...args: unknown[]) => void };
	[key: string]: unknown;
}

/** moleculer-db's generated actions, all switched off. */
const GENERATED_ACTIONS = ["find", "count", "list", "create", "insert", "get", "update", "remove"];

export function DbMixin(cfg: StoreConfig, opts: DbMixinOptions): Partial<ServiceSchema> {
	const disabled = Object.fromEntries(GENERATED_ACTIONS.map(name => [name, false]));

	return {
		mixins: [DbService as unknown as ServiceSchema],
		adapter: resolveStore(cfg, opts.collection),
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
				const store = resolveStore(cfg, spec.collection) as ConnectableAdapter;
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
				closeNeDb(handle);
			}
			for (const store of Object.values(this.stores ?? {}))
				await (store as ConnectableAdapter).disconnect();
		}
	} as unknown as Partial<ServiceSchema>;
}
