/**
 * The chaos run: many concurrent purchase flows (add to cart, checkout, pay; some pay with `tok_timeout`, some cancel
 * after paying, which refunds; each customer its own cart, retries with the same Idempotency-Key as a careful client
 * does) over real HTTP through two gateways of a multi-process cluster on JetStream, while one fault after another
 * is applied: kill -9 of inventory, orders and payments, a NATS restart, then SIGTERM (a graceful stop under load) of
 * orders, payments, inventory and a gateway, each node started again. A client whose gateway refuses connections goes
 * to the other, as behind a load balancer.
 *
 * Then it waits for the cluster to settle (sweeper, reconciliation, outbox relays) and checks the invariants:
 * 0 oversold units, 0 double charges, every paid order's units sold and every charge belonging to a paid order (or
 * refunded), reserved units exactly those of orders awaiting payment, every answer 2xx/4xx/503/504; with a sale on the
 * first product, its allotment never exceeded, its units left exactly what its orders did not take, and no customer
 * over its per-customer limit. And per fault
 * phase: requests by status, the slowest answer, answers past the bound (REQUEST_TIMEOUT + 1 s), retries whose
 * answer contradicted the order's final state (a 409 for a pay or cancel that went through, a 200 for one that did
 * not), and connections dropped with no answer (a refused connection is not one: nothing was sent).
 *
 * Used by test/integration/chaos.spec.ts (a short run) and by `npm run chaos` (longer; test/chaos/run.ts). With
 * CHAOS_DUMP=<dir>, every node's output is written there at the end (the report's samples carry request ids).
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
	/** The first product is in a live sale of this many units, at most this many per customer. */
	sale?: { units: number; perCustomerLimit: number };
	log?: (line: string) => void;
}

/** What the clients saw while one fault lasted (from its start to the next fault's). */
export interface PhaseReport {
	phase: string;
	requests: number;
	/** HTTP statuses, plus "refused" (connection refused: nothing sent) and "dropped" (sent, never answered). */
	statuses: Record<string, number>;
	slowestMs: number;
	/** Answers (or silences) longer than REQUEST_TIMEOUT + 1 s. */
	pastBound: number;
	dropped: number;
}

export interface ChaosReport {
	flows: number;
	purchases: number;
	refunds: number;
	/** Count of every HTTP status answered, plus "refused" and "dropped" as in PhaseReport. */
	statuses: Record<string, number>;
	disruptions: string[];
	phases: PhaseReport[];
	boundMs: number;
	pastBound: number;
	dropped: number;
	/** Pay and cancel answers that contradicted the order's final state, with a few examples. */
	contradictions: number;
	contradictionSamples: string[];
	/** Every answer to a cancel, by status and type. */
	cancels: Record<string, number>;
	/** A few of the answers past the bound: phase, request, status, time. */
	pastBoundSamples: string[];
	/** The network errors behind `dropped`, by code. */
	droppedCodes: Record<string, number>;
	oversold: number;
	doubleCharges: number;
	/** Paid orders whose units are not (all) sold, per product: sold by stock ≠ units of paid orders. */
	unsoldPaidUnits: number;
	/** Reserved units that no pending order accounts for (or the reverse). */
	reservedMismatch: number;
	/** Succeeded charges neither on a paid order nor refunded. */
	strayCharges: number;
	/** Sale units held or sold beyond the sale's allotment. */
	saleOversold: number;
	/** The sale's units left against its units minus those of its pending and paid (or refunded) orders. */
	saleMismatch: number;
	/** Customers holding or owning more of the sale item than the per-customer limit. */
	limitBreaches: number;
	/** Answers outside 2xx/4xx/503/504. */
	badAnswers: number;
	settleMs: number;
	/** When the cluster did not settle: why the last check failed, and each node's state and last lines. */
	unsettled?: { lastError: string; nodes: Record<string, string> };
}

const RETRIES = 6;
/** A pay with `tok_timeout` is settled by reconciliation: its client keeps asking (same key) for longer. */
const TIMEOUT_PAY_RETRIES = 12;
export const REQUEST_TIMEOUT = 5000;
const BOUND_MS = REQUEST_TIMEOUT + 1000;
const SERVICES = ["users", "products", "inventory", "carts", "orders", "payments", "notifications"];
const VICTIMS = ["inventory", "orders", "payments"];
/** The faults, in order: each is one phase of the report. */
const FAULTS = [
	...VICTIMS.map(name => ({ kind: "kill -9", name })),
	{ kind: "restart", name: "nats" },
	...["orders", "payments", "inventory", "gateway"].map(name => ({ kind: "SIGTERM", name }))
] as const;
const PAID = ["paid", "shipped", "delivered"];

type Answer = { status: number; type?: string };
interface Tracked {
	orderId: string;
	pay: Answer[];
	cancel: Answer[];
}

function randomKey(prefix: string) {
	return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
	const log = opts.log ?? (() => undefined);
	const cluster: TestCluster = await startCluster({
		services: SERVICES,
		gateways: 2,
		env: {
			REQUEST_TIMEOUT: String(REQUEST_TIMEOUT),
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
		let phase = "steady";
		const droppedCodes: Record<string, number> = {};
		const phases = new Map<string, PhaseReport>();
		const pastBoundSamples: string[] = [];
		const record = (status: string, ms: number, what = "") => {
			if (ms > BOUND_MS && pastBoundSamples.length < 10)
				pastBoundSamples.push(
					`${phase}: ${what} ${status} after ${Math.round(ms)} ms (sent ${new Date(Date.now() - ms).toISOString()})`
				);
			let p = phases.get(phase);
			if (!p) {
				p = { phase, requests: 0, statuses: {}, slowestMs: 0, pastBound: 0, dropped: 0 };
				phases.set(phase, p);
			}
			p.requests++;
			p.statuses[status] = (p.statuses[status] ?? 0) + 1;
			statuses[status] = (statuses[status] ?? 0) + 1;
			p.slowestMs = Math.max(p.slowestMs, Math.round(ms));
			if (ms > BOUND_MS) p.pastBound++;
			if (status === "dropped") p.dropped++;
		};
		// A load balancer in front of the gateways: it probes each one's /ready and sends traffic to the ready ones;
		// when none is ready (a backend is down), to those not stopping (their /ready does not name "api").
		const READY = 2;
		const DEGRADED = 1;
		const health = cluster.gateways.map(() => READY);
		let probing = true;
		// Each gateway probed on its own, so one slow answer does not delay noticing another gateway going away.
		const prober = Promise.all(
			cluster.gateways.map(async (g, i) => {
				while (probing) {
					const res = await fetch(`${g}/ready`, { signal: AbortSignal.timeout(1000) }).catch(
						() => null
					);
					const body = (await res?.json().catch(() => null)) as { missing?: string[] } | null;
					health[i] =
						res?.status === 200
							? READY
							: res?.status === 503 && !body?.missing?.includes("api")
								? DEGRADED
								: 0;
					await sleep(100);
				}
			})
		);
		const route = (client: { gateway: number }) => {
			const best = Math.max(...health);
			if (health[client.gateway] < best) client.gateway = health.indexOf(best);
			return cluster.gateways[client.gateway];
		};
		/** One request through the client's gateway; a refused connection sends it to the other gateway at once. */
		const call = async (
			client: { gateway: number },
			method: string,
			path: string,
			body?: unknown,
			token?: string,
			key?: string
		): Promise<{ status: number; headers: Headers; body: any }> => {
			for (let tries = 0; tries < cluster.gateways.length * 3; tries++) {
				const started = performance.now();
				try {
					const res = await api(route(client), method, path, {
						body,
						token,
						headers: key ? { "Idempotency-Key": key } : {},
						signal: AbortSignal.timeout(BOUND_MS * 2)
					});
					record(
						String(res.status),
						performance.now() - started,
						`${method} ${path} ${res.headers.get("x-request-id")}`
					);
					return res;
				} catch (err) {
					const code = (err as { cause?: { code?: string } }).cause?.code;
					if (code === "ECONNREFUSED") {
						record("refused", performance.now() - started);
						client.gateway = (client.gateway + 1) % cluster.gateways.length;
						await sleep(50);
						continue;
					}
					record("dropped", performance.now() - started);
					droppedCodes[code ?? (err as Error).name] =
						(droppedCodes[code ?? (err as Error).name] ?? 0) + 1;
					return { status: 0, headers: new Headers(), body: null };
				}
			}
			return { status: 0, headers: new Headers(), body: null };
		};
		/** A careful client: the same request (and key) again after a 503/504, no answer, or "still in progress". */
		const withRetries = async (
			send: () => ReturnType<typeof call>,
			retries = RETRIES,
			seen?: Answer[]
		) => {
			let res = await send();
			seen?.push({ status: res.status, type: res.body?.type });
			for (
				let i = 0;
				i < retries &&
				([0, 503, 504].includes(res.status) || res.body?.type === "IDEMPOTENCY_KEY_IN_USE");
				i++
			) {
				await sleep(200 + Math.random() * 300);
				res = await send();
				seen?.push({ status: res.status, type: res.body?.type });
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
		let saleId: string | undefined;
		if (opts.sale) {
			const res = await api(base, "POST", "/api/sales", {
				token: admin,
				body: {
					name: "chaos sale",
					startsAt: new Date(Date.now() - 1000).toISOString(),
					endsAt: new Date(Date.now() + 3_600_000).toISOString(),
					items: [{ productId: productIds[0], salePrice: 250, ...opts.sale }]
				}
			});
			if (res.status !== 201) throw new Error(`sale: ${res.status} ${JSON.stringify(res.body)}`);
			saleId = res.body.id;
		}
		log(`registering ${opts.customers} customers...`);
		const tokens: string[] = [];
		while (tokens.length < opts.customers) {
			// Before the clock: a registration the loaded machine answered 503/504 is tried again as another customer.
			const register = async () => {
				for (let tries = 1; ; tries++) {
					const res = await api(base, "POST", "/api/auth/register", {
						body: {
							email: `${randomKey("chaos")}@example.com`,
							password: "chaos-password",
							name: "C"
						}
					});
					if (![503, 504].includes(res.status) || tries === 3) return res;
				}
			};
			const batch = await Promise.all(
				Array.from({ length: Math.min(8, opts.customers - tokens.length) }, register)
			);
			for (const r of batch) {
				if (r.status !== 201) throw new Error(`register: ${r.status}`);
				tokens.push(r.body.accessToken);
			}
		}

		let running = true;
		let flows = 0;
		let purchases = 0;
		let refunds = 0;
		const tracked: Tracked[] = [];
		const flow = async (token: string, client: { gateway: number }) => {
			while (running) {
				flows++;
				const productId = productIds[Math.floor(Math.random() * productIds.length)];
				const quantity = 1 + Math.floor(Math.random() * 2);
				const added = await withRetries(() =>
					call(client, "POST", "/api/cart/items", { productId, quantity }, token)
				);
				if (added.status !== 200) continue;
				const checkoutKey = randomKey("co");
				const order = await withRetries(() =>
					call(client, "POST", "/api/orders", { shippingAddress: ADDRESS }, token, checkoutKey)
				);
				if (order.status !== 201) {
					// Out of stock (or gave up): empty the cart for the next flow.
					await call(client, "DELETE", "/api/cart", undefined, token);
					if (order.status === 409) await sleep(100);
					continue;
				}
				const kind = Math.random();
				const silent = kind < 0.15;
				const t: Tracked = { orderId: order.body.id, pay: [], cancel: [] };
				tracked.push(t);
				const payKey = randomKey("pay");
				const paid = await withRetries(
					() =>
						call(
							client,
							"POST",
							`/api/orders/${t.orderId}/pay`,
							{ paymentToken: silent ? "tok_timeout" : "tok_visa" },
							token,
							payKey
						),
					silent ? TIMEOUT_PAY_RETRIES : RETRIES,
					t.pay
				);
				if (paid.status !== 200) {
					// Gave up paying: a careful client cancels, so the order's units go back for other buyers.
					if (!silent) {
						const giveUpKey = randomKey("cancel");
						await withRetries(
							() =>
								call(
									client,
									"POST",
									`/api/orders/${t.orderId}/cancel`,
									undefined,
									token,
									giveUpKey
								),
							RETRIES,
							t.cancel
						);
					}
					continue;
				}
				purchases++;
				if (kind >= 0.15 && kind < 0.4) {
					const cancelKey = randomKey("cancel");
					const cancelled = await withRetries(
						() =>
							call(client, "POST", `/api/orders/${t.orderId}/cancel`, undefined, token, cancelKey),
						RETRIES,
						t.cancel
					);
					if (cancelled.status === 200) refunds++;
				}
			}
		};

		const disruptions: string[] = [];
		const chaos = async () => {
			await sleep(opts.disruptEveryMs / 2);
			for (const fault of FAULTS) {
				const name = `${fault.kind} ${fault.name}`;
				phase = name;
				disruptions.push(name);
				log(`chaos: ${name}`);
				if (fault.name === "nats") {
					await cluster.nats.restart();
				} else if (fault.name === "gateway") {
					await cluster.gatewayProcs[1].stop("SIGTERM");
					await sleep(opts.downMs);
					await cluster.startGateway(1);
				} else {
					const proc = cluster.nodes.get(fault.name)!;
					if (fault.kind === "kill -9") await proc.kill9();
					else await proc.stop("SIGTERM");
					await sleep(opts.downMs);
					await cluster.startService(fault.name);
				}
				await sleep(opts.disruptEveryMs);
			}
			phase = "after";
		};

		log(
			`running ${opts.customers} concurrent purchase flows for at least ${opts.durationMs} ms through ${FAULTS.length} faults...`
		);
		const workers = tokens.map((t, i) => flow(t, { gateway: i % cluster.gateways.length }));
		await Promise.all([chaos(), sleep(opts.durationMs)]);
		running = false;
		await Promise.all(workers);
		probing = false;
		await prober;

		log("settling...");
		const settleStarted = Date.now();
		let finalStatus = new Map<string, string>();
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
			finalStatus = new Map(mine.map(o => [o.id, o.status]));
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
			let saleOversold = 0;
			let saleMismatch = 0;
			let limitBreaches = 0;
			if (saleId && opts.sale) {
				const inSale = (o: any) =>
					o.items
						.filter((i: any) => i.saleId === saleId)
						.reduce((n: number, i: any) => n + i.quantity, 0);
				const live = mine.filter(o =>
					["pending_payment", "paid", "shipped", "delivered", "refunded"].includes(o.status)
				);
				const taken = live.reduce((n, o) => n + inSale(o), 0);
				saleOversold = Math.max(0, taken - opts.sale.units);
				const res = await api(base, "GET", `/api/sales/${saleId}`);
				if (res.status !== 200) throw new Error(`sale: ${res.status}`);
				saleMismatch = Math.abs(res.body.items[0].unitsLeft - (opts.sale.units - taken));
				const byCustomer = new Map<string, number>();
				for (const o of live) byCustomer.set(o.userId, (byCustomer.get(o.userId) ?? 0) + inSale(o));
				limitBreaches = [...byCustomer.values()].filter(
					n => n > opts.sale!.perCustomerLimit
				).length;
			}
			return {
				oversold,
				doubleCharges,
				unsoldPaidUnits,
				reservedMismatch,
				strayCharges,
				saleOversold,
				saleMismatch,
				limitBreaches
			};
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
						last.strayCharges +
						last.saleOversold +
						last.saleMismatch +
						last.limitBreaches ===
					0
				);
			}, 60_000);
		} catch {
			// Report what was left (the caller asserts), and enough to tell which node did not come back.
			const nodes: Record<string, string> = {};
			const procs: Array<[string, (typeof cluster.gatewayProcs)[number]]> = [
				...cluster.nodes,
				...cluster.gatewayProcs.map((p, i) => [`gateway${i}`, p] as [string, typeof p])
			];
			for (const [name, proc] of procs) {
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
		// The truth of every retry, against where each order ended up (only its own client paid or cancelled it).
		const contradictionSamples: string[] = [];
		let contradictions = 0;
		const contradict = (t: Tracked, what: string, a: Answer, final: string) => {
			contradictions++;
			if (contradictionSamples.length < 10)
				contradictionSamples.push(
					`${what} of ${t.orderId}: ${a.status} ${a.type ?? ""}, final ${final}`
				);
		};
		for (const t of tracked) {
			const final = finalStatus.get(t.orderId) ?? "unknown";
			const wasPaid = PAID.includes(final) || final === "refunded";
			for (const a of t.pay) {
				if (a.status === 200 && !wasPaid) contradict(t, "pay", a, final);
				if (a.status === 409 && a.type === "INVALID_ORDER_STATE" && wasPaid)
					contradict(t, "pay", a, final);
			}
			const gone = final === "refunded" || final === "cancelled";
			for (const a of t.cancel) {
				if (a.status === 200 && !gone) contradict(t, "cancel", a, final);
				if (a.status === 409 && a.type === "INVALID_ORDER_STATE" && gone)
					contradict(t, "cancel", a, final);
			}
		}
		const phaseList = [...phases.values()];
		const cancels: Record<string, number> = {};
		for (const t of tracked)
			for (const a of t.cancel)
				cancels[`${a.status} ${a.type ?? ""}`.trim()] =
					(cancels[`${a.status} ${a.type ?? ""}`.trim()] ?? 0) + 1;
		const badAnswers = Object.entries(statuses)
			.filter(([status]) => {
				if (status === "refused" || status === "dropped") return false;
				const n = Number(status);
				return !(n >= 200 && n < 500) && n !== 503 && n !== 504;
			})
			.reduce((sum, [, count]) => sum + count, 0);
		return {
			flows,
			purchases,
			refunds,
			statuses,
			disruptions,
			phases: phaseList,
			boundMs: BOUND_MS,
			pastBound: phaseList.reduce((sum, p) => sum + p.pastBound, 0),
			dropped: phaseList.reduce((sum, p) => sum + p.dropped, 0),
			contradictions,
			contradictionSamples,
			droppedCodes,
			pastBoundSamples,
			cancels,
			...last!,
			badAnswers,
			settleMs,
			...(unsettled ? { unsettled } : {})
		};
	} finally {
		if (process.env.CHAOS_DUMP) {
			const fs = await import("node:fs");
			for (const [name, proc] of [
				...cluster.nodes,
				...cluster.gatewayProcs.map((p, i) => [`gateway${i}`, p] as const)
			])
				fs.writeFileSync(`${process.env.CHAOS_DUMP}/${name}.log`, proc.output());
		}
		await probe?.stop();
		await cluster.stop();
	}
}

/** The per-phase table of a report, one line per fault. */
export function formatPhases(report: ChaosReport): string {
	const rows = report.phases.map(p =>
		[
			p.phase.padEnd(18),
			String(p.requests).padStart(6),
			String(p.slowestMs).padStart(8),
			String(p.pastBound).padStart(6),
			String(p.dropped).padStart(8),
			"  " +
				Object.entries(p.statuses)
					.sort(([a], [b]) => a.localeCompare(b))
					.map(([k, v]) => `${k}:${v}`)
					.join(" ")
		].join("")
	);
	return [
		`${"phase".padEnd(18)}${"reqs".padStart(6)}${"slowest".padStart(8)}${"past".padStart(6)}${"dropped".padStart(8)}  statuses (bound ${report.boundMs} ms; retries contradicting the final state: ${report.contradictions})`,
		...rows
	].join("\n");
}
