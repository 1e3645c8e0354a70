import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { type ServiceBroker as Broker, ServiceBroker } from "moleculer";
import type { DbAdapter } from "../../../adapters/store";
import { createPricingService } from "../../../services/pricing/pricing.service";
import { testConfig } from "../../helpers/config";

describe("pricing redemptions (in-process, NeDB)", () => {
	const cfg = testConfig({
		DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), "flashmart-pricing-"))
	});
	const broker: Broker = new ServiceBroker({ logger: false });
	const pricing = broker.createService(createPricingService(cfg)) as unknown as {
		adapter: DbAdapter;
		stores: Record<string, DbAdapter>;
	};
	beforeAll(() => broker.start());
	afterAll(() => broker.stop());

	let seq = 0;
	async function code(fields: Record<string, unknown> = {}): Promise<string> {
		const id = `code${++seq}`;
		await pricing.adapter.insert({
			_id: id,
			key: `K${seq}`,
			code: `K${seq}`,
			type: "percentage",
			value: 10,
			used: 0,
			...fields
		});
		return id;
	}
	const used = async (id: string) =>
		((await pricing.adapter.findById(id)) as { used: number }).used;
	const customer = (id: string, user: string) =>
		pricing.stores.customers.findById(`${id}:${user}`) as Promise<{
			count: number;
			orders: Record<string, string>;
		} | null>;
	const redeem = (discountId: string, userId: string, orderId: string) =>
		broker.call("pricing.redeem", { discountId, userId, orderId });
	const release = (discountId: string, userId: string, orderId: string) =>
		broker.call("pricing.release", { discountId, userId, orderId }) as Promise<{
			released: boolean;
		}>;

	it("takes one use per order however often the take is retried, and gives it back once", async () => {
		const id = await code({ usageLimit: 5, perCustomerLimit: 2 });
		await redeem(id, "u1", "o1");
		await redeem(id, "u1", "o1");
		expect(await used(id)).toBe(1);
		expect(await customer(id, "u1")).toMatchObject({ count: 1, orders: { o1: "taken" } });
		expect((await pricing.adapter.findById(id)) as object).not.toHaveProperty("ops.o1");
		expect(await release(id, "u1", "o1")).toEqual({ released: true });
		expect(await release(id, "u1", "o1")).toEqual({ released: false });
		expect(await used(id)).toBe(0);
		expect(await customer(id, "u1")).toMatchObject({ count: 0, orders: {} });
	});

	it("never exceeds the usage limit or the customer's limit when takes race", async () => {
		const id = await code({ usageLimit: 7 });
		const results = await Promise.allSettled(
			Array.from({ length: 30 }, (_, i) => redeem(id, `racer${i % 10}`, `race-o${i}`))
		);
		expect(results.filter(r => r.status === "fulfilled")).toHaveLength(7);
		expect(await used(id)).toBe(7);
		const mine = await code({ perCustomerLimit: 3 });
		const same = await Promise.allSettled(
			Array.from({ length: 12 }, (_, i) => redeem(mine, "greedy", `greedy-o${i}`))
		);
		expect(same.filter(r => r.status === "fulfilled")).toHaveLength(3);
		expect(await customer(mine, "greedy")).toMatchObject({ count: 3 });
		for (const r of same.filter(x => x.status === "rejected")) {
			expect((r as PromiseRejectedResult).reason).toMatchObject({
				type: "DISCOUNT_INVALID",
				data: { reason: "customer_limit" }
			});
		}
	});

	it("gives back a take a crash left after the code's count moved (customer still taking)", async () => {
		const id = await code({ usageLimit: 3, used: 1, ops: { crashed: "take" } });
		await pricing.stores.customers.insert({
			_id: `${id}:u2`,
			codeId: id,
			userId: "u2",
			count: 1,
			orders: { crashed: "taking" }
		});
		expect(await release(id, "u2", "crashed")).toEqual({ released: true });
		expect(await used(id)).toBe(0);
		expect(await customer(id, "u2")).toMatchObject({ count: 0, orders: {} });
		expect((await pricing.adapter.findById(id)) as object).not.toHaveProperty("ops.crashed");
	});

	it("gives back a take a crash left before the code's count moved, without taking a use it never had", async () => {
		const id = await code({ usageLimit: 3, used: 2 });
		await pricing.stores.customers.insert({
			_id: `${id}:u3`,
			codeId: id,
			userId: "u3",
			count: 1,
			orders: { early: "taking" }
		});
		expect(await release(id, "u3", "early")).toEqual({ released: true });
		expect(await used(id)).toBe(2);
		expect(await customer(id, "u3")).toMatchObject({ count: 0, orders: {} });
	});

	it("finishes a give-back a crash interrupted after the count went back, without giving back twice", async () => {
		const id = await code({ used: 4, ops: { half: "release" } });
		await pricing.stores.customers.insert({
			_id: `${id}:u4`,
			codeId: id,
			userId: "u4",
			count: 1,
			orders: { half: "releasing" }
		});
		expect(await release(id, "u4", "half")).toEqual({ released: true });
		expect(await used(id)).toBe(4);
		expect(await customer(id, "u4")).toMatchObject({ count: 0, orders: {} });
		expect((await pricing.adapter.findById(id)) as object).not.toHaveProperty("ops.half");
	});

	it("keeps the count exact when takes and give-backs of the same orders race", async () => {
		const id = await code({ usageLimit: 1000 });
		const orders = Array.from({ length: 40 }, (_, i) => `mix-o${i}`);
		await Promise.allSettled(
			orders.flatMap(o => [redeem(id, `m-${o}`, o), release(id, `m-${o}`, o)])
		);
		// Whatever interleaving happened, a final give-back of each leaves nothing counted.
		await Promise.all(orders.map(o => release(id, `m-${o}`, o)));
		expect(await used(id)).toBe(0);
		for (const o of orders) expect((await customer(id, `m-${o}`))?.count ?? 0).toBe(0);
	});
});
