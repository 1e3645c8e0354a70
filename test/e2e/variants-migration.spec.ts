/**
 * Issue 20's migration: an embedded node of this version started on the store the version before variants wrote
 * (test/fixtures/store-before-variants, made by test/fixtures/make-store-before-variants.mjs from commit 2325260).
 * Every product gets its default variant (the product's own id) with its stock and holds intact; the pending order,
 * the paid one and the cart written then keep working; a second start changes nothing.
 */
import fs from "node:fs";
import path from "node:path";
import { type Proc, tempDir } from "../../scripts/lib/cluster";
import { startEmbedded } from "../helpers/embedded";
import { api } from "../helpers/flashmart-cluster";
import { ADDRESS, type Res } from "../helpers/shop";

const FIXTURE = path.join(__dirname, "../fixtures/store-before-variants");
const { writtenAt, ids, stock } = JSON.parse(
	fs.readFileSync(path.join(FIXTURE, "ids.json"), "utf8")
) as {
	writtenAt: string;
	ids: { mug: string; lamp: string; paid: string; pending: string };
	stock: Record<
		"mug" | "lamp",
		{ productId: string; onHand: number; reserved: number; available: number }
	>;
};
const ADMIN = { email: "admin@flashmart.test", password: "admin-password" };
const CUSTOMER = { email: "old-customer@flashmart.test", password: "customer-password" };

/**
 * A copy of the fixture aged to today: every `expiresAt` moves by the time since it was written, so the pending
 * order and its hold are as far from expiring as they were then (NeDB files are one JSON document per line).
 */
function agedCopy(): string {
	const dir = tempDir("variants-migration");
	const shift = Date.now() - Date.parse(writtenAt);
	fs.cpSync(FIXTURE, dir, { recursive: true });
	for (const file of fs.readdirSync(dir).filter(f => f.endsWith(".db"))) {
		const lines = fs.readFileSync(path.join(dir, file), "utf8").split("\n");
		const aged = lines.map(line => {
			if (!line.includes('"expiresAt"')) return line;
			const doc = JSON.parse(line);
			const age = (v: unknown) =>
				typeof v === "number"
					? v + shift
					: typeof v === "string"
						? new Date(Date.parse(v) + shift).toISOString()
						: v;
			if (doc.expiresAt !== undefined) doc.expiresAt = age(doc.expiresAt);
			if (doc.$set?.expiresAt !== undefined) doc.$set.expiresAt = age(doc.$set.expiresAt);
			return JSON.stringify(doc);
		});
		fs.writeFileSync(path.join(dir, file), aged.join("\n"));
	}
	return dir;
}

describe("variants: a store written before variants", () => {
	const dataDir = agedCopy();
	let node: Proc;
	let base: string;
	const env = { DATA_DIR: dataDir, SEED_DEMO: "false", ...{ ADMIN_EMAIL: ADMIN.email } };
	const token = async (who: typeof ADMIN) =>
		(await api(base, "POST", "/api/auth/login", { body: who })).body.accessToken as string;
	const inventory = async (id: string): Promise<Res> =>
		api(base, "GET", `/api/inventory/${id}`, { token: await token(ADMIN) });

	beforeAll(async () => {
		({ node, base } = await startEmbedded("variants-migration", {
			...env,
			ADMIN_PASSWORD: ADMIN.password
		}));
		expect(node.output()).toContain("Variants: 2 products got their default variant");
	}, 60_000);
	afterAll(async () => node?.stop());

	it("gives every product its default variant, whose id is the product's, with its stock intact", async () => {
		for (const key of ["mug", "lamp"] as const) {
			const product = (await api(base, "GET", `/api/products/${ids[key]}`)).body;
			expect(product.options).toEqual([]);
			expect(product.variants).toEqual([
				expect.objectContaining({ id: ids[key], options: {}, available: stock[key].available })
			]);
			expect(product.priceRange).toEqual({ min: product.price, max: product.price });
			expect(product.available).toBe(stock[key].available);
			const level = await inventory(ids[key]);
			expect(level.status).toBe(200);
			expect(level.body).toMatchObject(stock[key]);
			const byVariant = await api(base, "GET", `/api/inventory/variants/${ids[key]}`, {
				token: await token(ADMIN)
			});
			expect(byVariant.body).toMatchObject({ ...stock[key], variantId: ids[key] });
		}
	});

	it("keeps the old cart, pays the pending order from its old hold, and checks out the cart", async () => {
		const customer = await token(CUSTOMER);
		const cart = (await api(base, "GET", "/api/cart", { token: customer })).body;
		expect(cart.items).toEqual([
			expect.objectContaining({ productId: ids.mug, variantId: ids.mug, quantity: 3 })
		]);

		const paid = await api(base, "POST", `/api/orders/${ids.pending}/pay`, {
			token: customer,
			body: { paymentToken: "tok_visa" },
			headers: { "Idempotency-Key": "after-variants" }
		});
		expect(paid.status).toBe(200);
		expect(paid.body.status).toBe("paid");
		// The 2 units the old hold kept are sold: off the shelf, no longer reserved.
		expect((await inventory(ids.mug)).body).toMatchObject({
			onHand: stock.mug.onHand - 2,
			reserved: 0,
			available: stock.mug.onHand - 2
		});

		const order = await api(base, "POST", "/api/orders", {
			token: customer,
			body: { shippingAddress: ADDRESS },
			headers: { "Idempotency-Key": "after-variants-checkout" }
		});
		expect(order.status).toBe(201);
		expect(order.body.items).toEqual([
			expect.objectContaining({ productId: ids.mug, variantId: ids.mug, quantity: 3 })
		]);
		expect((await inventory(ids.mug)).body.reserved).toBe(3);
		const cancelled = await api(base, "POST", `/api/orders/${order.body.id}/cancel`, {
			token: customer
		});
		expect(cancelled.body.status).toBe("cancelled");
		expect((await inventory(ids.mug)).body.reserved).toBe(0);

		const old = (await api(base, "GET", `/api/orders/${ids.paid}`, { token: customer })).body;
		expect(old.status).toBe("paid");
		expect(old.items).toEqual([expect.objectContaining({ productId: ids.lamp, quantity: 1 })]);
	});

	it("changes nothing more when started again on the migrated store", async () => {
		const before = (await api(base, "GET", `/api/products/${ids.lamp}`)).body;
		await node.stop();
		({ node, base } = await startEmbedded("variants-migration-again", {
			...env,
			ADMIN_PASSWORD: ADMIN.password
		}));
		const after = (await api(base, "GET", `/api/products/${ids.lamp}`)).body;
		expect(after).toEqual(before);
		expect(node.output()).not.toContain("got their default variant");
	}, 60_000);
});
