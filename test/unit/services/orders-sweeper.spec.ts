/**
 * The orders sweeper's work markers, in an in-process broker on NeDB with the real orders, inventory, carts and
 * payments services (a stub catalog answers carts' price lookups): every order with work left carries `sweepAt`, the
 * write that finishes the work takes it away, and a sweep examines the orders that are due, not every order stored.
 * Crash states (a paid order whose sale was never recorded, a checkout abandoned mid-reservation, an order stored
 * before markers existed) are written into the store as a crash would leave them.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { productSummary } from "../../helpers/catalog-stub";
import { randomUUID } from "node:crypto";
import { type ServiceBroker as Broker, ServiceBroker } from "moleculer";
import { eventsMiddleware } from "../../../adapters/events";
import type { DbAdapter } from "../../../adapters/store";
import { createCartsService } from "../../../services/carts.service";
import { createInventoryService } from "../../../services/inventory/inventory.service";
import { createOrdersService } from "../../../services/orders/orders.service";
import { createPaymentsService } from "../../../services/payments.service";
import { testConfig } from "../../helpers/config";

type Doc = Record<string, any>;

describe("orders sweeper (in-process, NeDB)", () => {
	const cfg = testConfig({
		DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), "flashmart-sweeper-")),
		// The timer stays out of the way: each test sweeps when it means to.
		ORDER_SWEEP_INTERVAL: "3600000",
		ORDER_TTL: "900"
	});
	const services = [
		createOrdersService,
		createInventoryService,
		createCartsService,
		createPaymentsService
	].map(create => create(cfg));

	const broker: Broker = new ServiceBroker({
		logger: false,
		middlewares: [eventsMiddleware(cfg)]
	});
	broker.createService({
		name: "products",
		actions: {
			summaries: {
				handler: (ctx: { params: { ids: string[] } }) =>
					Object.fromEntries(
						ctx.params.ids.map(id => [id, productSummary(id, { name: id, price: 500 })])
					)
			}
		}
	});
	const [orders] = services.map(s => broker.createService(s)) as unknown as Array<{
		adapter: DbAdapter & { db: { _getCandidatesAsync(q: object, x?: boolean): Promise<Doc[]> } };
		sweep(): Promise<void>;
	}>;

	const ADDRESS = {
		name: "A",
		line1: "1 St",
		city: "Town",
		postalCode: "12345",
		country: "US"
	};
	let users = 0;
	const customer = () => ({
		user: { id: `u${++users}`, email: `u${users}@x.example`, roles: ["customer"] }
	});
	const admin = { user: { id: "admin", email: "a@x.example", roles: ["admin"] } };
	const stock = (productId: string) =>
		broker.call("inventory.get", { productId }, { meta: admin }) as Promise<Doc>;
	const raw = async (id: string) => (await orders.adapter.findById(id)) as Doc;

	async function checkout(productId: string, quantity = 1) {
		const meta = customer();
		await broker.call("carts.add", { productId, quantity }, { meta });
		const order = (await broker.call(
			"orders.create",
			{ shippingAddress: ADDRESS },
			{ meta: { ...meta, idempotencyKey: randomUUID() } }
		)) as Doc;
		return { order, meta };
	}
	async function purchase(productId: string) {
		const { order, meta } = await checkout(productId);
		await broker.call(
			"orders.pay",
			{ id: order.id, paymentToken: "tok_visa" },
			{ meta: { ...meta, idempotencyKey: randomUUID() } }
		);
		return { order, meta };
	}

	/** Runs one sweep and counts the documents NeDB examined for it (candidates read from indexes, or all). */
	async function sweepCounting(): Promise<number> {
		const db = orders.adapter.db;
		const own = db._getCandidatesAsync.bind(db);
		let examined = 0;
		db._getCandidatesAsync = async (q, x) => {
			const docs = await own(q, x);
			examined += docs.length;
			return docs;
		};
		try {
			await orders.sweep();
		} finally {
			db._getCandidatesAsync = own;
		}
		return examined;
	}

	beforeAll(async () => {
		await broker.start();
		for (const p of ["p1", "p2", "p3"]) {
			await (broker as any).sendToChannel("products.created", {
				eventId: `created-${p}`,
				occurredAt: new Date().toISOString(),
				productId: p,
				stock: 10_000
			});
		}
		await orders.sweep(); // the one-time pass over orders stored before markers, on an empty store
	});
	afterAll(() => broker.stop());

	it("marks an unpaid order for its expiry, and a paid or cancelled one not at all once its stock is settled", async () => {
		const { order: pending } = await checkout("p1");
		expect((await raw(pending.id)).sweepAt).toBe(pending.expiresAt);

		const { order: paid } = await purchase("p1");
		expect(await raw(paid.id)).toMatchObject({ status: "paid", stockCommitted: true });
		expect((await raw(paid.id)).sweepAt).toBeUndefined();

		const { order: toCancel, meta } = await checkout("p1");
		await broker.call("orders.cancel", { id: toCancel.id }, { meta });
		expect(await raw(toCancel.id)).toMatchObject({ status: "cancelled", stockReleased: true });
		expect((await raw(toCancel.id)).sweepAt).toBeUndefined();

		const { order: refunded, meta: buyer } = await purchase("p1");
		await broker.call("orders.cancel", { id: refunded.id }, { meta: buyer });
		expect(await raw(refunded.id)).toMatchObject({ status: "refunded", stockReturned: true });
		expect((await raw(refunded.id)).sweepAt).toBeUndefined();
	});

	it("examines only the due orders, however many are stored, and finishes their work", async () => {
		const before = await stock("p2");
		for (let i = 0; i < 60; i++) await purchase("p2");
		// A crash between `paid` and the sale: the hold is still there, the order not marked as sold.
		const { order: crashed } = await checkout("p2");
		const at = new Date().toISOString();
		await orders.adapter.updateMany(
			{ _id: crashed.id },
			{ $set: { status: "paid", updatedAt: at, sweepAt: at } }
		);
		expect(await stock("p2")).toMatchObject({ reserved: before.reserved + 1 });

		const examined = await sweepCounting();
		process.stdout.write(`documents examined by the sweep: ${examined}\n`);
		// The due order, read by the sweep and again by each conditional write of its work, and the holds' check of
		// the orders still holding stock; never the 60 settled orders.
		expect(examined).toBeLessThan(20);
		expect(await raw(crashed.id)).toMatchObject({ status: "paid", stockCommitted: true });
		expect((await raw(crashed.id)).sweepAt).toBeUndefined();
		expect(await stock("p2")).toMatchObject({
			reserved: before.reserved,
			onHand: before.onHand - 61
		});
		expect(await sweepCounting()).toBeLessThan(10); // nothing due: the holds' check alone
	});

	it("rejects a checkout abandoned mid-reservation once it is due, and gives its stock back", async () => {
		const before = await stock("p3");
		const { order } = await checkout("p3", 2);
		// As a checkout whose node died after reserving leaves it: still `reserving`, an hour ago.
		const hourAgo = new Date(Date.now() - 3_600_000).toISOString();
		await orders.adapter.updateMany(
			{ _id: order.id },
			{ $set: { status: "reserving", createdAt: hourAgo, sweepAt: hourAgo } }
		);
		await orders.sweep();
		expect(await raw(order.id)).toMatchObject({ status: "rejected", stockReleased: true });
		expect((await raw(order.id)).sweepAt).toBeUndefined();
		expect(await stock("p3")).toMatchObject({ reserved: before.reserved });
	});

	it("moves an early marker to when the work is due instead of acting on it", async () => {
		const { order } = await checkout("p3");
		const now = new Date().toISOString();
		await orders.adapter.updateMany({ _id: order.id }, { $set: { sweepAt: now } });
		await orders.sweep();
		expect(await raw(order.id)).toMatchObject({
			status: "pending_payment",
			sweepAt: order.expiresAt
		});
	});

	it("gives orders stored before markers existed theirs, once per process, and finishes their work", async () => {
		const before = await stock("p3");
		const { order } = await checkout("p3");
		// A paid order of the previous version whose sale was never recorded: no marker at all.
		await orders.adapter.updateMany(
			{ _id: order.id },
			{ $set: { status: "paid" }, $unset: { sweepAt: true } }
		);
		await orders.sweep();
		expect((await raw(order.id)).stockCommitted).toBe(false); // this process already made its pass

		(orders as unknown as { legacyMarked: boolean }).legacyMarked = false; // as after a restart
		await orders.sweep();
		expect(await raw(order.id)).toMatchObject({ status: "paid", stockCommitted: true });
		expect((await raw(order.id)).sweepAt).toBeUndefined();
		expect(await stock("p3")).toMatchObject({
			reserved: before.reserved,
			onHand: before.onHand - 1
		});
	});

	it("leaves orders whose work fails due for the next sweep, and says so once", async () => {
		const { order } = await checkout("p1");
		const at = new Date().toISOString();
		// A paid order whose sale inventory refuses (a line it cannot take): the work fails on every sweep.
		await orders.adapter.updateMany(
			{ _id: order.id },
			{ $set: { status: "paid", updatedAt: at, sweepAt: at, "items.0.quantity": 0 } }
		);
		const logger = (orders as unknown as { logger: { warn: (...args: unknown[]) => void } }).logger;
		const warn = jest.spyOn(logger, "warn").mockImplementation(() => undefined);
		let warned: unknown[];
		try {
			await orders.sweep();
			await orders.sweep();
			warned = warn.mock.calls.map(c => c[0]);
		} finally {
			warn.mockRestore();
		}
		expect(await raw(order.id)).toMatchObject({
			status: "paid",
			stockCommitted: false,
			sweepAt: at
		});
		expect(warned).toEqual([
			"1 due orders not finished; the next sweep retries them",
			"1 due orders not finished; the next sweep retries them"
		]);
		// Put right, the next sweep finishes it.
		await orders.adapter.updateMany({ _id: order.id }, { $set: { "items.0.quantity": 1 } });
		await orders.sweep();
		expect(await raw(order.id)).toMatchObject({ status: "paid", stockCommitted: true });
		expect((await raw(order.id)).sweepAt).toBeUndefined();
	});
});
