/**
 * The typed client generated from the served OpenAPI document (client/), used as an API client would: a shopper's
 * purchase (register, browse, cart, checkout, pay) and an admin's fulfilment (ship, deliver), against the embedded
 * default and against a cluster of one node per service over a real nats-server.
 */
import { type FlashMartClient, type Schema, createFlashMartClient } from "../../client";
import { startEmbedded } from "../helpers/embedded";
import { startCluster } from "../helpers/flashmart-cluster";
import { ADDRESS, eventually, unique } from "../helpers/shop";
import { stopAll } from "../../scripts/lib/cluster";

const ADMIN = { email: "client-admin@flashmart.test", password: "client-admin-password" };
const ADMIN_ENV = { ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password };

/** A client that signs its requests with whatever token the session holds now. */
function session(baseUrl: string) {
	const state: { token?: string } = {};
	const client = createFlashMartClient({ baseUrl, token: () => state.token });
	return {
		client,
		signIn(tokens: Schema<"AuthTokens">) {
			state.token = tokens.accessToken;
		}
	};
}

const targets: Array<[string, () => Promise<{ base: string; stop(): Promise<void> }>]> = [
	[
		"the embedded default",
		async () => {
			const { base } = await startEmbedded("client-embedded", ADMIN_ENV);
			return { base, stop: () => stopAll() };
		}
	],
	[
		"a cluster over a real nats-server",
		async () => {
			const cluster = await startCluster({
				services: ["users", "products", "inventory", "carts", "orders", "payments"],
				env: ADMIN_ENV
			});
			return { base: cluster.base, stop: () => cluster.stop() };
		}
	]
];

describe.each(targets)("the typed client against %s", (_name, start) => {
	let target: { base: string; stop(): Promise<void> };
	let admin: ReturnType<typeof session>;
	let shopper: ReturnType<typeof session>;

	beforeAll(async () => {
		target = await start();
		admin = session(target.base);
		shopper = session(target.base);
		const login = await admin.client.POST("/api/auth/login", { body: ADMIN });
		expect(login.response.status).toBe(200);
		admin.signIn(login.data!);
	}, 90_000);
	afterAll(() => target?.stop());

	/** A product only this run sells, created by the admin, once its stock is announced. */
	async function newProduct(stock: number): Promise<Schema<"Product">> {
		const name = unique("Client mug");
		const created = await admin.client.POST("/api/products", {
			body: { sku: unique("CLIENT"), name, price: 1299, category: "client-e2e", stock }
		});
		expect(created.response.status).toBe(201);
		return created.data!;
	}

	it("runs a shopper's purchase and an admin's fulfilment", async () => {
		const product = await newProduct(5);

		// Register: the answer is a session whose user is a customer.
		const email = `${unique("shopper")}@example.com`;
		const registered = await shopper.client.POST("/api/auth/register", {
			body: { email, password: "shopper-password", name: "Shopper" }
		});
		expect(registered.response.status).toBe(201);
		expect(registered.data!.user).toMatchObject({ email, roles: ["customer"] });
		shopper.signIn(registered.data!);

		// Browse: search the catalog, then open the product by its slug once its stock is on sale.
		const found = await shopper.client.GET("/api/products", {
			params: { query: { q: product.name, pageSize: 10 } }
		});
		expect(found.response.status).toBe(200);
		expect(found.data!.rows.map(p => p.id)).toEqual([product.id]);
		const onSale = await eventually(async () => {
			const { data } = await shopper.client.GET("/api/products/{id}", {
				params: { path: { id: product.slug } }
			});
			return data?.available === 5 ? data : undefined;
		});
		expect(onSale).toMatchObject({ id: product.id, price: 1299, currency: "USD" });

		// Cart: two units at the catalog price.
		const cart = await shopper.client.POST("/api/cart/items", {
			body: { productId: product.id, quantity: 2 }
		});
		expect(cart.response.status).toBe(200);
		expect(cart.data).toMatchObject({
			items: [{ productId: product.id, quantity: 2, unitPrice: 1299, lineTotal: 2598 }],
			subtotal: 2598,
			currency: "USD"
		});

		// Checkout and pay, each under its idempotency key.
		const order = await shopper.client.POST("/api/orders", {
			params: { header: { "Idempotency-Key": unique("checkout") } },
			body: { shippingAddress: ADDRESS }
		});
		expect(order.response.status).toBe(201);
		expect(order.data).toMatchObject({ status: "pending_payment", total: 2598, currency: "USD" });
		const orderId = order.data!.id;
		const paid = await shopper.client.POST("/api/orders/{id}/pay", {
			params: { path: { id: orderId }, header: { "Idempotency-Key": unique("pay") } },
			body: { paymentToken: "tok_visa" }
		});
		expect(paid.response.status).toBe(200);
		expect(paid.data).toMatchObject({
			status: "paid",
			payment: { status: "succeeded", amount: 2598 }
		});

		// A customer cannot ship: the error answer is typed as the document's Error.
		const refused = await shopper.client.POST("/api/orders/{id}/ship", {
			params: { path: { id: orderId } }
		});
		expect(refused.response.status).toBe(403);
		expect(refused.error).toMatchObject({ code: 403, type: "FORBIDDEN" });

		// Fulfilment: the admin ships and delivers; the shopper sees the delivered order.
		const shipped = await admin.client.POST("/api/orders/{id}/ship", {
			params: { path: { id: orderId } }
		});
		expect(shipped.data?.status).toBe("shipped");
		const delivered = await admin.client.POST("/api/orders/{id}/deliver", {
			params: { path: { id: orderId } }
		});
		expect(delivered.data?.status).toBe("delivered");
		const mine = await shopper.client.GET("/api/orders", { params: { query: {} } });
		expect(mine.data!.rows).toEqual([
			expect.objectContaining({ id: orderId, status: "delivered" })
		]);

		// The two sold units left the stock.
		const stock = await admin.client.GET("/api/inventory/{productId}", {
			params: { path: { productId: product.id } }
		});
		expect(stock.data).toEqual({
			productId: product.id,
			variantId: product.id,
			onHand: 3,
			reserved: 0,
			available: 3
		});
	});

	it("answers a product by id and by slug on one path, and 404 in the Error shape", async () => {
		const product = await newProduct(1);
		const get = (id: string) =>
			shopper.client.GET("/api/products/{id}", { params: { path: { id } } });
		expect((await get(product.id)).data?.id).toBe(product.id);
		expect((await get(product.slug)).data?.id).toBe(product.id);
		const missing = await get("no-such-product");
		expect(missing.response.status).toBe(404);
		expect(missing.error).toMatchObject({
			code: 404,
			type: "NOT_FOUND",
			requestId: expect.any(String)
		});
	});
});

/** Keeps the client honest at compile time: an operation the document lacks does not type-check. */
export function notAnOperation(client: FlashMartClient) {
	// @ts-expect-error GET /api/orders/{id}/refund is not in the document
	return client.GET("/api/orders/{id}/refund", { params: { path: { id: "x" } } });
}
