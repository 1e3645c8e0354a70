/**
 * Holds as records of their own and sales, on the inventory service in an in-process broker on NeDB: the stock
 * counters always equal what the hold records say, sale lines take the sale's units and the buyer's allowance with the
 * stock, every step a crash can interrupt is finished by the sweep, and holds stored by the previous version move.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { ServiceBroker } from "moleculer";
import { eventsMiddleware } from "../../../adapters/events";
import { createInventoryService } from "../../../services/inventory/inventory.service";
import { clearStaleMarkers, sweepHolds } from "../../../services/inventory/holds";
import type { InventoryThis } from "../../../services/inventory/types";
import { testConfig } from "../../helpers/config";

const iso = (ms: number) => new Date(ms).toISOString();

describe("inventory holds and sales", () => {
	const cfg = testConfig({
		DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), "flashmart-holds-")),
		INVENTORY_SWEEP_INTERVAL: "3600000",
		HOLD_GRACE: "1000"
	});
	const broker = new ServiceBroker({ logger: false, middlewares: [eventsMiddleware(cfg)] });
	const svc = broker.createService(createInventoryService(cfg)) as unknown as InventoryThis;
	const call = <T = any>(action: string, params: object): Promise<T> =>
		broker.call(`inventory.${action}`, params) as Promise<T>;
	const stockOf = (productId: string): Promise<any> => svc.findStock(productId);
	const holds = (): Promise<any[]> => svc.stores.holds.find({}) as Promise<any[]>;
	const product = async (onHand: number) => {
		const productId = `p${randomUUID().slice(0, 8)}`;
		await (
			broker as unknown as { sendToChannel(c: string, p: object): Promise<void> }
		).sendToChannel("products.created", {
			eventId: randomUUID(),
			occurredAt: iso(Date.now()),
			productId,
			stock: onHand
		});
		return productId;
	};
	const liveSale = (productId: string, item: object = {}, extra: object = {}) =>
		call("createSale", {
			name: "sale",
			startsAt: iso(Date.now() - 1000),
			endsAt: iso(Date.now() + 3_600_000),
			items: [{ productId, salePrice: 500, units: 5, perCustomerLimit: 2, ...item }],
			...extra
		});

	beforeAll(() => broker.start());
	afterAll(() => broker.stop());

	it("creates a sale and takes a sale line at the sale price, within the sale's units", async () => {
		const p = await product(10);
		const sale = await liveSale(p);
		expect(sale).toMatchObject({ status: "live", items: [{ productId: p, unitsLeft: 5 }] });
		const held = await call("reserve", {
			orderId: "s1",
			userId: "u1",
			lines: [{ productId: p, quantity: 2 }]
		});
		expect(held.lines).toEqual([{ productId: p, quantity: 2, saleId: sale.id, unitPrice: 500 }]);
		expect((await call("getSale", { id: sale.id })).items[0].unitsLeft).toBe(3);
	});

	/** Stock counters match the holds: reserved = the units of every open hold of the product. */
	async function consistent(productId: string) {
		const doc = await stockOf(productId);
		const open = (await holds()).filter(h => h.productId === productId);
		const reserved = open.reduce((n, h) => n + h.quantity, 0);
		expect(doc.reserved).toBe(reserved);
		expect(doc.available).toBe(doc.onHand - doc.reserved);
		expect(doc.available).toBeGreaterThanOrEqual(0);
		return doc;
	}

	it("keeps counters only in the stock document: a hold is a record, and finished operations leave no marker", async () => {
		const p = await product(10);
		await call("reserve", { orderId: "r1", lines: [{ productId: p, quantity: 3 }] });
		await call("reserve", { orderId: "r2", lines: [{ productId: p, quantity: 2 }] });
		const doc = await consistent(p);
		expect(doc).toMatchObject({ onHand: 10, reserved: 5, available: 5 });
		expect(doc.holds).toBeUndefined();
		expect(Object.keys(doc.ops ?? {})).toEqual([]);
		expect(await call("commit", { orderId: "r1", lines: [{ productId: p, quantity: 3 }] })).toEqual(
			{ committed: 1 }
		);
		expect(await call("commit", { orderId: "r1", lines: [{ productId: p, quantity: 3 }] })).toEqual(
			{ committed: 0 }
		);
		expect(
			await call("release", { orderId: "r2", lines: [{ productId: p, quantity: 2 }] })
		).toEqual({ released: 1 });
		expect(
			await call("release", { orderId: "r2", lines: [{ productId: p, quantity: 2 }] })
		).toEqual({ released: 0 });
		expect(await consistent(p)).toMatchObject({ onHand: 7, reserved: 0, available: 7, sold: 3 });
	});

	it("holds each buyer to the per-customer limit, counting held and bought units, and gives back on release", async () => {
		const p = await product(20);
		const sale = await liveSale(p, { units: 10, perCustomerLimit: 3 });
		const take = (orderId: string, userId: string, quantity: number) =>
			call("reserve", { orderId, userId, lines: [{ productId: p, quantity }] });
		await take("c1", "alice", 2);
		await expect(take("c2", "alice", 2)).rejects.toMatchObject({
			code: 409,
			type: "PURCHASE_LIMIT_EXCEEDED",
			data: { saleId: sale.id, perCustomerLimit: 3, alreadyHeld: 2 }
		});
		await take("c3", "alice", 1);
		await call("commit", { orderId: "c3", lines: [{ productId: p, quantity: 1 }] });
		await expect(take("c4", "alice", 1)).rejects.toMatchObject({ type: "PURCHASE_LIMIT_EXCEEDED" });
		await take("c5", "bob", 3); // another buyer has their own allowance
		await call("release", { orderId: "c1", lines: [{ productId: p, quantity: 2 }] });
		await take("c6", "alice", 2); // what a release gave back can be taken again
		const stats = await call("saleStats", { id: sale.id });
		expect(stats.items[0]).toEqual({ productId: p, unitsLeft: 10 - 1 - 3 - 2, held: 5, sold: 1 });
		await consistent(p);
	});

	it("counts one buyer's concurrent orders atomically: 12 racing orders of 1 unit, limit 3, exactly 3 held", async () => {
		const p = await product(100);
		const sale = await liveSale(p, { units: 50, perCustomerLimit: 3 });
		const results = await Promise.allSettled(
			Array.from({ length: 12 }, (_, i) =>
				call("reserve", {
					orderId: `r${i}`,
					userId: "racer",
					lines: [{ productId: p, quantity: 1 }]
				})
			)
		);
		expect(results.filter(r => r.status === "fulfilled")).toHaveLength(3);
		for (const r of results.filter(r => r.status === "rejected")) {
			expect((r as PromiseRejectedResult).reason).toMatchObject({
				type: "PURCHASE_LIMIT_EXCEEDED"
			});
		}
		expect((await call("getSale", { id: sale.id })).items[0].unitsLeft).toBe(47);
		expect(await consistent(p)).toMatchObject({ reserved: 3 });
	});

	it("refuses the allotment's last units twice over, concurrently: exactly the units allotted are held", async () => {
		const p = await product(100);
		const sale = await liveSale(p, { units: 7, perCustomerLimit: 1 });
		const results = await Promise.allSettled(
			Array.from({ length: 20 }, (_, i) =>
				call("reserve", {
					orderId: `a${i}`,
					userId: `u${i}`,
					lines: [{ productId: p, quantity: 1 }]
				})
			)
		);
		expect(results.filter(r => r.status === "fulfilled")).toHaveLength(7);
		for (const r of results.filter(r => r.status === "rejected")) {
			expect((r as PromiseRejectedResult).reason).toMatchObject({ type: "OUT_OF_STOCK" });
		}
		expect((await call("getSale", { id: sale.id })).items[0].unitsLeft).toBe(0);
		expect(await consistent(p)).toMatchObject({ reserved: 7, available: 93 });
	});

	it("expires a held hold past its expiry plus HOLD_GRACE: units back to the stock and the sale, counted", async () => {
		const p = await product(5);
		const sale = await liveSale(p, { units: 2, perCustomerLimit: 2 }, { holdSeconds: 10 });
		const held = await call("reserve", {
			orderId: "e1",
			userId: "eve",
			lines: [{ productId: p, quantity: 2 }]
		});
		expect(Date.parse(held.expiresAt) - Date.now()).toBeLessThanOrEqual(10_000);
		await sweepHolds(svc, cfg, Date.now() + 10_000 + 500); // inside the grace: kept
		expect(await consistent(p)).toMatchObject({ reserved: 2 });
		await sweepHolds(svc, cfg, Date.now() + 10_000 + 1500);
		expect(await consistent(p)).toMatchObject({ reserved: 0, available: 5 });
		expect((await call("getSale", { id: sale.id })).items[0].unitsLeft).toBe(2);
		// Eve's allowance came back with it.
		await call("reserve", { orderId: "e2", userId: "eve", lines: [{ productId: p, quantity: 2 }] });
		// A release after the expiry changes nothing.
		expect(
			await call("release", { orderId: "e1", lines: [{ productId: p, quantity: 2 }] })
		).toEqual({ released: 0 });
		await consistent(p);
	});

	it("finishes what a crash interrupted at every step of a take, a release and a sale", async () => {
		const p = await product(10);
		const hold = (orderId: string) => svc.stores.holds.findById(`${orderId}:${p}`) as Promise<any>;
		const late = Date.now() + cfg.requestTimeout * 3 + 1000;

		// A take that wrote its record and died before the stock moved: dropped.
		await svc.stores.holds.insert({
			_id: `k1:${p}`,
			orderId: "k1",
			productId: p,
			quantity: 2,
			state: "taking",
			expiresAt: Date.now(),
			createdAt: Date.now()
		});
		// A take that moved the stock and died before recording the hold: held.
		await svc.stores.holds.insert({
			_id: `k2:${p}`,
			orderId: "k2",
			productId: p,
			quantity: 3,
			state: "taking",
			expiresAt: Date.now(),
			createdAt: Date.now()
		});
		await svc.adapter.updateMany(
			{ productId: p },
			{ $inc: { available: -3, reserved: 3 }, $set: { "ops.k2": { take: 3, at: Date.now() } } }
		);
		await sweepHolds(svc, cfg, late);
		expect(await hold("k1")).toBeNull();
		expect(await hold("k2")).toMatchObject({ state: "held", quantity: 3 });
		expect(await consistent(p)).toMatchObject({ reserved: 3, available: 7 });
		expect((await stockOf(p)).ops?.k2).toBeUndefined();

		// A release that moved the stock and died before removing the hold: the retry does not give it back twice.
		await svc.stores.holds.updateMany(
			{ _id: `k2:${p}` },
			{ $set: { state: "releasing", expiresAt: Date.now() } }
		);
		await svc.adapter.updateMany(
			{ productId: p },
			{ $inc: { available: 3, reserved: -3 }, $set: { "ops.k2": { release: 3, at: Date.now() } } }
		);
		await sweepHolds(svc, cfg, late);
		expect(await hold("k2")).toBeNull();
		expect(await consistent(p)).toMatchObject({ reserved: 0, available: 10 });

		// A sale that moved the stock and died: finished once.
		await call("reserve", { orderId: "k3", lines: [{ productId: p, quantity: 4 }] });
		await svc.stores.holds.updateMany(
			{ _id: `k3:${p}` },
			{ $set: { state: "selling", expiresAt: Date.now() } }
		);
		await svc.adapter.updateMany(
			{ productId: p },
			{
				$inc: { reserved: -4, onHand: -4, sold: 4 },
				$set: { "ops.k3": { sell: 4, at: Date.now() } }
			}
		);
		expect(await call("commit", { orderId: "k3", lines: [{ productId: p, quantity: 4 }] })).toEqual(
			{ committed: 1 }
		);
		expect(await consistent(p)).toMatchObject({ onHand: 6, reserved: 0, available: 6, sold: 4 });

		// A marker left after its hold was finished goes once it is older than a call can run.
		await svc.adapter.updateMany(
			{ productId: p },
			{ $set: { "ops.k9": { release: 1, at: Date.now() - 60_000 } } }
		);
		expect(await clearStaleMarkers(svc, cfg)).toBe(1);
		expect(Object.keys((await stockOf(p)).ops ?? {})).toEqual([]);
	});

	it("moves holds stored by the previous version in the stock document to hold records, once", async () => {
		// What the previous version wrote: the hold inside the document, its units counted in reserved.
		const p = await product(10);
		await svc.adapter.updateMany(
			{ productId: p },
			{ $inc: { available: -4, reserved: 4 }, $set: { holds: { old1: 1, old2: 3 } } }
		);
		const { migrateLegacyHolds } = await import("../../../services/inventory/holds");
		expect(await migrateLegacyHolds(svc, cfg)).toBe(2);
		expect(await migrateLegacyHolds(svc, cfg)).toBe(0);
		expect(await consistent(p)).toMatchObject({ onHand: 10, reserved: 4, available: 6 });
		expect(
			await call("commit", { orderId: "old2", lines: [{ productId: p, quantity: 3 }] })
		).toEqual({ committed: 1 });
		expect(
			await call("release", { orderId: "old1", lines: [{ productId: p, quantity: 1 }] })
		).toEqual({ released: 1 });
		expect(await consistent(p)).toMatchObject({ onHand: 7, reserved: 0, available: 7, sold: 3 });
	});
});
