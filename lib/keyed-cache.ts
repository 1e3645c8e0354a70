/**
 * A caller-side cache of records by id, for reads another service owns and announces changes of (e.g. carts asking
 * products for the name, price and currency of the products in a cart, twice per purchase). Moleculer's cacher sits
 * on the answering node, so it saves the answer's work but not the round trip; this saves the round trip.
 *
 * Entries live `ttlMs` at most and all go at once on `clear()`, which the owner's change announcement triggers (the
 * same broadcast that empties the owner's own cache). A fetch that began before a `clear()` answers its caller but is
 * not kept, so a record read before a change never outlives the announcement of that change. Ids the owner does not
 * know are never cached: a product created later is seen at once. At most `maxEntries` are kept (all dropped when
 * full, which a catalog of that size only meets after a change storm).
 */
export class KeyedCache<T> {
	private readonly entries = new Map<string, { value: T; until: number }>();
	private generation = 0;

	constructor(
		private readonly ttlMs: number,
		private readonly maxEntries = 10_000
	) {}

	/** The records of `ids` (unknown ids are absent): cached ones as they are, the others through one `fetch`. */
	async getMany(
		ids: string[],
		fetch: (missing: string[]) => Promise<Record<string, T>>
	): Promise<Record<string, T>> {
		const now = Date.now();
		const found: Record<string, T> = {};
		const missing: string[] = [];
		for (const id of new Set(ids)) {
			const entry = this.entries.get(id);
			if (entry && entry.until > now) found[id] = entry.value;
			else missing.push(id);
		}
		if (missing.length === 0) return found;
		const generation = this.generation;
		const fetched = await fetch(missing);
		const keep = generation === this.generation;
		if (keep && this.entries.size + missing.length > this.maxEntries) this.entries.clear();
		const until = Date.now() + this.ttlMs;
		for (const id of missing) {
			if (!Object.hasOwn(fetched, id)) continue;
			found[id] = fetched[id];
			if (keep) this.entries.set(id, { value: fetched[id], until });
		}
		return found;
	}

	/** Forgets everything, including what fetches in flight bring back. */
	clear(): void {
		this.generation++;
		this.entries.clear();
	}

	get size(): number {
		return this.entries.size;
	}
}
