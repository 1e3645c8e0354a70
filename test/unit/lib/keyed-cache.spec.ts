/** The caller-side cache carts keeps of product summaries: one fetch for what is missing, and a clear that wins. */
import { KeyedCache } from "../../../lib/keyed-cache";

describe("KeyedCache", () => {
	const owner = (records: Record<string, number>) => {
		const asked: string[][] = [];
		const fetch = async (ids: string[]) => {
			asked.push(ids);
			return Object.fromEntries(ids.filter(id => id in records).map(id => [id, records[id]]));
		};
		return { asked, fetch };
	};

	it("fetches only the ids it does not hold, once each, and never keeps unknown ids", async () => {
		const cache = new KeyedCache<number>(60_000);
		const { asked, fetch } = owner({ a: 1, b: 2 });
		expect(await cache.getMany(["a", "a", "x"], fetch)).toEqual({ a: 1 });
		expect(await cache.getMany(["a", "b", "x"], fetch)).toEqual({ a: 1, b: 2 });
		expect(await cache.getMany(["b", "a"], fetch)).toEqual({ a: 1, b: 2 });
		expect(asked).toEqual([
			["a", "x"],
			["b", "x"]
		]);
		expect(cache.size).toBe(2);
	});

	it("asks again after clear() and after the entries' lifetime", async () => {
		const records = { a: 1 };
		const { asked, fetch } = owner(records);
		const cache = new KeyedCache<number>(30);
		await cache.getMany(["a"], fetch);
		records.a = 2;
		cache.clear();
		expect(await cache.getMany(["a"], fetch)).toEqual({ a: 2 });
		records.a = 3;
		await new Promise(resolve => setTimeout(resolve, 50));
		expect(await cache.getMany(["a"], fetch)).toEqual({ a: 3 });
		expect(asked.length).toBe(3);
	});

	it("does not keep what a fetch in flight during clear() brings back", async () => {
		const cache = new KeyedCache<number>(60_000);
		let release!: () => void;
		const slow = cache.getMany(["a"], async () => {
			await new Promise<void>(resolve => (release = resolve));
			return { a: 1 };
		});
		cache.clear();
		release();
		expect(await slow).toEqual({ a: 1 }); // the caller still gets its answer
		expect(cache.size).toBe(0);
	});

	it("stays within maxEntries", async () => {
		const cache = new KeyedCache<number>(60_000, 3);
		const { fetch } = owner({ a: 1, b: 2, c: 3, d: 4 });
		await cache.getMany(["a", "b", "c"], fetch);
		await cache.getMany(["d"], fetch);
		expect(cache.size).toBeLessThanOrEqual(3);
		expect(await cache.getMany(["a", "d"], fetch)).toEqual({ a: 1, d: 4 });
	});
});
