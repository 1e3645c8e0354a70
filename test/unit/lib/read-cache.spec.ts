/** The caller-side cache of another service's answers: kept until a change is announced, and a clear that wins. */
import { ReadCache } from "../../../lib/read-cache";

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

describe("ReadCache.getMany", () => {
	const owner = (records: Record<string, number>) => {
		const asked: string[][] = [];
		const fetch = async (ids: string[]) => {
			asked.push(ids);
			return Object.fromEntries(ids.filter(id => id in records).map(id => [id, records[id]]));
		};
		return { asked, fetch };
	};

	it("fetches only the ids it does not hold, once each, and never keeps unknown ids", async () => {
		const cache = new ReadCache();
		const { asked, fetch } = owner({ a: 1, b: 2 });
		expect(await cache.getMany(["a", "a", "x"], 60_000, fetch)).toEqual({ a: 1 });
		expect(await cache.getMany(["a", "b", "x"], 60_000, fetch)).toEqual({ a: 1, b: 2 });
		expect(await cache.getMany(["b", "a"], 60_000, fetch)).toEqual({ a: 1, b: 2 });
		expect(asked).toEqual([
			["a", "x"],
			["b", "x"]
		]);
		expect(cache.size).toBe(2);
	});

	it("asks again after invalidate() and after the entries' lifetime", async () => {
		const records = { a: 1 };
		const { asked, fetch } = owner(records);
		const cache = new ReadCache();
		await cache.getMany(["a"], 30, fetch);
		records.a = 2;
		cache.invalidate();
		expect(await cache.getMany(["a"], 30, fetch)).toEqual({ a: 2 });
		records.a = 3;
		await sleep(50);
		expect(await cache.getMany(["a"], 30, fetch)).toEqual({ a: 3 });
		expect(asked.length).toBe(3);
	});

	it("does not keep what a fetch in flight during invalidate() brings back", async () => {
		const cache = new ReadCache();
		let release!: () => void;
		const slow = cache.getMany(["a"], 60_000, async () => {
			await new Promise<void>(resolve => (release = resolve));
			return { a: 1 };
		});
		cache.invalidate();
		release();
		expect(await slow).toEqual({ a: 1 }); // the caller still gets its answer
		expect(cache.size).toBe(0);
	});

	it("stays within maxEntries, dropping the oldest first", async () => {
		const cache = new ReadCache(3);
		const { asked, fetch } = owner({ a: 1, b: 2, c: 3, d: 4 });
		await cache.getMany(["a", "b", "c"], 60_000, fetch);
		await cache.getMany(["d"], 60_000, fetch);
		expect(cache.size).toBe(3);
		expect(await cache.getMany(["b", "c", "d"], 60_000, fetch)).toEqual({ b: 2, c: 3, d: 4 });
		expect(asked).toEqual([["a", "b", "c"], ["d"]]);
	});
});

describe("ReadCache.get", () => {
	it("answers a held answer without loading, until its lifetime ends", async () => {
		const cache = new ReadCache();
		let loads = 0;
		const load = async () => ({ n: ++loads });
		expect(await cache.get("k", 40, load)).toEqual({ n: 1 });
		expect(await cache.get("k", 40, load)).toEqual({ n: 1 });
		await sleep(60);
		expect(await cache.get("k", 40, load)).toEqual({ n: 2 });
	});

	it("lets concurrent misses of one key share one load", async () => {
		const cache = new ReadCache();
		let loads = 0;
		const load = async () => {
			loads++;
			await sleep(20);
			return "answer";
		};
		const answers = await Promise.all(
			Array.from({ length: 10 }, () => cache.get("k", 60_000, load))
		);
		expect(answers).toEqual(Array(10).fill("answer"));
		expect(loads).toBe(1);
	});

	it("never keeps a failed load, and gives its error to every caller waiting on it", async () => {
		const cache = new ReadCache();
		let loads = 0;
		const failing = async () => {
			loads++;
			await sleep(10);
			throw Object.assign(new Error("Product not found"), { code: 404 });
		};
		const both = await Promise.allSettled([
			cache.get("k", 60_000, failing),
			cache.get("k", 60_000, failing)
		]);
		expect(both.map(r => r.status)).toEqual(["rejected", "rejected"]);
		expect(loads).toBe(1);
		expect(cache.size).toBe(0);
		expect(await cache.get("k", 60_000, async () => "created since")).toBe("created since");
	});

	it("drops exactly the entries tagged with an invalidated tag", async () => {
		const cache = new ReadCache();
		const tags = (v: { tags: string[] }) => ({ tags: v.tags });
		await cache.get("p1", 60_000, async () => ({ tags: ["p1"] }), tags);
		await cache.get("slug-of-p1", 60_000, async () => ({ tags: ["p1"] }), tags);
		await cache.get("p2", 60_000, async () => ({ tags: ["p2"] }), tags);
		await cache.get("page", 60_000, async () => ({ tags: ["any"] }), tags);
		await cache.get("categories", 60_000, async () => ({ tags: [] as string[] }), tags);
		cache.invalidate(["p1", "any"]);
		expect(cache.size).toBe(2);
		let reloaded = 0;
		const again = async () => {
			reloaded++;
			return { tags: [] as string[] };
		};
		for (const key of ["p2", "categories"]) await cache.get(key, 60_000, again, tags);
		expect(reloaded).toBe(0);
		for (const key of ["p1", "slug-of-p1", "page"]) await cache.get(key, 60_000, again, tags);
		expect(reloaded).toBe(3);
	});

	it("does not keep a load that was running when an invalidation came, and a later load of the key still is", async () => {
		const cache = new ReadCache();
		let release!: () => void;
		const slow = cache.get("k", 60_000, async () => {
			await new Promise<void>(resolve => (release = resolve));
			return "before the change";
		});
		cache.invalidate(["unrelated"]);
		const fresh = cache.get("k", 60_000, async () => "after the change");
		release();
		expect(await slow).toBe("before the change");
		expect(await fresh).toBe("after the change");
		expect(await cache.get("k", 60_000, async () => "not asked")).toBe("after the change");
	});

	it("holds at most maxBytes of answers, dropping the oldest first, and never one larger than that", async () => {
		const cache = new ReadCache(10_000, 100);
		const sized = (n: number) => ({ tags: [], size: n });
		await cache.get("a", 60_000, async () => 40, sized);
		await cache.get("b", 60_000, async () => 40, sized);
		expect(cache.heldBytes).toBe(80);
		await cache.get("c", 60_000, async () => 40, sized);
		expect([cache.size, cache.heldBytes]).toEqual([2, 80]);
		await cache.get("huge", 60_000, async () => 500, sized);
		expect([cache.size, cache.heldBytes]).toEqual([2, 80]);
		let loads = 0;
		const count = async () => {
			loads++;
			return 40;
		};
		for (const key of ["b", "c"]) await cache.get(key, 60_000, count, sized);
		expect(loads).toBe(0);
		await cache.get("a", 60_000, count, sized);
		expect(loads).toBe(1);
		cache.invalidate();
		expect(cache.heldBytes).toBe(0);
	});
});
