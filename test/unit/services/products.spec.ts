/**
 * The products service in an in-process broker on NeDB with the in-process event adapter: a new product's stock goes
 * to inventory as `products.created` (written with the product), never by a call, and the catalog's cached reads are
 * dropped by the cache-cleaner mixin when stock or the catalog changes.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ServiceBroker } from "moleculer";
import { eventsMiddleware } from "../../../adapters/events";
import type { DbAdapter } from "../../../adapters/store";
import { createInventoryService } from "../../../services/inventory/inventory.service";
import { createProductsService } from "../../../services/products/products.service";
import { testConfig } from "../../helpers/config";

const admin = { meta: { user: { id: "a", email: "a@x.example", roles: ["admin"] } } };
let sku = 0;
const body = (fields: Record<string, unknown> = {}) => ({
	sku: `UNIT-${sku++}`,
	name: "Unit Lamp",
	price: 1200,
	category: "testing",
	...fields
});

function newBroker(name: string) {
	const cfg = testConfig({
		DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), `flashmart-${name}-`)),
		SEED_DEMO: "false"
	});
	return {
		cfg,
		broker: new ServiceBroker({
			logger: false,
			cacher: "Memory",
			middlewares: [eventsMiddleware(cfg)]
		})
	};
}

describe("products.create without an inventory service", () => {
	const { cfg, broker } = newBroker("products-alone");
	const created: Array<Record<string, unknown>> = [];
	broker.createService(createProductsService(cfg));
	broker.createService({
		name: "listener",
		channels: {
			"products.created": {
				group: "listener",
				handler: async (ctx: { params: Record<string, unknown> }) => void created.push(ctx.params)
			}
		}
	} as never);
	beforeAll(() => broker.start());
	afterAll(() => broker.stop());

	it("answers 201 with the stock it was given, at once, and writes products.created with it", async () => {
		const started = Date.now();
		const p = (await broker.call("products.create", body({ stock: 6 }), admin)) as {
			id: string;
			sku: string;
			available: number;
		};
		// No inventory node: nothing to wait for.
		expect(Date.now() - started).toBeLessThan(1000);
		expect(p.available).toBe(6);
		expect(p.id).toMatch(/^[A-Za-z0-9]{16}$/);
		for (let i = 0; i < 50 && created.length === 0; i++) await new Promise(r => setTimeout(r, 20));
		expect(created).toEqual([
			{
				eventId: expect.any(String),
				occurredAt: expect.any(String),
				productId: p.id,
				sku: p.sku,
				stock: 6
			}
		]);
	});

	it("takes an empty variants list without options as none: the default variant with the stock given", async () => {
		const p = (await broker.call("products.create", body({ stock: 4, variants: [] }), admin)) as {
			id: string;
			available: number;
			variants: Array<{ id: string; available: number }>;
		};
		expect(p.available).toBe(4);
		expect(p.variants).toEqual([expect.objectContaining({ id: p.id, available: 4 })]);
	});

	it("writes stock 0 for a product created without stock", async () => {
		const p = (await broker.call("products.create", body(), admin)) as { id: string };
		for (let i = 0; i < 50 && !created.some(e => e.productId === p.id); i++) {
			await new Promise(r => setTimeout(r, 20));
		}
		expect(created.find(e => e.productId === p.id)).toMatchObject({ stock: 0 });
	});
});

describe("products and inventory in one broker", () => {
	const { cfg, broker } = newBroker("catalog");
	const products = broker.createService(createProductsService(cfg)) as unknown as {
		adapter: DbAdapter;
	};
	broker.createService(createInventoryService(cfg));
	beforeAll(() => broker.start());
	afterAll(() => broker.stop());

	it("shows a new product's stock on the read right after the create, and inventory has it", async () => {
		const p = (await broker.call("products.create", body({ stock: 9 }), admin)) as {
			id: string;
			available: number;
		};
		expect(p.available).toBe(9);
		expect(await broker.call("products.get", { idOrSlug: p.id })).toMatchObject({ available: 9 });
		expect(await broker.call("inventory.get", { productId: p.id }, admin)).toEqual({
			productId: p.id,
			variantId: p.id,
			onHand: 9,
			reserved: 0,
			available: 9
		});
	});

	it("drops the cached read of a product when its stock changes (cache-cleaner mixin)", async () => {
		const p = (await broker.call("products.create", body({ stock: 2 }), admin)) as {
			id: string;
			slug: string;
		};
		expect(await broker.call("products.get", { idOrSlug: p.slug })).toMatchObject({ available: 2 });
		await broker.call("inventory.set", { productId: p.id, onHand: 4 }, admin);
		// The announcement is a broadcast: give it a moment to arrive.
		let available = 0;
		for (let i = 0; i < 50 && available !== 4; i++) {
			available = (
				(await broker.call("products.get", { idOrSlug: p.slug })) as { available: number }
			).available;
			if (available !== 4) await new Promise(r => setTimeout(r, 20));
		}
		expect(available).toBe(4);
	});

	it("drops every cached catalog read on products.cache.clean (from another products node)", async () => {
		const p = (await broker.call("products.create", body({ category: "cleaner" }), admin)) as {
			id: string;
		};
		const categories = () =>
			broker.call("products.categories", {}) as Promise<Array<{ name: string; count: number }>>;
		expect((await categories()).find(c => c.name === "cleaner")?.count).toBe(1);
		// Another node's write: this node's cache does not know of it until the broadcast.
		await products.adapter.updateById(p.id, { $set: { category: "cleaned" } });
		expect((await categories()).find(c => c.name === "cleaner")?.count).toBe(1);
		await broker.broadcast("products.cache.clean", {});
		await new Promise(r => setTimeout(r, 20));
		expect((await categories()).find(c => c.name === "cleaner")).toBeUndefined();
	});
});
