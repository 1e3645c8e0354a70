/**
 * The benchmark scenarios, driven against a running FlashMart gateway. Two kinds:
 *   - a request scenario: one HTTP request that autocannon repeats on every connection;
 *   - a flow: a sequence of HTTP steps per iteration (add to cart, then check out), each built from what came
 *     before, run by bench/flow.ts with C virtual users in a closed loop; latencies are per step.
 */
import { randomUUID } from "node:crypto";

export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

export type JsonValue =
	string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** The request autocannon repeats: what a scenario declares, merged with what its setup returns. */
export interface RequestOptions {
	method: HttpMethod;
	/** Path and query on the gateway, e.g. `/api/products?limit=20`. */
	path: string;
	headers: Record<string, string>;
	/** A string is sent as is; anything else as JSON (with `Content-Type: application/json`). */
	body?: string | JsonValue;
	/**
	 * Headers of one connection each, on top of `headers`: connection i sends entry i (modulo the length), e.g.
	 * its own customer's `Authorization`, so that concurrent connections do not all write the same cart.
	 */
	connectionHeaders?: Array<Record<string, string>>;
}

/** What a setup knows of the row it prepares. */
export interface SetupContext {
	/** Concurrent connections (a request scenario) or virtual users (a flow) the row runs with. */
	concurrency: number;
}

interface ScenarioBase {
	/** Unique; `--scenario <text>` runs the scenarios whose name contains the text. */
	name: string;
	/** Services (from ALL_SERVICES) the scenario needs; reported as skipped while one is missing. */
	requires: string[];
}

export interface RequestScenario extends ScenarioBase {
	kind?: "request";
	method: HttpMethod;
	path: string;
	headers?: Record<string, string>;
	body?: string | JsonValue;
	/**
	 * Runs once against the started cluster, before the warm-up (register a user, create a product,
	 * ...). What it returns overrides the declared request; its headers are merged over the declared
	 * ones (e.g. `{ headers: { Authorization: "Bearer ..." } }`).
	 */
	setup?: (baseUrl: string, ctx: SetupContext) => Promise<Partial<RequestOptions>>;
}

/** One step of a flow, as the reports name it. */
export interface FlowStep {
	name: string;
	method: HttpMethod;
	/** The route, for the reports (e.g. `/api/cart/items/:productId`). */
	path: string;
	/** The statuses that let the iteration go on; any other answer (or none) ends the iteration there. */
	expect: number[];
}

/** A request of a flow step, as sent. A body is sent as JSON. */
export interface FlowRequest {
	method: HttpMethod;
	path: string;
	headers?: Record<string, string>;
	body?: JsonValue;
}

/** An answer to a flow step: the status and the body (parsed when it is JSON, else the text). */
export interface FlowResponse {
	status: number;
	body: unknown;
}

/** What a flow's `verify` found after the run. */
export interface FlowCheck {
	ok: boolean;
	/** One line, e.g. `0 oversell (...)`. */
	summary: string;
	/** The discrepancies, or what was checked. */
	details: string[];
}

/** A prepared flow: builds every request, sees every answer, checks what the run left behind. */
export interface Flow {
	/**
	 * Step `step` of the current iteration of virtual user `vu` (0..C-1). A virtual user runs one iteration at a
	 * time; `state` is new for each iteration and shared by its steps.
	 */
	request(vu: number, step: number, state: Record<string, unknown>): FlowRequest;
	/** Every answer, warm-up included; `null` when none came (connection error, client timeout). */
	onResponse?(
		vu: number,
		step: number,
		state: Record<string, unknown>,
		req: FlowRequest,
		res: FlowResponse | null
	): void;
	/** Runs once every iteration has finished (warm-up and measured). `ok: false` makes the bench exit 1. */
	verify?(): Promise<FlowCheck>;
}

export interface FlowScenario extends ScenarioBase {
	kind: "flow";
	steps: FlowStep[];
	/** What an iteration is, in the plural, for the reports (default "iterations"): e.g. "purchases". */
	unit?: string;
	/** Runs once against the started cluster, before the warm-up; `ctx.concurrency` virtual users will run. */
	setup(baseUrl: string, ctx: SetupContext): Promise<Flow>;
}

export type Scenario = RequestScenario | FlowScenario;

export const isFlow = (s: Scenario): s is FlowScenario => s.kind === "flow";

/** The admin the bench's FlashMart cluster is started with (bench/launch.ts). */
export const BENCH_ADMIN = {
	email: "bench-admin@flashmart.local",
	password: "bench-admin-password-1"
};

interface Answer {
	status: number;
	/** Parsed JSON, or the text when it is not JSON. */
	body: any;
}

/** One request of a setup or a check (global fetch: undici keeps the connections alive). */
async function send(
	baseUrl: string,
	method: HttpMethod,
	path: string,
	opts: { body?: unknown; token?: string; headers?: Record<string, string> } = {}
): Promise<Answer> {
	const res = await fetch(`${baseUrl}${path}`, {
		method,
		headers: {
			...(opts.body !== undefined ? { "Content-Type": "application/json" } : {}),
			...(opts.token ? { Authorization: `Bearer ${opts.token}` } : {}),
			...opts.headers
		},
		body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
		signal: AbortSignal.timeout(20_000)
	});
	const text = await res.text();
	let body: unknown = text;
	try {
		body = JSON.parse(text);
	} catch {
		// Not JSON: the text.
	}
	return { status: res.status, body };
}

/** `send`, answering the body when the status is `want`, else throwing with what came instead. */
async function call(
	baseUrl: string,
	method: HttpMethod,
	path: string,
	want: number,
	opts: { body?: unknown; token?: string; headers?: Record<string, string> } = {}
): Promise<any> {
	const res = await send(baseUrl, method, path, opts);
	if (res.status !== want) {
		const text = typeof res.body === "string" ? res.body : JSON.stringify(res.body);
		throw new Error(
			`${method} ${path} answered ${res.status} (not ${want}): ${text.slice(0, 300)}`
		);
	}
	return res.body;
}

async function login(
	baseUrl: string,
	account: { email: string; password: string }
): Promise<string> {
	return (await call(baseUrl, "POST", "/api/auth/login", 200, { body: account })).accessToken;
}

/** A new customer's access token. Registration costs ~200 ms of scrypt by design: callers make them 4 at a time. */
async function newCustomer(baseUrl: string): Promise<string> {
	const body = {
		email: `bench-${randomUUID()}@example.com`,
		password: "bench-password-1",
		name: "Bench"
	};
	return (await call(baseUrl, "POST", "/api/auth/register", 201, { body })).accessToken;
}

/** `n` new customers' access tokens, registered at most 4 at a time. */
async function customers(baseUrl: string, n: number): Promise<string[]> {
	const tokens: string[] = [];
	while (tokens.length < n) {
		tokens.push(
			...(await Promise.all(
				Array.from({ length: Math.min(4, n - tokens.length) }, () => newCustomer(baseUrl))
			))
		);
	}
	return tokens;
}

/** Products with plenty of stock, created as admin, so a checkout run never sells out. */
async function plentifulProducts(
	baseUrl: string,
	adminToken: string,
	n: number,
	stock: number
): Promise<string[]> {
	const ids: string[] = [];
	for (let i = 0; i < n; i++) {
		const body = {
			sku: `BENCH-${randomUUID().slice(0, 8).toUpperCase()}`,
			name: `Bench Item ${i} ${randomUUID().slice(0, 8)}`,
			price: 1999,
			category: "bench",
			stock
		};
		ids.push((await call(baseUrl, "POST", "/api/products", 201, { body, token: adminToken })).id);
	}
	return ids;
}

/** A product of the seeded demo catalog, for the reads below. */
async function someProduct(baseUrl: string): Promise<{ id: string; category: string }> {
	const page = await call(baseUrl, "GET", "/api/products?pageSize=1&sort=name", 200);
	if (page.rows.length === 0) throw new Error("no product to read: is the catalog seeded?");
	return page.rows[0];
}

/** A product that can be bought now. */
async function productInStock(baseUrl: string): Promise<string> {
	const page = await call(baseUrl, "GET", "/api/products?inStock=true&pageSize=1", 200);
	if (page.rows.length === 0) throw new Error("no product in stock: is the catalog seeded?");
	return page.rows[0].id;
}

/**
 * Customers of the cart-write scenario: one per connection, at most this many (more connections share them,
 * connection i writing customer i modulo this): registration costs ~200 ms of scrypt each.
 */
const MAX_CART_CUSTOMERS = 100;

const SHIPPING = {
	name: "Bench",
	line1: "1 Bench St",
	city: "Testville",
	postalCode: "12345",
	country: "US"
};
/** Products the checkout flow spreads its purchases over, and the stock each is created with. */
const CHECKOUT_PRODUCTS = 4;
const CHECKOUT_STOCK = 1_000_000;
/** How long the check after a checkout flow keeps replaying the checkouts that got no clear answer. */
const REPLAY_BUDGET_MS = 30_000;

interface PlacedOrder {
	items: Array<{ productId: string; quantity: number }>;
}

const isOrder = (body: unknown): body is PlacedOrder =>
	!!body && typeof body === "object" && Array.isArray((body as PlacedOrder).items);

/**
 * The checkout flow, and the purchase flow when the scenario's steps end with a pay. Each virtual user is its own
 * customer (registered here, never two of its requests at once); an iteration adds one unit of one of a few
 * products created for the run (round-robin) to the cart, then checks out under a fresh Idempotency-Key, which
 * reserves the stock and empties the cart, and in the purchase flow pays the order (tok_visa, another fresh key),
 * which sells the units. Every 201 checkout and every 200 pay is counted per product (warm-up included), so
 * afterwards each product's `onHand` must have dropped by exactly the units paid and its `reserved` must equal the
 * units checked out but not paid. A request that got no clear answer (no response, a timeout, a 5xx) may or may not
 * have happened: `verify` first replays it with the same key, as a client would, to learn which.
 */
async function runOrderFlow(baseUrl: string, { concurrency }: SetupContext): Promise<Flow> {
	const products = await plentifulProducts(
		baseUrl,
		await login(baseUrl, BENCH_ADMIN),
		CHECKOUT_PRODUCTS,
		CHECKOUT_STOCK
	);
	const tokens = await customers(baseUrl, concurrency);
	const placed = new Map(products.map(id => [id, { orders: 0, units: 0, paid: 0 }]));
	const record = (order: PlacedOrder, paid = false) => {
		for (const item of order.items) {
			const count = placed.get(item.productId);
			if (!count) continue;
			if (paid) count.paid += item.quantity;
			else {
				count.orders++;
				count.units += item.quantity;
			}
		}
	};
	const unclear: Array<{ token: string; key: string }> = [];
	const unclearPays: Array<{ token: string; key: string; orderId: string; order: PlacedOrder }> =
		[];
	const body = { shippingAddress: SHIPPING };
	const payBody = { paymentToken: "tok_visa" };
	let next = 0;
	return {
		request(vu, step, state) {
			const auth = { authorization: `Bearer ${tokens[vu]}` };
			if (step === 0) {
				state.product = products[next++ % products.length];
				return {
					method: "POST",
					path: "/api/cart/items",
					headers: auth,
					body: { productId: state.product as string, quantity: 1 }
				};
			}
			state.key = randomUUID();
			if (step === 2) {
				return {
					method: "POST",
					path: `/api/orders/${(state.order as { id: string }).id}/pay`,
					headers: { ...auth, "idempotency-key": state.key as string },
					body: payBody
				};
			}
			return {
				method: "POST",
				path: "/api/orders",
				headers: { ...auth, "idempotency-key": state.key as string },
				body
			};
		},
		onResponse(vu, step, state, _req, res) {
			const unclearAnswer = !res || res.status >= 500;
			if (step === 1) {
				if (res?.status === 201 && isOrder(res.body)) {
					record(res.body);
					state.order = res.body;
				} else if (unclearAnswer || res.status === 201) {
					unclear.push({ token: tokens[vu], key: state.key as string });
				}
			} else if (step === 2) {
				const order = state.order as PlacedOrder & { id: string };
				if (res?.status === 200) record(order, true);
				else if (unclearAnswer) {
					unclearPays.push({
						token: tokens[vu],
						key: state.key as string,
						orderId: order.id,
						order
					});
				}
			}
		},
		async verify() {
			// 1. The checkouts of unknown outcome: the same key and body again, until an answer says which.
			let replayedPlaced = 0;
			let replayedNone = 0;
			const unresolved: string[] = [];
			const until = Date.now() + REPLAY_BUDGET_MS;
			for (const { token, key } of unclear) {
				for (;;) {
					const res = await send(baseUrl, "POST", "/api/orders", {
						body,
						token,
						headers: { "idempotency-key": key }
					}).catch(() => null);
					if (res?.status === 201 && isOrder(res.body)) {
						record(res.body);
						replayedPlaced++;
						// A purchase whose checkout answer was lost is not paid: its units stay reserved.
						break;
					}
					const retry = !res || res.status >= 500 || res.body?.type === "IDEMPOTENCY_KEY_IN_USE";
					if (!retry) {
						replayedNone++;
						break;
					}
					if (Date.now() > until) {
						unresolved.push(`checkout ${key}: last answer ${res ? res.status : "none"}`);
						break;
					}
					await new Promise(resolve => setTimeout(resolve, 500));
				}
			}
			// 1b. The pays of unknown outcome, the same way.
			let replayedPaid = 0;
			for (const { token, key, orderId, order } of unclearPays) {
				for (;;) {
					const res = await send(baseUrl, "POST", `/api/orders/${orderId}/pay`, {
						body: payBody,
						token,
						headers: { "idempotency-key": key }
					}).catch(() => null);
					if (res?.status === 200) {
						record(order, true);
						replayedPaid++;
						break;
					}
					const retry = !res || res.status >= 500 || res.body?.type === "IDEMPOTENCY_KEY_IN_USE";
					if (!retry) break;
					if (Date.now() > until) {
						unresolved.push(`pay ${key}: last answer ${res ? res.status : "none"}`);
						break;
					}
					await new Promise(resolve => setTimeout(resolve, 500));
				}
			}
			// 2. Each product's stock as the inventory owner has it.
			const admin = await login(baseUrl, BENCH_ADMIN);
			const details: string[] = [];
			let ok = unresolved.length === 0;
			let orders = 0;
			let units = 0;
			for (const id of products) {
				const stock = await call(baseUrl, "GET", `/api/inventory/${id}`, 200, { token: admin });
				const want = placed.get(id)!;
				orders += want.orders;
				units += want.units;
				const wrong: string[] = [];
				if (!(stock.available >= 0)) wrong.push(`available ${stock.available} < 0`);
				if (stock.available !== stock.onHand - stock.reserved)
					wrong.push("available != onHand - reserved");
				if (stock.reserved !== want.units - want.paid)
					wrong.push(
						`reserved ${stock.reserved} != ${want.units - want.paid} units checked out, not paid`
					);
				if (stock.onHand !== CHECKOUT_STOCK - want.paid)
					wrong.push(`onHand ${stock.onHand} != ${CHECKOUT_STOCK} - ${want.paid} units paid`);
				if (wrong.length > 0) ok = false;
				details.push(
					`${id}: onHand ${stock.onHand}, reserved ${stock.reserved}, available ${stock.available}; ` +
						`${want.orders} checkouts (201) of ${want.units} units, ${want.paid} units paid` +
						(wrong.length > 0 ? ` -- DISCREPANCY: ${wrong.join("; ")}` : "")
				);
			}
			if (unclear.length > 0) {
				details.push(
					`${unclear.length} checkout(s) got no clear answer during the run; replayed with their key: ` +
						`${replayedPlaced} had placed (or now placed) an order, ${replayedNone} had not` +
						(unresolved.length > 0 ? `, ${unresolved.length} still unknown` : "")
				);
			}
			if (unclearPays.length > 0) {
				details.push(
					`${unclearPays.length} pay(s) got no clear answer during the run; replayed with their key: ` +
						`${replayedPaid} had paid (or now paid)`
				);
			}
			for (const u of unresolved) details.push(`unresolved ${u}`);
			const summary = ok
				? `0 oversell: ${products.length} products, reserved = units checked out and not paid, onHand ` +
					`dropped by the units paid, over ${orders} checkouts answered 201 (warm-up included), available >= 0`
				: `DISCREPANCY: stock does not match the ${orders} checkouts answered 201 (${units} units)` +
					(unresolved.length > 0 ? `; ${unresolved.length} checkout(s) of unknown outcome` : "");
			return { ok, summary, details };
		}
	};
}

export const SCENARIOS: Scenario[] = [
	{
		// Answered by the gateway itself: HTTP handling and moleculer-web routing, no NATS hop.
		name: "gateway /health",
		method: "GET",
		path: "/health",
		requires: ["api"]
	},
	{
		// The gateway asks each backend service for its health: a NATS round trip per service (none
		// while ALL_SERVICES holds only `api`: then it is /health's path plus the /api route).
		name: "backend view /api/health",
		method: "GET",
		path: "/api/health",
		requires: ["api"]
	},
	{
		// A cached read: answered by the gateway's read cache (a miss: one NATS round trip to products' cacher).
		name: "product by id /api/products/:id",
		method: "GET",
		path: "/api/products/:id",
		requires: ["api", "products", "inventory"],
		async setup(baseUrl) {
			return { path: `/api/products/${(await someProduct(baseUrl)).id}` };
		}
	},
	{
		// A page of one category, cached like the product (a miss: products, with availability in one inventory call).
		name: "product list /api/products?category=&page=",
		method: "GET",
		path: "/api/products",
		requires: ["api", "products", "inventory"],
		async setup(baseUrl) {
			return { path: `/api/products?category=${(await someProduct(baseUrl)).category}&page=1` };
		}
	},
	{
		name: "categories /api/categories",
		method: "GET",
		path: "/api/categories",
		requires: ["api", "products"]
	},
	{
		// A cart write: read the cart, price it from the catalog (one call), conditional write. The product is put
		// in the cart once, then PATCH sets its quantity: repeated POSTs would hit the 99-units-per-line limit.
		// Each connection is its own customer (connectionHeaders): one cart per user, and 50 connections on one
		// cart would measure the optimistic-write retries of a single document rather than a cart write.
		name: "add to cart /api/cart/items",
		method: "PATCH",
		path: "/api/cart/items/:productId",
		body: { quantity: 1 },
		requires: ["api", "users", "products", "inventory", "carts"],
		async setup(baseUrl, { concurrency }) {
			const productId = await productInStock(baseUrl);
			const tokens = await customers(baseUrl, Math.min(concurrency, MAX_CART_CUSTOMERS));
			await Promise.all(
				tokens.map(token =>
					call(baseUrl, "POST", "/api/cart/items", 200, {
						body: { productId, quantity: 1 },
						token
					})
				)
			);
			return {
				path: `/api/cart/items/${productId}`,
				connectionHeaders: tokens.map(t => ({ authorization: `Bearer ${t}` }))
			};
		}
	},
	{
		// One purchase per iteration: add a unit to the cart, then check out (server-side pricing, an all-or-nothing
		// stock reservation, the order written, the cart emptied). Checked afterwards: no unit oversold or lost.
		kind: "flow",
		name: "checkout flow (cart item + POST /api/orders)",
		requires: ["api", "users", "products", "inventory", "carts", "orders"],
		unit: "purchases",
		steps: [
			{ name: "add to cart", method: "POST", path: "/api/cart/items", expect: [200] },
			{ name: "checkout", method: "POST", path: "/api/orders", expect: [201] }
		],
		setup: runOrderFlow
	},
	{
		// The whole purchase per iteration: add to cart, check out, pay (tok_visa): the charge at the simulated
		// provider, the order paid, its stock sold, the events written. Checked afterwards: no unit oversold or lost.
		kind: "flow",
		name: "purchase flow (cart item + checkout + pay)",
		requires: ["api", "users", "products", "inventory", "carts", "orders", "payments"],
		unit: "purchases",
		steps: [
			{ name: "add to cart", method: "POST", path: "/api/cart/items", expect: [200] },
			{ name: "checkout", method: "POST", path: "/api/orders", expect: [201] },
			{ name: "pay", method: "POST", path: "/api/orders/:id/pay", expect: [200] }
		],
		setup: runOrderFlow
	},
	{
		// The access token is verified at the gateway with the public key (no call for it), then one
		// NATS round trip to users.me, which reads the user from its store.
		name: "authenticated /api/users/me",
		method: "GET",
		path: "/api/users/me",
		requires: ["api", "users"],
		async setup(baseUrl) {
			return { headers: { Authorization: `Bearer ${await newCustomer(baseUrl)}` } };
		}
	}
];

/** The declared request with the setup's result applied. */
export function resolveRequest(
	scenario: RequestScenario,
	fromSetup: Partial<RequestOptions> = {}
): RequestOptions {
	return {
		method: fromSetup.method ?? scenario.method,
		path: fromSetup.path ?? scenario.path,
		headers: { ...scenario.headers, ...fromSetup.headers },
		body: fromSetup.body ?? scenario.body,
		connectionHeaders: fromSetup.connectionHeaders
	};
}
