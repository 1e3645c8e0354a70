/**
 * The benchmark scenarios, driven against a running FlashMart gateway. Two kinds:
 *   - a request scenario: one HTTP request that autocannon repeats on every connection;
 *   - a flow: a sequence of HTTP steps per iteration (add to cart, then check out), each built from what came
 *     before, run by bench/flow.ts with C virtual users in a closed loop; latencies are per step.
 */
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { latencySummary, round } from "./measure";
import { progress } from "./session";
import type {
	FlashSaleResult,
	Flow,
	FlowRequest,
	FlowResponse,
	FlowStep,
	HttpMethod,
	JsonValue,
	RequestOptions,
	SaleWindow,
	SetupContext
} from "./types";

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

export interface FlowScenario extends ScenarioBase {
	kind: "flow";
	steps: FlowStep[];
	/**
	 * Runs until every virtual user has stopped (`Flow.begin` said false), with no warm-up, for at most this many
	 * seconds, instead of `--warmup` + `--duration`.
	 */
	untilDoneSeconds?: number;
	/** Setup and check time limits when not rows.ts's defaults (a setup that registers thousands of buyers). */
	setupTimeoutMs?: number;
	verifyTimeoutMs?: number;
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
	headers: Record<string, string>;
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
	return { status: res.status, body, headers: Object.fromEntries(res.headers) };
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
	// Turned away under load (503/429 with Retry-After): again after that long, as a client would. A 504 may or
	// may not have made the account: another one is made (a second email), the first is left unused.
	for (let attempt = 1; ; attempt++) {
		const res = await send(baseUrl, "POST", "/api/auth/register", { body });
		if (res.status === 504 && attempt < 3) {
			body.email = `bench-${randomUUID()}@example.com`;
			continue;
		}
		const wait = retryAfterMs(res);
		if (res.status === 201 || wait === null || ![429, 503].includes(res.status) || attempt >= 10) {
			if (res.status === 201) return res.body.accessToken;
			const text = typeof res.body === "string" ? res.body : JSON.stringify(res.body);
			throw new Error(`POST /api/auth/register answered ${res.status}: ${text.slice(0, 300)}`);
		}
		await new Promise(resolve => setTimeout(resolve, wait));
	}
}

/** `n` new customers' access tokens, registered at most `inFlight` at a time. */
async function customers(baseUrl: string, n: number, inFlight = 4): Promise<string[]> {
	const tokens: string[] = new Array<string>(n);
	let next = 0;
	const worker = async () => {
		while (next < n) {
			const i = next++;
			tokens[i] = await newCustomer(baseUrl);
		}
	};
	await Promise.all(Array.from({ length: Math.min(inFlight, n) }, worker));
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

/** Sizes of each variant product a checkout run creates: one variant per size, each with its own stock. */
const BENCH_SIZES = ["S", "M", "L"];

/**
 * Products with options (`variants`): one per size, each variant with the stock given, the product and its
 * variants created in one request. Answers the variant ids; the stock checks read them one by one.
 */
async function plentifulVariants(
	baseUrl: string,
	adminToken: string,
	n: number,
	stock: number
): Promise<string[]> {
	const ids: string[] = [];
	for (let i = 0; i < n; i++) {
		const sku = `BENCH-${randomUUID().slice(0, 8).toUpperCase()}`;
		const body = {
			sku,
			name: `Bench Tee ${i} ${randomUUID().slice(0, 8)}`,
			price: 1999,
			category: "bench",
			options: [{ name: "size", values: BENCH_SIZES }],
			variants: BENCH_SIZES.map(size => ({ sku: `${sku}-${size}`, options: { size }, stock }))
		};
		const product = await call(baseUrl, "POST", "/api/products", 201, { body, token: adminToken });
		ids.push(...(product.variants as Array<{ id: string }>).map(v => v.id));
	}
	return ids;
}

/** A product of the seeded demo catalog, for the reads below. */
async function someProduct(baseUrl: string): Promise<{ id: string; category: string }> {
	const page = await call(baseUrl, "GET", "/api/products?pageSize=1&sort=name", 200);
	if (page.rows.length === 0) throw new Error("no product to read: is the catalog seeded?");
	return page.rows[0];
}

/** A product of the demo catalog with options (`npm run seed` makes some), the most variants first. */
async function someVariantProduct(baseUrl: string): Promise<{ id: string }> {
	for (let page = 1; ; page++) {
		const res = await call(
			baseUrl,
			"GET",
			`/api/products?pageSize=100&sort=name&page=${page}`,
			200
		);
		const found = (res.rows as Array<{ id: string; variants: unknown[] }>)
			.filter(p => p.variants.length > 1)
			.sort((a, b) => b.variants.length - a.variants.length)[0];
		if (found) return found;
		if (res.rows.length < 100) throw new Error("no product with variants: is the catalog seeded?");
	}
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

/** The shipping method and the code the priced purchase flow uses: US, as SHIPPING is; 10 % off every purchase. */
const BENCH_SHIPPING_METHOD = {
	name: "Bench ground",
	price: 499,
	currency: "USD",
	countries: ["US"]
};
const BENCH_CODE_PERCENT = 10;
/** Far more uses than any run makes, and no per-customer limit: each virtual user buys thousands of times. */
const BENCH_CODE_USES = 100_000_000;

interface PlacedOrder {
	items: Array<{ productId: string; variantId?: string; quantity: number }>;
}

/** What a priced purchase's order answers besides its lines (API.md "Totals"). */
interface PricedOrder extends PlacedOrder {
	id: string;
	subtotal: number;
	discountTotal: number;
	shippingTotal: number;
	taxTotal: number;
	total: number;
	discount?: { code: string; amount: number };
	shippingMethod?: { id: string; price: number };
}

/** Why a placed order's totals are not those of its code and method, or null when they are. */
function pricingWrong(order: PricedOrder, code: string, methodId: string): string | null {
	const o = order;
	if (o.discount?.code !== code)
		return `discount ${JSON.stringify(o.discount ?? null)}, not ${code}`;
	if (o.shippingMethod?.id !== methodId)
		return `shipping method ${o.shippingMethod?.id} not ${methodId}`;
	const want = Math.floor((o.subtotal * BENCH_CODE_PERCENT) / 100 + 0.5); // one line: half up
	if (o.discountTotal !== want) return `discountTotal ${o.discountTotal} != ${want}`;
	if (o.shippingTotal !== BENCH_SHIPPING_METHOD.price)
		return `shippingTotal ${o.shippingTotal} != ${BENCH_SHIPPING_METHOD.price}`;
	// USD prices exclude tax (TAX_INCLUSIVE_CURRENCIES): the tax is on top.
	if (o.total !== o.subtotal - o.discountTotal + o.shippingTotal + o.taxTotal)
		return `total ${o.total} != subtotal - discount + shipping + tax`;
	return null;
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
 *
 * `priced`: every purchase also applies a discount code to the cart before the checkout, and checks out with a
 * shipping method for the address's country, both created here as admin. Then every order must show both in its
 * totals, and afterwards the code's uses must equal the orders placed (each checkout redeems it once).
 */
async function runOrderFlow(
	baseUrl: string,
	{ concurrency }: SetupContext,
	{ priced = false, variants = false }: { priced?: boolean; variants?: boolean } = {}
): Promise<Flow> {
	const adminToken = await login(baseUrl, BENCH_ADMIN);
	// With `variants`, the ids below are variant ids: every line, count and stock check is per variant.
	const products = await (variants ? plentifulVariants : plentifulProducts)(
		baseUrl,
		adminToken,
		CHECKOUT_PRODUCTS,
		CHECKOUT_STOCK
	);
	const pricing = priced
		? {
				code: (await call(baseUrl, "POST", "/api/discounts", 201, {
					token: adminToken,
					body: {
						code: `BENCH${randomUUID().replace(/-/g, "").slice(0, 12).toUpperCase()}`,
						type: "percentage",
						value: BENCH_CODE_PERCENT,
						usageLimit: BENCH_CODE_USES
					}
				})) as { id: string; code: string },
				method: (await call(baseUrl, "POST", "/api/shipping-methods", 201, {
					token: adminToken,
					body: BENCH_SHIPPING_METHOD
				})) as { id: string }
			}
		: null;
	// The steps of an iteration in order; the checkout flow stops after its checkout.
	const kinds = priced ? ["add", "code", "checkout", "pay"] : ["add", "checkout", "pay"];
	const tokens = await customers(baseUrl, concurrency);
	const placed = new Map(products.map(id => [id, { orders: 0, units: 0, paid: 0 }]));
	const record = (order: PlacedOrder, paid = false) => {
		for (const item of order.items) {
			const count = placed.get((variants && item.variantId) || item.productId);
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
	const body: { [key: string]: JsonValue } = pricing
		? { shippingAddress: SHIPPING, shippingMethodId: pricing.method.id }
		: { shippingAddress: SHIPPING };
	const payBody = { paymentToken: "tok_visa" };
	/** Placed orders whose totals were not those of the code and the method (priced), the first few. */
	const mispriced: string[] = [];
	let mispricedCount = 0;
	const checkPricing = (order: PlacedOrder) => {
		if (!pricing) return;
		const wrong = pricingWrong(order as PricedOrder, pricing.code.code, pricing.method.id);
		if (wrong === null) return;
		mispricedCount++;
		if (mispriced.length < 5) mispriced.push(`order ${(order as PricedOrder).id}: ${wrong}`);
	};
	let next = 0;
	return {
		request(vu, step, state): FlowRequest {
			const auth = { authorization: `Bearer ${tokens[vu]}` };
			const kind = kinds[step];
			if (kind === "add") {
				state.product = products[next++ % products.length];
				return {
					method: "POST",
					path: "/api/cart/items",
					headers: auth,
					body: { [variants ? "variantId" : "productId"]: state.product as string, quantity: 1 }
				};
			}
			if (kind === "code") {
				return {
					method: "POST",
					path: "/api/cart/discount",
					headers: auth,
					body: { code: pricing!.code.code }
				};
			}
			state.key = randomUUID();
			if (kind === "pay") {
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
			const kind = kinds[step];
			if (kind === "checkout") {
				if (res?.status === 201 && isOrder(res.body)) {
					record(res.body);
					checkPricing(res.body);
					state.order = res.body;
				} else if (unclearAnswer || res.status === 201) {
					unclear.push({ token: tokens[vu], key: state.key as string });
				}
			} else if (kind === "pay") {
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
						checkPricing(res.body);
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
				const path = variants ? `/api/inventory/variants/${id}` : `/api/inventory/${id}`;
				const stock = await call(baseUrl, "GET", path, 200, { token: admin });
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
			let pricingNote = "";
			if (pricing) {
				// Each order placed redeemed the code once; a checkout that failed after its take gave it back (the
				// sweeper finishes a give-back its request did not), so allow the uses a few seconds to settle.
				let used = -1;
				for (let wait = 0; wait < 20; wait++) {
					used = (
						await call(baseUrl, "GET", `/api/discounts/${pricing.code.id}`, 200, { token: admin })
					).used;
					if (used === orders) break;
					await new Promise(resolve => setTimeout(resolve, 500));
				}
				if (used !== orders) ok = false;
				if (mispricedCount > 0) ok = false;
				details.push(
					`code ${pricing.code.code}: used ${used} times for ${orders} checkouts answered 201` +
						(used !== orders ? " -- DISCREPANCY" : "") +
						`; ${orders - mispricedCount} orders with the code's ${BENCH_CODE_PERCENT} % off and the ` +
						`method's ${BENCH_SHIPPING_METHOD.price} shipping in their totals` +
						(mispricedCount > 0 ? `, ${mispricedCount} without -- DISCREPANCY` : ""),
					...mispriced.map(m => `mispriced ${m}`)
				);
				pricingNote =
					used === orders && mispricedCount === 0
						? `; the code redeemed once per order (${used}), every order priced with it and the shipping method`
						: `; code used ${used} times for ${orders} orders, ${mispricedCount} mispriced`;
			}
			const summary = ok
				? `0 oversell: ${products.length} ${variants ? "variants" : "products"}, reserved = units checked out and not paid, onHand ` +
					`dropped by the units paid, over ${orders} checkouts answered 201 (warm-up included), available >= 0`
				: `DISCREPANCY: stock does not match the ${orders} checkouts answered 201 (${units} units)` +
					(unresolved.length > 0 ? `; ${unresolved.length} checkout(s) of unknown outcome` : "");
			return { ok, summary: summary + pricingNote, details };
		}
	};
}

/** The flash sale's size: the one product's units (all of them in the sale), its buyers, each buyer's limit. */
const FLASH_SALE = { units: 10_000, buyers: 3_000, perCustomerLimit: 4 };
/** `--quick`: a tenth of it. */
const QUICK_FLASH_SALE = { units: 1_000, buyers: 300, perCustomerLimit: 4 };
const SALE_PRICE = 999;
/** Checkout rates are given per this many units sold. */
const SALE_WINDOW_UNITS = 250;
/** Buyers registering at once: the users node hashes a few passwords at a time, the others wait on NATS meanwhile. */
const REGISTRATION_IN_FLIGHT = 8;
/** Registrations between two progress lines. */
const REGISTRATION_CHUNK = 500;
/** Longer than any run: no unpaid order's units go back to the sale while it sells out (they would sell twice). */
const SALE_HOLD_SECONDS = 3600;
/** The sale starts this long after the bench moves its start to now. */
const SALE_START_DELAY_MS = 2_000;
/**
 * Seconds of warm-up before the clock starts (`--quick`: 2): the same attempts (add a unit, check out) on another
 * product, so the sale meets nodes that have compiled their hot paths, as a shop's live cluster has, instead of
 * measuring the first seconds of the JIT (cold, the first 2 000 units sold at about half the rate of the rest).
 */
const FLASH_SALE_WARMUP_SECONDS = 10;
/** A buyer turned away this often for another reason than the sale's (a 4xx the loop does not expect) gives up. */
const MAX_OTHER_REFUSALS = 5;
/** Answers that end a buyer's loop: the sale has nothing more for them. */
const BUYER_DONE = new Set(["OUT_OF_STOCK", "PURCHASE_LIMIT_EXCEEDED"]);

interface Buyer {
	token: string;
	/** A unit is in the cart, not checked out yet (a checkout was turned away, or its answer was lost). */
	inCart: boolean;
	/** The key of a checkout whose answer said nothing (none came, a 5xx): sent again, as a client would. */
	pendingKey?: string;
	units: number;
	done: boolean;
	/** performance.now() ms before which this buyer does not try again (Retry-After). */
	readyAt: number;
	refusals: number;
}

const errorType = (body: unknown): string =>
	body && typeof body === "object" && typeof (body as { type?: unknown }).type === "string"
		? (body as { type: string }).type
		: "";

/** Retry-After in ms (seconds or an HTTP date), or null when the answer has none. */
function retryAfterMs(res: Pick<FlowResponse, "headers">): number | null {
	const raw = res.headers?.["retry-after"];
	const value = Array.isArray(raw) ? raw[0] : raw;
	if (value === undefined || value === "") return null;
	const seconds = Number(value);
	if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
	const at = Date.parse(value);
	return Number.isFinite(at) ? Math.max(0, at - Date.now()) : null;
}

/** Units of `productId` in an order answered 201. */
const unitsOf = (order: PlacedOrder, productId: string) =>
	order.items.filter(i => i.productId === productId).reduce((n, i) => n + i.quantity, 0);

/** Checkouts per second for each SALE_WINDOW_UNITS units sold, from the completions of the 201s. */
function saleWindows(startedAt: number, sales: Array<{ at: number; units: number }>): SaleWindow[] {
	const windows: SaleWindow[] = [];
	let units = 0;
	let fromUnits = 0;
	let from = startedAt;
	let checkouts = 0;
	for (const sale of [...sales].sort((a, b) => a.at - b.at)) {
		units += sale.units;
		checkouts++;
		if (units - fromUnits < SALE_WINDOW_UNITS) continue;
		const seconds = (sale.at - from) / 1000;
		windows.push({
			fromUnits,
			toUnits: units,
			seconds: round(seconds),
			checkoutsPerSec: round(seconds > 0 ? checkouts / seconds : 0)
		});
		fromUnits = units;
		from = sale.at;
		checkouts = 0;
	}
	return windows;
}

/**
 * The flash sale's warm-up: each buyer given (one per connection) adds a unit of a product of its own run and checks
 * out, again and again for `seconds`. Their carts are emptied afterwards (a line an unanswered checkout left there
 * must not join a sale checkout). The warm-up orders stay pending on that product, which the sale never touches.
 */
async function warmUpCheckouts(
	baseUrl: string,
	admin: string,
	tokens: string[],
	seconds: number
): Promise<{ seconds: number; checkouts: number }> {
	const [productId] = await plentifulProducts(baseUrl, admin, 1, 1_000_000);
	const until = performance.now() + seconds * 1000;
	let checkouts = 0;
	await Promise.all(
		tokens.map(async token => {
			while (performance.now() < until) {
				// A warm-up answer that fails (a timeout, a 5xx) is only a warm-up lost: the sale's run reports its own.
				const added = await send(baseUrl, "POST", "/api/cart/items", {
					token,
					body: { productId, quantity: 1 }
				}).catch(() => null);
				const placed =
					added?.status === 200
						? await send(baseUrl, "POST", "/api/orders", {
								token,
								headers: { "idempotency-key": randomUUID() },
								body: { shippingAddress: SHIPPING }
							}).catch(() => null)
						: null;
				if (placed?.status === 201) checkouts++;
				else await new Promise(resolve => setTimeout(resolve, 10));
			}
		})
	);
	await Promise.all(tokens.map(token => call(baseUrl, "DELETE", "/api/cart", 204, { token })));
	return { seconds, checkouts };
}

/**
 * The flash sale. The admin creates one product and a sale of all its units at a sale price with a per-customer
 * limit, scheduled an hour ahead; thousands of buyers register (before the clock starts: scrypt makes it slow);
 * then the sale is moved to start now. Each virtual user is a connection, not a buyer: it takes the next buyer who
 * may try (round-robin, Retry-After respected) and runs one attempt: add a unit to the cart, check out under a new
 * Idempotency-Key. A buyer stops at 409 PURCHASE_LIMIT_EXCEEDED or OUT_OF_STOCK; the run ends when every buyer has
 * stopped. A unit still in the cart after a turned-away checkout is checked out again without another add; a
 * checkout without a clear answer (none, a 5xx other than an admission 503) is sent again under the same key, which
 * tells whether it placed an order. Afterwards the owner's figures must say every unit was sold exactly once.
 */
async function runFlashSale(baseUrl: string, { quick, concurrency }: SetupContext): Promise<Flow> {
	const size = quick ? QUICK_FLASH_SALE : FLASH_SALE;
	const admin = await login(baseUrl, BENCH_ADMIN);
	const [productId] = await plentifulProducts(baseUrl, admin, 1, size.units);
	const hour = 3600_000;
	// Scheduled ahead first: a gateway without the sale API fails here, before minutes of registrations.
	const sale = await call(baseUrl, "POST", "/api/sales", 201, {
		token: admin,
		body: {
			name: `Bench flash sale ${randomUUID().slice(0, 8)}`,
			startsAt: new Date(Date.now() + hour).toISOString(),
			endsAt: new Date(Date.now() + 2 * hour).toISOString(),
			holdSeconds: SALE_HOLD_SECONDS,
			items: [
				{
					productId,
					salePrice: SALE_PRICE,
					units: size.units,
					perCustomerLimit: size.perCustomerLimit
				}
			]
		}
	});
	progress(`flash sale: registering ${size.buyers} buyers, ${REGISTRATION_IN_FLIGHT} at a time`);
	const registering = performance.now();
	const tokens: string[] = [];
	while (tokens.length < size.buyers) {
		const n = Math.min(REGISTRATION_CHUNK, size.buyers - tokens.length);
		tokens.push(...(await customers(baseUrl, n, REGISTRATION_IN_FLIGHT)));
		progress(`flash sale: ${tokens.length} of ${size.buyers} buyers registered`);
	}
	const registrationSeconds = round((performance.now() - registering) / 1000);
	progress(`flash sale: ${size.buyers} buyers registered in ${registrationSeconds} s`);
	const warmup = await warmUpCheckouts(
		baseUrl,
		admin,
		tokens.slice(0, concurrency),
		quick ? 2 : FLASH_SALE_WARMUP_SECONDS
	);
	progress(
		`flash sale: warm-up of ${warmup.seconds} s on another product: ${warmup.checkouts} checkouts`
	);
	const startsAt = Date.now() + SALE_START_DELAY_MS;
	await call(baseUrl, "PATCH", `/api/sales/${sale.id}`, 200, {
		token: admin,
		body: { startsAt: new Date(startsAt).toISOString() }
	});
	await new Promise(resolve => setTimeout(resolve, Math.max(0, startsAt - Date.now()) + 50));
	progress(`flash sale: sale ${sale.id} of ${size.units} units starts now`);

	const buyers: Buyer[] = tokens.map(token => ({
		token,
		inCart: false,
		units: 0,
		done: false,
		readyAt: 0,
		refusals: 0
	}));
	const queue: number[] = buyers.map((_, i) => i);
	let head = 0;
	const backingOff = new Set<number>();
	let active = buyers.length;
	let startedAt: number | undefined;
	let lastAnswerAt = 0;
	const sales: Array<{ at: number; units: number }> = [];
	const admittedLatencies: number[] = [];
	const rejects: Record<string, number> = {};
	let serverErrors = 0;
	let overloaded = 0;
	let noAnswer = 0;
	let admitted = 0;
	let result: FlashSaleResult | undefined;
	const body = { shippingAddress: SHIPPING };
	const buyerOf = (state: Record<string, unknown>) => buyers[state.buyer as number];
	const admit = (b: Buyer, order: PlacedOrder) => {
		const units = unitsOf(order, productId);
		admitted++;
		b.units += units;
		b.inCart = false;
		b.pendingKey = undefined;
		return units;
	};

	return {
		async begin(_vu, state, over) {
			startedAt ??= performance.now();
			for (;;) {
				if (active === 0 || over()) return false;
				const now = performance.now();
				for (const i of backingOff) {
					if (buyers[i].readyAt <= now) {
						backingOff.delete(i);
						queue.push(i);
					}
				}
				if (head < queue.length) {
					state.buyer = queue[head++];
					if (head > 4096) {
						queue.splice(0, head);
						head = 0;
					}
					return true;
				}
				// Every buyer left is in an attempt or waiting out a Retry-After.
				await new Promise(resolve => setTimeout(resolve, 5));
			}
		},
		end(_vu, state) {
			const i = state.buyer as number;
			const b = buyers[i];
			if (b.done) active--;
			else if (b.readyAt > performance.now()) backingOff.add(i);
			else queue.push(i);
		},
		skip(_vu, step, state) {
			const b = buyerOf(state);
			return step === 0 && (b.inCart || b.pendingKey !== undefined);
		},
		request(_vu, step, state) {
			const b = buyerOf(state);
			const auth = { authorization: `Bearer ${b.token}` };
			if (step === 0) {
				return {
					method: "POST",
					path: "/api/cart/items",
					headers: auth,
					body: { productId, quantity: 1 }
				};
			}
			state.key = b.pendingKey ?? randomUUID();
			return {
				method: "POST",
				path: "/api/orders",
				headers: { ...auth, "idempotency-key": state.key as string },
				body
			};
		},
		onResponse(_vu, step, state, _req, res, ms) {
			const b = buyerOf(state);
			const now = performance.now();
			lastAnswerAt = now;
			if (!res) {
				noAnswer++;
				// Maybe done, maybe not: the checkout (again under its key) will tell.
				if (step === 1) b.pendingKey = state.key as string;
				else b.inCart = true;
				b.readyAt = now + 200;
				return;
			}
			const type = errorType(res.body);
			const wait = res.status === 503 || res.status === 429 ? retryAfterMs(res) : null;
			if (res.status >= 500) serverErrors++;
			if (wait !== null) overloaded++;
			const wanted = step === 0 ? 200 : 201;
			if (res.status !== wanted) {
				const label = `${step === 0 ? "add to cart" : "checkout"} ${res.status} ${type || "-"}`;
				rejects[label] = (rejects[label] ?? 0) + 1;
			}
			if (res.status === wanted && (step === 0 || isOrder(res.body))) {
				if (step === 0) b.inCart = true;
				else {
					sales.push({ at: now, units: admit(b, res.body as PlacedOrder) });
					admittedLatencies.push(ms);
				}
				return;
			}
			// Turned away before anything happened: the same attempt after Retry-After (a replay keeps its key).
			if (wait !== null) {
				b.readyAt = now + wait;
				return;
			}
			if (res.status >= 500 || type === "IDEMPOTENCY_KEY_IN_USE") {
				if (step === 1) b.pendingKey = state.key as string;
				else b.inCart = true;
				b.readyAt = now + 200;
				return;
			}
			if (BUYER_DONE.has(type)) {
				b.done = true;
				b.pendingKey = undefined;
				return;
			}
			if (type === "SALE_NOT_STARTED") {
				b.readyAt = now + 100;
				return;
			}
			// Another refusal (an empty cart after a lost add that did not happen, ...): add again, a few times.
			b.inCart = false;
			b.pendingKey = undefined;
			if (++b.refusals >= MAX_OTHER_REFUSALS) b.done = true;
		},
		async verify() {
			const details: string[] = [];
			// Checkouts still of unknown outcome (the run stopped at its time limit): their key again.
			const unresolved: string[] = [];
			let replayed = 0;
			const until = Date.now() + REPLAY_BUDGET_MS;
			for (const b of buyers) {
				while (b.pendingKey) {
					const res = await send(baseUrl, "POST", "/api/orders", {
						body,
						token: b.token,
						headers: { "idempotency-key": b.pendingKey }
					}).catch(() => null);
					if (res?.status === 201 && isOrder(res.body)) {
						admit(b, res.body);
						replayed++;
					} else if (
						!res ||
						res.status >= 500 ||
						errorType(res.body) === "IDEMPOTENCY_KEY_IN_USE"
					) {
						if (Date.now() > until) {
							unresolved.push(`checkout ${b.pendingKey}: last answer ${res ? res.status : "none"}`);
							break;
						}
						await new Promise(resolve => setTimeout(resolve, 500));
					} else b.pendingKey = undefined;
				}
			}
			const stock = (await call(baseUrl, "GET", `/api/inventory/${productId}`, 200, {
				token: admin
			})) as Record<string, unknown> & { onHand: number; reserved: number; available: number };
			// The public read is the gateway's cache, kept fresh by throttled broadcasts: a moment to catch up.
			let unitsLeft: number | null = null;
			for (let i = 0; i < 20 && unitsLeft !== 0; i++) {
				if (i > 0) await new Promise(resolve => setTimeout(resolve, 250));
				const saleNow = await call(baseUrl, "GET", `/api/sales/${sale.id}`, 200);
				const item = (saleNow.items as Array<{ productId: string; unitsLeft: number }>).find(
					x => x.productId === productId
				);
				unitsLeft = typeof item?.unitsLeft === "number" ? item.unitsLeft : null;
			}
			const admittedUnits = buyers.reduce((n, b) => n + b.units, 0);
			const overLimitBuyers = buyers.filter(b => b.units > size.perCustomerLimit).length;
			const oversold = Math.max(0, admittedUnits - size.units);
			const begun = startedAt ?? performance.now();
			const windows = saleWindows(begun, sales);
			const rates = windows.map(w => w.checkoutsPerSec);
			const bestWindow = rates.length > 0 ? Math.max(...rates) : 0;
			const lastWindow = rates.length > 0 ? rates[rates.length - 1] : 0;
			const lastSale = sales.length > 0 ? Math.max(...sales.map(x => x.at)) : begun;
			const sellOutSeconds = (lastSale - begun) / 1000;
			result = {
				buyers: buyers.length,
				registrationSeconds,
				warmup,
				units: size.units,
				perCustomerLimit: size.perCustomerLimit,
				windowUnits: SALE_WINDOW_UNITS,
				windows,
				bestWindow,
				lastWindow,
				lastToBest: bestWindow > 0 ? round(lastWindow / bestWindow) : 0,
				sustainedPerSec: round(sellOutSeconds > 0 ? sales.length / sellOutSeconds : 0),
				sellOutSeconds: round(sellOutSeconds),
				runSeconds: round((lastAnswerAt - begun) / 1000),
				admittedLatencyMs: latencySummary(admittedLatencies),
				admitted,
				admittedUnits,
				oversold,
				rejects,
				serverErrors,
				overloaded,
				noAnswer,
				overLimitBuyers,
				inventory: stock,
				unitsLeft
			};
			const wrong: string[] = [];
			if (admittedUnits !== size.units)
				wrong.push(`${admittedUnits} units admitted (201), not the sale's ${size.units}`);
			if (stock.onHand !== size.units)
				wrong.push(`onHand ${stock.onHand} != ${size.units} (nothing was paid)`);
			if (stock.reserved !== admittedUnits)
				wrong.push(`reserved ${stock.reserved} != ${admittedUnits} units checked out`);
			if (stock.available !== 0) wrong.push(`available ${stock.available} != 0 after the sell-out`);
			if (unitsLeft !== 0) wrong.push(`the sale's unitsLeft is ${unitsLeft}, not 0`);
			if (overLimitBuyers > 0)
				wrong.push(`${overLimitBuyers} buyer(s) got more than ${size.perCustomerLimit} units`);
			for (const u of unresolved) wrong.push(`unresolved ${u}`);
			details.push(
				`inventory ${productId}: ${JSON.stringify(stock)}; sale ${sale.id}: unitsLeft ${unitsLeft}`,
				`${admitted} checkouts answered 201 (${replayed} learnt by replaying their key after the run) ` +
					`for ${admittedUnits} units; ${buyers.filter(b => b.units === size.perCustomerLimit).length} ` +
					`buyers reached the limit of ${size.perCustomerLimit}`,
				...wrong.map(w => `DISCREPANCY: ${w}`)
			);
			const ok = wrong.length === 0;
			const summary = ok
				? `0 oversell: every one of the ${size.units} units sold exactly once (201s = reserved = the sale's ` +
					`units, available 0, unitsLeft 0), no buyer over the limit of ${size.perCustomerLimit}`
				: `DISCREPANCY: ${wrong[0]}${wrong.length > 1 ? ` (+${wrong.length - 1} more)` : ""}`;
			return { ok, summary, details };
		},
		flashSale: () => result
	};
}

/** The steps the flows share, in the order a shop's client makes them. */
const ADD_TO_CART: FlowStep = {
	name: "add to cart",
	method: "POST",
	path: "/api/cart/items",
	expect: [200]
};
const APPLY_CODE: FlowStep = {
	name: "apply code",
	method: "POST",
	path: "/api/cart/discount",
	expect: [200]
};
const CHECKOUT: FlowStep = { name: "checkout", method: "POST", path: "/api/orders", expect: [201] };
const PAY: FlowStep = { name: "pay", method: "POST", path: "/api/orders/:id/pay", expect: [200] };

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
		// The read above of a product with options: its variants, price range and each variant's availability.
		name: "variant product by id /api/products/:id",
		method: "GET",
		path: "/api/products/:id",
		requires: ["api", "products", "inventory"],
		async setup(baseUrl) {
			return { path: `/api/products/${(await someVariantProduct(baseUrl)).id}` };
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
		steps: [ADD_TO_CART, CHECKOUT],
		setup: runOrderFlow
	},
	{
		// The whole purchase per iteration: add to cart, check out, pay (tok_visa): the charge at the simulated
		// provider, the order paid, its stock sold, the events written. Checked afterwards: no unit oversold or lost.
		kind: "flow",
		name: "purchase flow (cart item + checkout + pay)",
		requires: ["api", "users", "products", "inventory", "carts", "orders", "payments"],
		unit: "purchases",
		steps: [ADD_TO_CART, CHECKOUT, PAY],
		setup: runOrderFlow
	},
	{
		// The purchase above as a shop with pricing makes it: a discount code applied to the cart (the cart priced
		// with it), then a checkout with a shipping method (the code redeemed at the checkout, atomically within its
		// limits), then the pay. Checked afterwards: the stock as above, and the code used once per order.
		kind: "flow",
		name: "purchase flow with code + shipping (cart item + code + checkout + pay)",
		requires: ["api", "users", "products", "inventory", "carts", "orders", "payments", "pricing"],
		unit: "purchases",
		steps: [ADD_TO_CART, APPLY_CODE, CHECKOUT, PAY],
		setup: (baseUrl, ctx) => runOrderFlow(baseUrl, ctx, { priced: true })
	},
	{
		// The purchase above on products with options: each line names a variant (one of a few products' sizes),
		// its stock reserved, held and sold per variant. Checked afterwards per variant, as above per product.
		kind: "flow",
		name: "purchase flow of variants (variant cart item + checkout + pay)",
		requires: ["api", "users", "products", "inventory", "carts", "orders", "payments"],
		unit: "purchases",
		steps: [ADD_TO_CART, CHECKOUT, PAY],
		setup: (baseUrl, ctx) => runOrderFlow(baseUrl, ctx, { variants: true })
	},
	{
		// One hot product, thousands of buyers, the sale's units and not one more (see runFlashSale).
		kind: "flow",
		name: "flash-sale (one product, thousands of buyers)",
		requires: ["api", "users", "products", "inventory", "carts", "orders"],
		unit: "checkout attempts",
		steps: [ADD_TO_CART, CHECKOUT],
		untilDoneSeconds: 300,
		setupTimeoutMs: 20 * 60_000,
		verifyTimeoutMs: 2 * 60_000,
		setup: runFlashSale
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
