/**
 * A caller-side cache of another service's answers, for reads whose owner announces its changes: the gateway's public
 * catalog reads (whole answers), carts' product summaries (records by id, fetched in one batch). A hit costs no round
 * trip at all; Moleculer's cacher sits on the answering node, so it saves the owner's work but not the trip there.
 *
 * Each entry has a lifetime and tags (the entities its answer shows). `invalidate(tags)` drops the entries carrying
 * any of them, `invalidate()` drops everything. A load that was running when an invalidation came answers its
 * callers but is not kept, so an answer read before a change never outlives the announcement of that change.
 * Concurrent misses of one key share one load. Failed loads (a 404, a timeout) are never kept. At most `maxEntries`
 * are held, and at most `maxBytes` by the sizes `get` is told (a cache keyed by what clients send, such as search
 * pages, must be bounded by memory, not by count); when full, the oldest go first (Map order is insertion order).
 */
export class ReadCache {
	private readonly entries = new Map<
		string,
		{ value: unknown; until: number; tags: string[]; size: number }
	>();
	private readonly byTag = new Map<string, Set<string>>();
	private readonly loading = new Map<string, Promise<unknown>>();
	private generation = 0;
	private bytes = 0;

	constructor(
		private readonly maxEntries = 10_000,
		private readonly maxBytes = Number.POSITIVE_INFINITY
	) {}

	/**
	 * The answer kept under `key`, or the one `load` gives: kept `ttlMs`, with the tags `describe` names (the
	 * entities it shows) and the size it gives (bytes, for `maxBytes`).
	 */
	async get<T>(
		key: string,
		ttlMs: number,
		load: () => Promise<T>,
		describe: (value: T) => { tags?: string[]; size?: number } = () => ({})
	): Promise<T> {
		const entry = this.entries.get(key);
		if (entry) {
			if (entry.until > Date.now()) return entry.value as T;
			this.remove(key);
		}
		const pending = this.loading.get(key);
		if (pending) return pending as Promise<T>;
		const generation = this.generation;
		const loaded = load().then(value => {
			if (generation === this.generation) {
				const { tags = [], size = 0 } = describe(value);
				this.put(key, value, ttlMs, tags, size);
			}
			return value;
		});
		this.loading.set(key, loaded);
		try {
			return await loaded;
		} finally {
			if (this.loading.get(key) === loaded) this.loading.delete(key);
		}
	}

	/**
	 * The records of `ids` by id (ids the owner does not know are absent, and never kept): the ones held as they are,
	 * the others through one `fetch` of just those.
	 */
	async getMany<T>(
		ids: string[],
		ttlMs: number,
		fetch: (missing: string[]) => Promise<Record<string, T>>
	): Promise<Record<string, T>> {
		const now = Date.now();
		const found: Record<string, T> = {};
		const missing: string[] = [];
		for (const id of new Set(ids)) {
			const entry = this.entries.get(id);
			if (entry && entry.until > now) found[id] = entry.value as T;
			else missing.push(id);
		}
		if (missing.length === 0) return found;
		const generation = this.generation;
		const fetched = await fetch(missing);
		for (const id of missing) {
			if (!Object.hasOwn(fetched, id)) continue;
			found[id] = fetched[id];
			if (generation === this.generation) this.put(id, fetched[id], ttlMs, [], 0);
		}
		return found;
	}

	/** Drops the entries carrying any of `tags`, or every entry without `tags`; loads running now are not kept. */
	invalidate(tags?: string[]): void {
		this.generation++;
		this.loading.clear();
		if (!tags) {
			this.entries.clear();
			this.byTag.clear();
			this.bytes = 0;
			return;
		}
		for (const tag of tags) {
			for (const key of this.byTag.get(tag) ?? []) this.remove(key);
		}
	}

	get size(): number {
		return this.entries.size;
	}

	/** The sizes of what is held, as `get` was told them. */
	get heldBytes(): number {
		return this.bytes;
	}

	private put(key: string, value: unknown, ttlMs: number, tags: string[], size: number): void {
		this.remove(key);
		if (size > this.maxBytes) return;
		while (
			this.entries.size > 0 &&
			(this.entries.size >= this.maxEntries || this.bytes + size > this.maxBytes)
		) {
			const oldest = this.entries.keys().next().value as string;
			this.remove(oldest);
		}
		this.entries.set(key, { value, until: Date.now() + ttlMs, tags, size });
		this.bytes += size;
		for (const tag of tags) {
			let keys = this.byTag.get(tag);
			if (!keys) this.byTag.set(tag, (keys = new Set()));
			keys.add(key);
		}
	}

	private remove(key: string): void {
		const entry = this.entries.get(key);
		if (!entry) return;
		this.entries.delete(key);
		this.bytes -= entry.size;
		for (const tag of entry.tags) {
			const keys = this.byTag.get(tag);
			keys?.delete(key);
			if (keys?.size === 0) this.byTag.delete(tag);
		}
	}
}
