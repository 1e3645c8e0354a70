/**
 * The chaos run: many concurrent purchase flows (add to cart, checkout, pay; each customer its own cart, retries
 * with the same Idempotency-Key as a careful client does) over real HTTP through a multi-process cluster on JetStream,
 * while nodes of inventory, orders and payments are killed (-9) and restarted and nats-server is restarted. Then it
 * waits for the cluster to settle (sweeper, reconciliation, outbox relays) and checks the invariants:
 * 0 oversold units, 0 double charges, every paid order's units sold and every charge belonging to a paid order (or
 * refunded), reserved units exactly those of orders awaiting payment, every answer 2xx/4xx/503/504.
 *
 * Used by test/integration/chaos.spec.ts (a short run) and by `npm run chaos` (longer; test/chaos/run.ts).
 */
import { sleep } from "../../scripts/lib/cluster";
import { type TestCluster, api, startCluster } from "../helpers/flashmart-cluster";
import {
	ADDRESS,
	ADMIN,
	type Probe,
	eventually,
	startProbe,
	unitsByProduct
} from "../helpers/shop";

export interface ChaosOptions {
	/** Concurrent customers, each running purchase flows one after another. */
	customers: number;
	/** How long the flows and the chaos last (ms). */
	durationMs: number;
	/** Products and units of each. */
	products: number;
	stockEach: number;
	/** Pause between two disruptions (ms). */
	disruptEveryMs: number;
	/** How long a killed node stays down (ms). */
	downMs: number;
	log?: (line: string) => void;
}

export interface ChaosReport {
	flows: number;
	purchases: number;
	/** Count of every HTTP status answered, plus "network" for requests that got no answer at all. */
	statuses: Record<string, number>;
	disruptions: string[];
	oversold: number;
	doubleCharges: number;
	/** Paid orders whose units are not (all) sold, per product: sold by stock ≠ units of paid orders. */
	unsoldPaidUnits: number;
	/** Reserved units that no pending order accounts for (or the reverse). */
	reservedMismatch: number;
	/** Succeeded charges neither on a paid order nor refunded. */
	strayCharges: number;
	/** Answers outside 2xx/4xx/503/504. */
	badAnswers: number;
	settleMs: number;
	/** When the cluster did not settle: why the last check failed, and each node's state and last lines. */
	unsettled?: { lastError: string; nodes: Record<string, string> };
}

const RETRIES = 3;
const SERVICES = ["users", "products", "inventory", "carts", "orders", "payments", "notifications"];
const VICTIMS = ["inventory", "orders", "payments"];

function randomKey(prefix: string) {
	return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
	const log = opts.log ?? (() => undefined);
	const cluster: TestCluster = await startCluster({
		services: SERVICES,
		env: {
			ADMIN_EMAIL: ADMIN.email,
			ADMIN_PASSWORD: ADMIN.password,
			ORDER_TTL: "600",
			ORDER_SWEEP_INTERVAL: "500",
			PAYMENT_PROVIDER_TIMEOUT: "1500",
			PAYMENT_RECONCILE_INTERVAL: "500",
			OUTBOX_RELAY_INTERVAL: "300",
			EVENT_ACK_WAIT: "2000",
			LOG_LEVEL: "warn"
		}
	});
	let probe: Probe | undefined;
	try {
		const base = cluster.base;
		probe = await startProbe(cluster);
		const statuses: Record<string, number> = {};
		const call = async (
			method: string,
			path: string,
			body?: unknown,
			token?: string,
			key?: string
		) => {
			try {
				const res = await api(base, method, path, {
					body,
					token,
					headers: key ? { "Idempotency-Key": key } : {}
				});
				statuses[res.status] = (statuses[res.status] ?? 0) + 1;
				return res;
			} catch {
				statuses.network = (statuses.network ?? 0) + 1;
				return { status: 0, headers: new Headers(), body: null };
			}
		};
		/** A careful client: the same request (and key) again after a 503/504 or no answer. */
		const withRetries = async (send: () => ReturnType<typeof call>) => {
			let res = await send();
			for (let i = 0; i < RETRIES && [0, 503, 504].includes(res.status); i++) {
				await sleep(200 + Math.random() * 300);
				res = await send();
			}
			return res;
		};

		const admin = (await api(base, "POST", "/api/auth/login", { body: ADMIN })).body.accessToken;
		const productIds: string[] = [];
		for (let i = 0; i < opts.products; i++) {
			const res = await api(base, "POST", "/api/products", {
				token: admin,
				body: {
					sku: randomKey("CHAOS"),
					name: `Chaos item ${i}`,
					price: 500 + i * 100,
					category: "chaos",
					stock: opts.stockEach
				}
			});
			if (res.status !== 201) throw new Error(`product: ${res.status} ${JSON.stringify(res.body)}`);
			productIds.push(res.body.id);
		}
		log(`registering ${opts.customers} customers...`);
		const tokens: string[] = [];
		while (tokens.length < opts.customers) {
			const batch = await Promise.all(
				Array.from({ length: Math.min(8, opts.customers - tokens.length) }, () =>
					api(base, "POST", "/api/auth/register", {
						body: {
							email: `${randomKey("chaos")}@example.com`,
							password: "chaos-password",
							name: "C"
						}
					})
				)
			);
			for (const r of batch) {
				if (r.status !== 201) throw new Error(`register: ${r.status}`);
				tokens.push(r.body.accessToken);
			}
		}

		let running = true;
		let flows = 0;
		let purchases = 0;
		const flow = async (token: string) => {
			while (running) {
				flows++;
				const productId = productIds[Math.floor(Math.random() * productIds.length)];
				const quantity = 1 + Math.floor(Math.random() * 2);
				const added = await withRetries(() =>
					call("POST", "/api/cart/items", { productId, quantity }, token)
				);
				if (added.status !== 200) continue;
				const checkoutKey = randomKey("co");
				const order = await withRetries(() =>
					call("POST", "/api/orders", { shippingAddress: ADDRESS }, token, checkoutKey)
				);
				if (order.status !== 201) {
					// Out of stock (or gave up): empty the cart for the next flow.
					await call("DELETE", "/api/cart", undefined, token);
					if (order.status === 409) await sleep(100);
					continue;
				}
				const payKey = randomKey("pay");
				const paid = await withRetries(() =>
					call(
						"POST",
						`/api/orders/${order.body.id}/pay`,
						{ paymentToken: "tok_visa" },
						token,
						payKey
					)
				);
				if (paid.status === 200) purchases++;
			}
		};

		const disruptions: string[] = [];
		const chaos = async () => {
			let round = 0;
			await sleep(opts.disruptEveryMs / 2);
			while (running) {
				const victim = round % (VICTIMS.length + 1);
				if (victim === VICTIMS.length) {
					disruptions.push("nats restart");
					log("chaos: restarting nats-server");
					await cluster.nats.restart();
				} else {
					const name = VICTIMS[victim];
					disruptions.push(`kill -9 ${name}`);
					log(`chaos: kill -9 ${name}`);
					await cluster.nodes.get(name)!.kill9();
					await sleep(opts.downMs);
					await cluster.startService(name);
				}
				round++;
				await sleep(opts.disruptEveryMs);
			}
		};

		log(
			`running ${opts.customers} concurrent purchase flows for ${opts.durationMs} ms with chaos...`
		);
		const workers = tokens.map(t => flow(t));
		const chaosDone = chaos();
		await sleep(opts.durationMs);
		running = false;
		await Promise.all([...workers, chaosDone]);

		log("settling...");
		const settleStarted = Date.now();
		// Every node back (the last restart may still be joining), then the invariants, which the cluster reaches once
		// the sweeper, reconciliation and outbox relays have finished what the chaos interrupted.
		const measure = async () => {
			const orders: any[] = [];
			for (let page = 1; ; page++) {
				const res = await api(base, "GET", `/api/orders?page=${page}&pageSize=100`, {
					token: admin
				});
				if (res.status !== 200) throw new Error(`orders: ${res.status}`);
				orders.push(...res.body.rows);
				if (page >= res.body.totalPages) break;
			}
			const mine = orders.filter(o => productIds.includes(o.items[0]?.productId));
			const levels = await Promise.all(
				productIds.map(async id => {
					const res = await api(base, "GET", `/api/inventory/${id}`, { token: admin });
					if (res.status !== 200) throw new Error(`inventory: ${res.status}`);
					return res.body as {
						productId: string;
						onHand: number;
						reserved: number;
						available: number;
					};
				})
			);
			const ledger = await probe!.call<any[]>("payments.ledger", {});
			const sold = unitsByProduct(
				mine.filter(o => ["paid", "shipped", "delivered"].includes(o.status))
			);
			const held = unitsByProduct(mine.filter(o => o.status === "pending_payment"));
			let oversold = 0;
			let unsoldPaidUnits = 0;
			let reservedMismatch = 0;
			for (const l of levels) {
				// Units promised beyond what there was: negative levels, or paid orders for more than the stock.
				oversold += Math.max(0, -l.onHand) + Math.max(0, -l.available) + Math.max(0, -l.reserved);
				oversold += Math.max(0, (sold.get(l.productId) ?? 0) - opts.stockEach);
				unsoldPaidUnits += Math.abs(opts.stockEach - l.onHand - (sold.get(l.productId) ?? 0));
				reservedMismatch += Math.abs(l.reserved - (held.get(l.productId) ?? 0));
			}
			const byOrder = new Map<string, { charged: number; refunded: number }>();
			for (const e of ledger) {
				const entry = byOrder.get(e.reference) ?? { charged: 0, refunded: 0 };
				if (e.id.startsWith("ch_") && e.status === "succeeded") entry.charged++;
				if (e.id.startsWith("re_")) entry.refunded++;
				byOrder.set(e.reference, entry);
			}
			const statusOf = new Map(mine.map(o => [o.id, o.status]));
			let doubleCharges = 0;
			let strayCharges = 0;
			for (const [orderId, e] of byOrder) {
				if (!statusOf.has(orderId)) continue; // another run's order
				doubleCharges += Math.max(0, e.charged - 1);
				const kept = e.charged - e.refunded;
				const paid = ["paid", "shipped", "delivered"].includes(statusOf.get(orderId)!);
				if ((paid && kept !== 1) || (!paid && kept !== 0)) strayCharges++;
			}
			return { oversold, doubleCharges, unsoldPaidUnits, reservedMismatch, strayCharges };
		};
		let last: Awaited<ReturnType<typeof measure>> | undefined;
		let lastError: unknown;
		let unsettled: ChaosReport["unsettled"];
		try {
			await eventually(async () => {
				last = await measure().catch(err => {
					lastError = err;
					throw err;
				});
				return (
					last.oversold +
						last.doubleCharges +
						last.unsoldPaidUnits +
						last.reservedMismatch +
						last.strayCharges ===
					0
				);
			}, 60_000);
		} catch {
			// Report what was left (the caller asserts), and enough to tell which node did not come back.
			const nodes: Record<string, string> = {};
			for (const [name, proc] of cluster.nodes) {
				const { exitCode, signalCode } = proc.child;
				const state =
					exitCode === null && signalCode === null ? "running" : `exited ${exitCode ?? signalCode}`;
				const tail = proc
					.output()
					.trim()
					.split("\n")
					.slice(-4)
					.map(l => l.slice(0, 400));
				nodes[name] = [state, ...tail].join(" | ");
			}
			unsettled = { lastError: String(lastError ?? "invariants not reached"), nodes };
		}
		const settleMs = Date.now() - settleStarted;
		const badAnswers = Object.entries(statuses)
			.filter(([status]) => {
				const n = Number(status);
				return !(n >= 200 && n < 500) && n !== 503 && n !== 504;
			})
			.reduce((sum, [, count]) => sum + count, 0);
		return {
			flows,
			purchases,
			statuses,
			disruptions,
			...last!,
			badAnswers,
			settleMs,
			...(unsettled ? { unsettled } : {})
		};
	} finally {
		await probe?.stop();
		await cluster.stop();
	}
}
