/**
 * The store with MONGO_URI: moleculer-db-adapter-mongo, loaded only then (the adapter and its driver are a large
 * load a node on NeDB never needs).
 */
import type MongoAdapterClass from "moleculer-db-adapter-mongo";
import type { IndexRequest } from "./nedb";

export interface MongoHandle {
	createIndex(keys: object, opts: object): Promise<string>;
}

/** A MongoDB adapter on `uri` (moleculer-db gives it its collection). */
export function mongoAdapter(uri: string): unknown {
	// eslint-disable-next-line @typescript-eslint/no-require-imports
	const MongoAdapter = require("moleculer-db-adapter-mongo") as typeof MongoAdapterClass;
	return new MongoAdapter(uri, { useUnifiedTopology: true });
}

/** Creates the indexes on the collection (a TTL index expires documents `expireAfterSeconds` after its date field). */
export async function mongoIndexes(
	collection: MongoHandle,
	indexes: IndexRequest[]
): Promise<void> {
	for (const index of indexes) await collection.createIndex(index.fields, index.opts);
}
