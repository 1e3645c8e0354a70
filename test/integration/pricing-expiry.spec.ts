/**
 * Issue 21 over real HTTP on a cluster over a real nats-server whose unpaid orders expire after 2 s: an order that
 * expires unpaid gives its code's redemption back exactly once (the code's uses and the customer's count), however
 * many sweeps, restarts of the orders node and replayed give-backs come after.
 */
import http from "node:http";
import { freePort } from "../../scripts/lib/cluster";
import { type TestCluster, api, startCluster } from "../helpers/flashmart-cluster";
import {
	ADMIN,
	type Probe,
	eventually,
	expectError,
	shop,
	startProbe,
	unique
} from "../helpers/shop";

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));
/** ORDER_SWEEP_INTERVAL of this cluster: waiting 10 of them lets several sweeps pass over an order. */
const SWEEP_MS = 200;

describe("pricing: an order that expires unpaid", () => {
	let cluster: TestCluster;
	let s: ReturnType<typeof shop>;
	let probe: Probe;
	let metricsPort = 0;

	/** `flashmart_discount_redemptions_total{outcome}` on the pricing node, or 0 while the series is absent. */
	async function redemptions(outcome: string): Promise<number> {
		// http.get, not fetch: fetch refuses some ports ("bad port") that freePort may hand out.
		const text = await new Promise<string>((resolve, reject) => {
			http
				.get(`http://127.0.0.1:${metricsPort}/metrics`, res => {
					let body = "";
					res.on("data", chunk => (body += chunk));
					res.on("end", () => resolve(body));
				})
				.on("error", reject);
		});
		const line = text
			.split("\n")
			.find(
				l =>
					l.startsWith("flashmart_discount_redemptions_total{") &&
					l.includes(`outcome="${outcome}"`)
			);
		return line ? Number(line.split(" ").pop()) : 0;
	}

	beforeAll(async () => {
		metricsPort = await freePort();
		cluster = await startCluster({
			services: ["users", "products", "inventory", "carts", "orders", "payments", "pricing"],
			env: {
				ADMIN_EMAIL: ADMIN.email,
				ADMIN_PASSWORD: ADMIN.password,
				ORDER_TTL: "2",
				ORDER_SWEEP_INTERVAL: String(SWEEP_MS)
			},
			envFor: { pricing: { METRICS_PORT: String(metricsPort) } }
		});
		s = shop(cluster);
		probe = await startProbe(cluster);
	}, 120_000);
	afterAll(async () => {
		await probe?.stop();
		await cluster?.stop();
	});

	const admin = async (method: string, path: string, body?: unknown) =>
		api(s.base, method, path, { token: await s.admin(), body });
	const discount = async (id: string) => (await admin("GET", `/api/discounts/${id}`)).body;
	const apply = (token: string, code: string) =>
		api(s.base, "POST", "/api/cart/discount", { token, body: { code } });

	it("gives the code's use and the customer's count back once, whatever sweeps, restarts and replays follow", async () => {
		const created = await admin("POST", "/api/discounts", {
			code: unique("EXP")
				.replace(/[^A-Za-z0-9]/g, "")
				.slice(-24)
				.toUpperCase(),
			type: "percentage",
			value: 20,
			usageLimit: 2,
			perCustomerLimit: 1
		});
		expect(created.status).toBe(201);
		const code = created.body;
		// One use taken by an order of another node's that never expires: a second give-back would show as used 0.
		await probe.call("pricing.redeem", {
			discountId: code.id,
			userId: "someone-else",
			orderId: unique("kept")
		});
		expect((await discount(code.id)).used).toBe(1);

		const product = await s.product(10, 1500);
		const [buyer, other] = await s.customers(2);
		await s.addToCart(buyer.token, product, 1);
		expect((await apply(buyer.token, code.code)).status).toBe(200);
		const releasedBefore = await redemptions("released");
		await s.addToCart(other.token, product, 1);
		const placed = await s.checkout(buyer.token);
		expect(placed.status).toBe(201);
		expect(placed.body).toMatchObject({
			discountTotal: 300,
			total: 1200,
			discount: { code: code.code }
		});
		expect((await discount(code.id)).used).toBe(2);
		// The limit is reached: nobody else can apply the code while the order waits for its payment.
		const exhausted = await apply(other.token, code.code);
		expectError(exhausted, 422, "DISCOUNT_INVALID");
		expect(exhausted.body.data.reason).toBe("exhausted");

		const orderId = placed.body.id;
		await eventually(async () => (await s.order(orderId)).status === "expired", 20_000);
		await eventually(async () => (await discount(code.id)).used === 1, 10_000);
		expect(await redemptions("released")).toBe(releasedBefore + 1);

		// More sweeps pass over the expired order, then the orders node starts again (its sweeper from scratch).
		await sleep(10 * SWEEP_MS);
		expect((await discount(code.id)).used).toBe(1);
		await cluster.nodes.get("orders")!.stop();
		await cluster.startService("orders");
		await eventually(async () => (await s.order(orderId))?.status === "expired", 30_000);
		await sleep(10 * SWEEP_MS);
		// A replayed give-back (a retry, a second orders node's sweeper), several at once: nothing more comes back.
		const replays = await Promise.all(
			Array.from({ length: 5 }, () =>
				probe.call<{ released: boolean }>("pricing.release", {
					discountId: code.id,
					userId: buyer.id,
					orderId
				})
			)
		);
		expect(replays).toEqual(Array.from({ length: 5 }, () => ({ released: false })));
		expect((await discount(code.id)).used).toBe(1);
		expect(await redemptions("released")).toBe(releasedBefore + 1);

		// The buyer's count went back too (per-customer limit 1): applying is no longer refused (customer_limit).
		await s.addToCart(buyer.token, product, 1);
		expect((await apply(buyer.token, code.code)).status).toBe(200);
		const again = await s.checkout(buyer.token);
		expect(again.status).toBe(201);
		expect(again.body.discount).toMatchObject({ code: code.code });
		// That order expires as well: its use comes back once too, and the first order's does not come back again.
		await eventually(async () => (await s.order(again.body.id)).status === "expired", 20_000);
		await eventually(async () => (await redemptions("released")) === releasedBefore + 2, 10_000);
		await sleep(10 * SWEEP_MS);
		expect((await discount(code.id)).used).toBe(1);
		expect(await redemptions("released")).toBe(releasedBefore + 2);
	}, 120_000);
});
