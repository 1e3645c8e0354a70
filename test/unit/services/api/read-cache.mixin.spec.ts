/**
 * The gateway's read cache over real HTTP (a moleculer-web gateway with the mixin, an in-process catalog whose
 * actions declare their cache keys): hits never reach the owner, announced changes drop what they affect.
 */
import type { ServiceSchema } from "moleculer";
import { Errors, ServiceBroker } from "moleculer";
import ApiGateway from "moleculer-web";
import { freePort } from "../../../../scripts/lib/cluster";
import { ReadCacheMixin } from "../../../../services/api/read-cache.mixin";

describe("ReadCacheMixin", () => {
	const calls: string[] = [];
	const stock: Record<string, number> = { p1: 5, p2: 7 };
	const broker = new ServiceBroker({ logger: false });
	let base = "";

	broker.createService({
		name: "catalog",
		actions: {
			get: {
				cache: { keys: ["id"], ttl: 300 },
				params: { $$strict: "remove", id: "string" },
				handler(ctx) {
					calls.push(`get ${ctx.params.id}`);
					if (!(ctx.params.id in stock))
						throw new Errors.MoleculerClientError("No", 404, "NOT_FOUND");
					return { id: ctx.params.id, available: stock[ctx.params.id] };
				}
			},
			list: {
				cache: { keys: ["page"], ttl: 300 },
				handler(ctx) {
					calls.push(`list ${ctx.params.page}`);
					return { rows: Object.keys(stock).map(id => ({ id, available: stock[id] })) };
				}
			},
			categories: {
				cache: { keys: [] },
				handler() {
					calls.push("categories");
					return [{ name: "lamps", count: 2 }];
				}
			},
			uncached: {
				handler() {
					calls.push("uncached");
					return { ok: true };
				}
			}
		}
	});

	const gateway = (port: number, ttlSeconds: number, path: string): ServiceSchema<any> => ({
		name: `gw${port}`,
		mixins: [
			ReadCacheMixin({
				ttlSeconds,
				cleanAll: ["catalog.changed"],
				cleanEntities: { "stock.changed": ["ids"] }
			}),
			ApiGateway as unknown as ServiceSchema
		],
		settings: {
			port,
			ip: "127.0.0.1",
			routes: [
				{
					path,
					mappingPolicy: "restrict",
					aliases: {
						"GET /items/:id": { action: "catalog.get", cached: true },
						"GET /items": { action: "catalog.list", cached: true },
						"GET /categories": { action: "catalog.categories", cached: true },
						"GET /fresh/:id": { action: "catalog.get" },
						"GET /other": { action: "catalog.uncached", cached: true }
					}
				}
			]
		}
	});

	let offBase = "";
	beforeAll(async () => {
		const [port, offPort] = [await freePort(), await freePort()];
		broker.createService(gateway(port, 10, "/"));
		broker.createService(gateway(offPort, 0, "/"));
		base = `http://127.0.0.1:${port}`;
		offBase = `http://127.0.0.1:${offPort}`;
		await broker.start();
	});
	afterAll(() => broker.stop());
	beforeEach(() => {
		calls.length = 0;
		broker.broadcast("catalog.changed", {});
	});

	const get = async (path: string, from = base) => {
		const res = await fetch(`${from}${path}`);
		return { status: res.status, body: (await res.json()) as any };
	};

	it("answers repeated reads without asking the owner, keyed only by the owner's cache keys", async () => {
		expect(await get("/items/p1")).toEqual({ status: 200, body: { id: "p1", available: 5 } });
		expect(await get("/items/p1?utm=x&extra=1")).toEqual({
			status: 200,
			body: { id: "p1", available: 5 }
		});
		await get("/items/p1");
		await get("/items/p2");
		await Promise.all([get("/items?page=1"), get("/items?page=1"), get("/categories")]);
		await get("/categories");
		expect(calls).toEqual(["get p1", "get p2", "list 1", "categories"]);
	});

	it("answers a hit exactly as the miss was answered: JSON, same bytes, same length", async () => {
		const first = await fetch(`${base}/items/p2`);
		const second = await fetch(`${base}/items/p2`);
		for (const res of [first, second]) {
			expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
		}
		const [a, b] = [await first.text(), await second.text()];
		expect(b).toBe(a);
		expect(JSON.parse(b)).toEqual({ id: "p2", available: 7 });
		expect(second.headers.get("content-length")).toBe(String(Buffer.byteLength(b)));
		expect(calls).toEqual(["get p2"]);
	});

	it("asks every time for operations not marked cached, actions without cache keys, and with the TTL at 0", async () => {
		await get("/fresh/p1");
		await get("/fresh/p1");
		await get("/other");
		await get("/other");
		await get("/items/p1", offBase);
		await get("/items/p1", offBase);
		expect(calls).toEqual(["get p1", "get p1", "uncached", "uncached", "get p1", "get p1"]);
	});

	it("never keeps an error: an unknown item is asked for again, and seen once it exists", async () => {
		expect((await get("/items/p9")).status).toBe(404);
		stock.p9 = 1;
		expect(await get("/items/p9")).toEqual({ status: 200, body: { id: "p9", available: 1 } });
		expect(calls).toEqual(["get p9", "get p9"]);
		delete stock.p9;
	});

	it("drops the changed entity's answers and every page on a stock announcement, and keeps the rest", async () => {
		await Promise.all([
			get("/items/p1"),
			get("/items/p2"),
			get("/items?page=1"),
			get("/categories")
		]);
		calls.length = 0;
		stock.p1 = 4;
		await broker.broadcast("stock.changed", { ids: ["p1"] });
		expect((await get("/items/p1")).body.available).toBe(4);
		expect((await get("/items?page=1")).body.rows[0].available).toBe(4);
		await get("/items/p2");
		await get("/categories");
		expect(calls.sort()).toEqual(["get p1", "list 1"]);
	});

	it("drops everything on a catalog announcement", async () => {
		await Promise.all([get("/items/p2"), get("/categories")]);
		calls.length = 0;
		await broker.broadcast("catalog.changed", {});
		await Promise.all([get("/items/p2"), get("/categories")]);
		expect(calls.sort()).toEqual(["categories", "get p2"]);
	});
});
