/**
 * Issue 16 items 3 and 10 over real HTTP on a cluster with two gateways on a real nats-server: a price of 0 is
 * refused, and two checkouts of one cart content make one order.
 */
import { type TestCluster, api, startCluster } from "../helpers/flashmart-cluster";
import { ADDRESS, ADMIN, expectError, shop, unique } from "../helpers/shop";

describe("orders.create across gateways", () => {
	let cluster: TestCluster;
	let s: ReturnType<typeof shop>;

	beforeAll(async () => {
		cluster = await startCluster({
			services: ["users", "inventory", "products", "carts", "orders"],
			gateways: 2,
			env: { ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password, ORDER_TTL: "600" }
		});
		s = shop(cluster);
	}, 120_000);
	afterAll(() => cluster?.stop());

	it("refuses a product price of 0 at create and update (422 VALIDATION_ERROR)", async () => {
		const token = await s.admin();
		const create = await api(s.base, "POST", "/api/products", {
			token,
			body: { sku: unique("ZERO"), name: "Free", price: 0, category: "testing", stock: 5 }
		});
		expectError(create, 422, "VALIDATION_ERROR");
		const id = await s.product(5, 100);
		const update = await api(s.base, "PATCH", `/api/products/${id}`, { token, body: { price: 0 } });
		expectError(update, 422, "VALIDATION_ERROR");
	});

	it("answers two concurrent checkouts of one cart with one 201 and one 409, stock reserved once", async () => {
		const { token } = await s.customer();
		const product = await s.product(10, 500);
		await s.addToCart(token, product, 3);
		const keys = [unique("first"), unique("second")];
		const [a, b] = cluster.gateways;
		const send = (base: string, k: string) =>
			api(base, "POST", "/api/orders", {
				token,
				body: { shippingAddress: ADDRESS },
				headers: { "Idempotency-Key": k }
			});
		const results = await Promise.all([send(a, keys[0]), send(b, keys[1])]);
		// The loser read the lines and lost the claim (409 CART_CHANGED), or read the cart already emptied (422).
		const won = results.find(r => r.status === 201)!;
		const lost = results.find(r => r !== won)!;
		expect(won).toBeDefined();
		expect([
			[409, "CART_CHANGED"],
			[422, "EMPTY_CART"]
		]).toContainEqual([lost.status, lost.body.type]);
		expect(await s.stock(product)).toMatchObject({ onHand: 10, reserved: 3, available: 7 });
		expect((await api(s.base, "GET", "/api/orders", { token })).body.total).toBe(1);

		// The same key as the winner replays its order, on either gateway.
		const again = await send(b, keys[results.indexOf(won)]);
		expect(again.status).toBe(201);
		expect(again.body.id).toBe(won.body.id);
		expect(await s.stock(product)).toMatchObject({ reserved: 3 });
	});

	it("replays the same key with the same order while another key finds the cart empty (422 EMPTY_CART)", async () => {
		const { token } = await s.customer();
		const product = await s.product(10, 500);
		await s.addToCart(token, product, 2);
		const key = unique("one");
		const first = await api(cluster.gateways[0], "POST", "/api/orders", {
			token,
			body: { shippingAddress: ADDRESS },
			headers: { "Idempotency-Key": key }
		});
		expect(first.status).toBe(201);
		const replay = await api(cluster.gateways[1], "POST", "/api/orders", {
			token,
			body: { shippingAddress: ADDRESS },
			headers: { "Idempotency-Key": key }
		});
		expect(replay.status).toBe(201);
		expect(replay.body.id).toBe(first.body.id);
		const other = await api(cluster.gateways[1], "POST", "/api/orders", {
			token,
			body: { shippingAddress: ADDRESS },
			headers: { "Idempotency-Key": unique("two") }
		});
		expectError(other, 422, "EMPTY_CART");
		expect(await s.stock(product)).toMatchObject({ reserved: 2, available: 8 });
	});
});
