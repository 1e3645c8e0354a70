/**
 * The inventory service in an in-process broker on NeDB: reservations all or nothing, release and commit idempotent,
 * onHand never below reserved, refunds put back once, and `inventory.low` (through the outbox and the in-process event
 * adapter) once per dip below the threshold. Stock comes from `products.created` alone: no products service runs here.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { ServiceBroker } from "moleculer";
import { eventsMiddleware } from "../../../adapters/events";
import {
	RETURN_MARKER_TTL_MS,
	createInventoryService
} from "../../../services/inventory/inventory.service";
import { testConfig } from "../../helpers/config";

describe("inventory", () => {
	const cfg = testConfig({
		DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), "flashmart-inventory-")),
		LOW_STOCK_THRESHOLD: "3"
	});

	const lowEvents: Array<{ productId: string; available: number }> = [];
	const broker = new ServiceBroker({ logger: false, middlewares: [eventsMiddleware(cfg)] });
	broker.createService(createInventoryService(cfg));
	broker.createService({
		name: "listener",
		channels: {
			"inventory.low": {
				group: "listener",
				handler: async (ctx: { params: { productId: string; available: number } }) =>
					void lowEvents.push(ctx.params)
			}
		}
	} as never);
	const admin = { meta: { user: { id: "a", email: "a@x.example", roles: ["admin"] } } };
	const level = (productId: string) => broker.call("inventory.get", { productId }, admin);
	const changed: string[][] = [];
	broker.createService({
		name: "catalog-listener",
		events: {
			"inventory.changed"(ctx: { params: { productIds: string[] } }) {
				changed.push(ctx.params.productIds);
			}
		}
	});
	/** The durable event the products service writes with a new product; resolves once inventory handled it. */
	const productCreated = (payload: Record<string, unknown>) =>
		(
			broker as unknown as {
				sendToChannel(c: string, p: object, o?: object): Promise<void>;
			}
		).sendToChannel("products.created", {
			eventId: randomUUID(),
			occurredAt: new Date().toISOString(),
			...payload
		});
	const stock = (productId: string, onHand: number) =>
		productCreated({ productId, sku: `SKU-${productId}`, stock: onHand });

	beforeAll(async () => {
		await broker.start();
		await stock("p1", 10);
		await stock("p2", 2);
	});
	afterAll(() => broker.stop());

	describe("inventory.reserve", () => {
		it("takes every line or none, and names the short lines", async () => {
			const err = await broker
				.call("inventory.reserve", {
					orderId: "o1",
					lines: [
						{ productId: "p1", quantity: 4 },
						{ productId: "p2", quantity: 5 }
					]
				})
				.catch((e: { code: number; type: string; data: { lines: unknown } }) => e);
			expect(err).toMatchObject({ code: 409, type: "OUT_OF_STOCK" });
			expect((err as { data: { lines: unknown } }).data.lines).toEqual([
				{ productId: "p2", variantId: "p2", requested: 5, available: 2 }
			]);
			expect(await level("p1")).toEqual({
				productId: "p1",
				variantId: "p1",
				onHand: 10,
				reserved: 0,
				available: 10
			});
		});

		it("takes nothing twice for the same order id", async () => {
			const lines = [{ productId: "p1", quantity: 4 }];
			await broker.call("inventory.reserve", { orderId: "o2", lines });
			await broker.call("inventory.reserve", { orderId: "o2", lines });
			expect(await level("p1")).toMatchObject({ reserved: 4, available: 6 });
		});

		it("refuses order ids that could address another field", async () => {
			const err = await broker
				.call("inventory.reserve", { orderId: "o.$x", lines: [{ productId: "p1", quantity: 1 }] })
				.catch(e => e);
			expect(err).toMatchObject({ code: 422, type: "VALIDATION_ERROR" });
		});
	});

	describe("inventory.release and inventory.commit", () => {
		it("releases once: a second release changes nothing", async () => {
			const lines = [{ productId: "p1", quantity: 2 }];
			await broker.call("inventory.reserve", { orderId: "o3", lines });
			expect(await broker.call("inventory.release", { orderId: "o3", lines })).toEqual({
				released: 1
			});
			expect(await broker.call("inventory.release", { orderId: "o3", lines })).toEqual({
				released: 0
			});
			expect(await level("p1")).toMatchObject({ reserved: 4, available: 6 });
		});

		it("commits once: reserved units become sold and leave onHand", async () => {
			const lines = [{ productId: "p1", quantity: 4 }];
			expect(await broker.call("inventory.commit", { orderId: "o2", lines })).toEqual({
				committed: 1
			});
			expect(await broker.call("inventory.commit", { orderId: "o2", lines })).toEqual({
				committed: 0
			});
			expect(await level("p1")).toEqual({
				productId: "p1",
				variantId: "p1",
				onHand: 6,
				reserved: 0,
				available: 6
			});
		});
	});

	describe("products.created", () => {
		it("makes the product's stock from the event, with the stock it was created with, and announces it", async () => {
			changed.length = 0;
			await stock("n1", 7);
			expect(await level("n1")).toEqual({
				productId: "n1",
				variantId: "n1",
				onHand: 7,
				reserved: 0,
				available: 7
			});
			await new Promise(resolve => setTimeout(resolve, 100));
			expect(changed.flat()).toContain("n1");
			const byId = await broker.call("inventory.availability", { productIds: ["n1", "never"] });
			expect(byId).toEqual({ n1: 7, never: 0 });
		});

		it("takes a redelivery as a duplicate: stock that moved meanwhile stays as it is", async () => {
			await stock("n2", 5);
			await broker.call("inventory.reserve", {
				orderId: "dup1",
				lines: [{ productId: "n2", quantity: 2 }]
			});
			await stock("n2", 5);
			expect(await level("n2")).toEqual({
				productId: "n2",
				variantId: "n2",
				onHand: 5,
				reserved: 2,
				available: 3
			});
		});

		it("acknowledges a malformed event without making stock", async () => {
			await productCreated({ productId: "bad1", stock: -1 });
			await productCreated({ productId: "bad2", stock: 1.5 });
			await productCreated({ stock: 3 });
			for (const productId of ["bad1", "bad2"]) {
				const err = await level(productId).catch((e: { code: number; type: string }) => e);
				expect(err).toMatchObject({ code: 404, type: "NOT_FOUND" });
			}
		});
	});

	describe("inventory.get", () => {
		it("answers 404 for a product inventory never heard of", async () => {
			const err = await level("nope").catch((e: { code: number; type: string }) => e);
			expect(err).toMatchObject({ code: 404, type: "NOT_FOUND" });
		});
	});

	describe("inventory.set", () => {
		it("answers 404 for a product inventory never heard of, asking no other service", async () => {
			const err = await broker
				.call("inventory.set", { productId: "nope", variantId: "nope", onHand: 3 }, admin)
				.catch((e: { code: number; type: string }) => e);
			expect(err).toMatchObject({ code: 404, type: "NOT_FOUND" });
			// No products service runs in this broker: a call to it would have failed otherwise.
			expect(broker.registry.getServiceList({}).map(s => s.name)).not.toContain("products");
		});

		it("has no action for other services to make stock with", () => {
			const names = broker.registry.getActionList({}).map(a => a.name);
			expect(names).toContain("inventory.set");
			expect(names).not.toContain("inventory.init");
		});

		it("refuses to put onHand below the units reserved (409)", async () => {
			await broker.call("inventory.reserve", {
				orderId: "o4",
				lines: [{ productId: "p1", quantity: 5 }]
			});
			const err = await broker
				.call("inventory.set", { productId: "p1", variantId: "p1", onHand: 4 }, admin)
				.catch(e => e);
			expect(err).toMatchObject({ code: 409, type: "STOCK_BELOW_RESERVED" });
			expect(
				await broker.call("inventory.set", { productId: "p1", variantId: "p1", onHand: 5 }, admin)
			).toEqual({
				productId: "p1",
				variantId: "p1",
				onHand: 5,
				reserved: 5,
				available: 0
			});
		});
	});

	describe("inventory.restock", () => {
		it("puts a refunded order's sold units back once", async () => {
			await stock("p3", 10);
			const lines = [{ productId: "p3", quantity: 4 }];
			await broker.call("inventory.reserve", { orderId: "r1", lines });
			await broker.call("inventory.commit", { orderId: "r1", lines });
			expect(await level("p3")).toEqual({
				productId: "p3",
				variantId: "p3",
				onHand: 6,
				reserved: 0,
				available: 6
			});
			expect(await broker.call("inventory.restock", { orderId: "r1", lines })).toEqual({
				restocked: 1
			});
			expect(await broker.call("inventory.restock", { orderId: "r1", lines })).toEqual({
				restocked: 0
			});
			expect(await level("p3")).toEqual({
				productId: "p3",
				variantId: "p3",
				onHand: 10,
				reserved: 0,
				available: 10
			});
		});

		it("keeps a return's marker a day, then prunes it: a product's record does not grow with its refunds", async () => {
			await stock("p4", 10);
			const lines = [{ productId: "p4", quantity: 1 }];
			for (const orderId of ["t1", "t2"]) {
				await broker.call("inventory.reserve", { orderId, lines });
				await broker.call("inventory.commit", { orderId, lines });
				await broker.call("inventory.restock", { orderId, lines });
			}
			const service = broker.getLocalService("inventory") as unknown as {
				pruneReturns(now?: number): Promise<number>;
				adapter: {
					findOne(q: object): Promise<{ returns?: Record<string, number> }>;
					updateMany(q: object, u: object): Promise<number>;
				};
			};
			const markers = async () =>
				(await service.adapter.findOne({ productId: "p4" })).returns ?? {};
			// A marker written before markers had a time holds the units returned.
			await service.adapter.updateMany({ productId: "p4" }, { $set: { "returns.old": 3 } });
			expect(Object.keys(await markers()).sort()).toEqual(["old", "t1", "t2"]);
			expect(await service.pruneReturns()).toBe(0);
			expect((await markers()).old).toBeGreaterThan(Date.now() - 60_000);
			await service.pruneReturns(Date.now() + RETURN_MARKER_TTL_MS + 60_000);
			expect(await markers()).toEqual({});
			// A retry after a prune is what the marker's day guards against; within the day it is still refused.
			await broker.call("inventory.reserve", { orderId: "t3", lines });
			await broker.call("inventory.commit", { orderId: "t3", lines });
			await broker.call("inventory.restock", { orderId: "t3", lines });
			expect(await broker.call("inventory.restock", { orderId: "t3", lines })).toEqual({
				restocked: 0
			});
			expect(await level("p4")).toMatchObject({ onHand: 10, available: 10 });
		});
	});

	describe("inventory.low", () => {
		const eventsFor = (productId: string) => lowEvents.filter(e => e.productId === productId);
		const settle = () => new Promise(resolve => setTimeout(resolve, 50));

		it("is written once when available stock falls below the threshold, with eventId and occurredAt", async () => {
			// p2 started with 2 on hand, below the threshold of 3.
			await settle();
			expect(eventsFor("p2")).toHaveLength(1);
			expect(eventsFor("p2")[0]).toMatchObject({
				productId: "p2",
				available: 2,
				threshold: 3,
				eventId: expect.any(String),
				occurredAt: expect.any(String)
			});
			await broker.call("inventory.reserve", {
				orderId: "o5",
				lines: [{ productId: "p2", quantity: 1 }]
			});
			await settle();
			expect(eventsFor("p2")).toHaveLength(1); // still the same dip
		});

		it("is written again after the stock recovered and dipped again", async () => {
			await broker.call("inventory.set", { productId: "p2", variantId: "p2", onHand: 20 }, admin);
			await broker.call("inventory.reserve", {
				orderId: "o6",
				lines: [{ productId: "p2", quantity: 18 }]
			});
			await settle();
			const events = eventsFor("p2");
			expect(events).toHaveLength(2);
			expect(events[1]).toMatchObject({ available: 1 });
			expect(events[1]).not.toHaveProperty("eventId", (events[0] as { eventId?: string }).eventId);
		});
	});
});
