/**
 * Checkout against the real products, carts, inventory and orders services (in-process, NeDB): a product stored
 * with price 0 by an earlier version, and two checkouts of one cart content.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { type ServiceBroker as Broker, ServiceBroker } from "moleculer";
import { eventsMiddleware } from "../../../adapters/events";
import type { DbAdapter } from "../../../adapters/store";
import { createCartsService } from "../../../services/carts.service";
import { createInventoryService } from "../../../services/inventory/inventory.service";
import { createOrdersService } from "../../../services/orders/orders.service";
import { createProductsService } from "../../../services/products/products.service";
import { testConfig } from "../../helpers/config";

describe("orders.create (in-process)", () => {
	const cfg = testConfig({
		DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), "flashmart-checkout-")),
		ORDER_SWEEP_INTERVAL: "3600000"
	});
	const broker: Broker = new ServiceBroker({ logger: false, middlewares: [eventsMiddleware(cfg)] });
	const [products] = [
		createProductsService,
		createInventoryService,
		createCartsService,
		createOrdersService
	]
		.map(create => create(cfg))
		.map(s => broker.createService(s)) as unknown as Array<{ adapter: DbAdapter }>;
	const ADDRESS = { name: "A", line1: "1 St", city: "Town", postalCode: "12345", country: "US" };
	const admin = { user: { id: "admin", email: "a@x.example", roles: ["admin"] } };
	let users = 0;
	const customer = () => ({
		user: { id: `u${++users}`, email: `u${users}@x.example`, roles: ["customer"] }
	});
	const checkout = (meta: object) =>
		broker.call(
			"orders.create",
			{ shippingAddress: ADDRESS },
			{ meta: { ...meta, idempotencyKey: randomUUID() } }
		) as Promise<any>;
	const stock = (productId: string) =>
		broker.call("inventory.get", { productId }, { meta: admin }) as Promise<any>;

	/** A product as an earlier version could store it, written straight through the products adapter. */
	async function legacyProduct(id: string, price: number) {
		const now = new Date().toISOString();
		await products.adapter.insert({
			_id: id,
			sku: `SKU-${id}`,
			slug: id,
			name: id,
			description: "",
			price,
			currency: "USD",
			category: "legacy",
			images: [],
			archived: false,
			createdAt: now,
			updatedAt: now
		});
		// Its stock, as inventory makes it from the product's creation event.
		await (broker as any).sendToChannel("products.created", {
			eventId: `created-${id}`,
			occurredAt: now,
			productId: id,
			sku: `SKU-${id}`,
			stock: 10
		});
	}

	beforeAll(() => broker.start());
	afterAll(() => broker.stop());

	it("refuses a cart whose total is 0 (422 ZERO_TOTAL) and reserves nothing", async () => {
		await legacyProduct("free1", 0);
		const meta = customer();
		await broker.call("carts.add", { productId: "free1", quantity: 2 }, { meta });
		await expect(checkout(meta)).rejects.toMatchObject({ code: 422, type: "ZERO_TOTAL" });
		expect(await stock("free1")).toMatchObject({ reserved: 0, available: 10 });
		const cart = (await broker.call("carts.get", {}, { meta })) as any;
		expect(cart.items).toHaveLength(1);
	});

	it("refuses a price of 0 at create and update (422)", async () => {
		await expect(
			broker.call(
				"products.create",
				{ sku: "ZERO-1", name: "Zero", price: 0, category: "x", stock: 1 },
				{ meta: admin }
			)
		).rejects.toMatchObject({ code: 422 });
		await legacyProduct("paid1", 100);
		await expect(
			broker.call("products.update", { id: "paid1", price: 0 }, { meta: admin })
		).rejects.toMatchObject({ code: 422 });
	});

	it("lets one of two racing checkouts of one cart win; the other is 409 CART_CHANGED (or 422 EMPTY_CART once emptied), nothing reserved", async () => {
		await legacyProduct("race1", 250);
		const meta = customer();
		await broker.call("carts.add", { productId: "race1", quantity: 3 }, { meta });
		const results = await Promise.allSettled([checkout(meta), checkout(meta)]);
		const won = results.filter(r => r.status === "fulfilled");
		const lost = results.filter(r => r.status === "rejected") as PromiseRejectedResult[];
		expect(won).toHaveLength(1);
		expect(lost).toHaveLength(1);
		const reason = lost[0].reason as { code: number; type: string };
		expect([
			[409, "CART_CHANGED"],
			[422, "EMPTY_CART"]
		]).toContainEqual([reason.code, reason.type]);
		expect(await stock("race1")).toMatchObject({ reserved: 3, available: 7 });
	});

	it("gives the cart back when the stock is short (409 OUT_OF_STOCK)", async () => {
		await legacyProduct("short1", 250);
		const meta = customer();
		await broker.call("carts.add", { productId: "short1", quantity: 11 }, { meta });
		await expect(checkout(meta)).rejects.toMatchObject({ code: 409, type: "OUT_OF_STOCK" });
		const cart = (await broker.call("carts.get", {}, { meta })) as any;
		expect(cart.items).toEqual([expect.objectContaining({ productId: "short1", quantity: 11 })]);
		expect(await stock("short1")).toMatchObject({ reserved: 0 });
	});
});
