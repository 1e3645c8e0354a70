import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { type ServiceBroker as Broker, ServiceBroker } from "moleculer";
import type { DbAdapter } from "../../../adapters/store";
import { createPricingService } from "../../../services/pricing/pricing.service";
import type { Quote } from "../../../services/pricing/types";
import { testConfig } from "../../helpers/config";

describe("pricing.quote's product categories (in-process, a stub catalog)", () => {
	const cfg = testConfig({
		DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), "flashmart-pricing-cat-")),
		TAX_DEFAULT_COUNTRY: "DE",
		CATALOG_CACHE_TTL: "60"
	});
	const broker: Broker = new ServiceBroker({ logger: false });
	const pricing = broker.createService(createPricingService(cfg)) as unknown as {
		stores: Record<string, DbAdapter>;
	};
	const categories: Record<string, string> = { a: "books", b: "toys", c: "books" };
	const calls: Array<{ action: string; ids: string[] }> = [];
	let down = false;
	broker.createService({
		name: "products",
		actions: {
			summaries(ctx) {
				const ids = (ctx.params as { ids: string[] }).ids;
				calls.push({ action: "summaries", ids: [...ids] });
				if (down) throw new Error("products is down");
				return Object.fromEntries(
					ids.filter(id => id in categories).map(id => [id, { id, category: categories[id] }])
				);
			},
			get(ctx) {
				calls.push({ action: "get", ids: [(ctx.params as { idOrSlug: string }).idOrSlug] });
				throw new Error("pricing must not read products one by one");
			}
		}
	});
	beforeAll(async () => {
		await broker.start();
		// Books at 7 %, the rest at 19 %: a line's tax tells which category pricing saw.
		await pricing.stores.tax.insert({
			_id: "rates",
			rates: [
				{ country: "DE", rate: 1900 },
				{ country: "DE", category: "books", rate: 700 }
			]
		});
	});
	afterAll(() => broker.stop());
	beforeEach(() => {
		calls.length = 0;
		down = false;
	});

	const quote = (ids: string[]) =>
		broker.call<Quote, object>("pricing.quote", {
			currency: "USD", // tax on top: a line's tax is its rate of 1000
			items: ids.map(productId => ({ productId, lineTotal: 1000 }))
		});

	it("asks products once per quote, for the ids it does not hold, and prices each line by its category", async () => {
		const first = await quote(["a", "b", "unknown"]);
		expect(calls).toEqual([{ action: "summaries", ids: ["a", "b", "unknown"] }]);
		// 7 % of 1000 (books), 19 % of 1000 (toys), 19 % of 1000 (no category: the country's rate).
		expect(first.taxTotal).toBe(70 + 190 + 190);

		calls.length = 0;
		const second = await quote(["a", "b", "c"]);
		expect(calls).toEqual([{ action: "summaries", ids: ["c"] }]);
		expect(second.taxTotal).toBe(70 + 190 + 70);

		calls.length = 0;
		await quote(["a", "b", "c"]);
		expect(calls).toEqual([]);
	});

	it("reads them again after products.cache.clean, and keeps nothing of a failed read", async () => {
		await quote(["a", "b"]);
		calls.length = 0;
		categories.a = "toys";
		await broker.broadcast("products.cache.clean", {});
		await new Promise(resolve => setImmediate(resolve));
		expect((await quote(["a", "b"])).taxTotal).toBe(190 + 190);
		expect(calls).toEqual([{ action: "summaries", ids: ["a", "b"] }]);

		categories.d = "books";
		down = true;
		// Products not answering: the line is priced at the country's rate, and nothing is kept for it.
		expect((await quote(["d"])).taxTotal).toBe(190);
		down = false;
		expect((await quote(["d"])).taxTotal).toBe(70);
		expect(calls.filter(c => c.ids.includes("d"))).toHaveLength(2);
		expect(calls.every(c => c.action === "summaries")).toBe(true);
	});
});
