/** The benchmark scenarios: one HTTP request (or a short sequence) each, driven against a running FlashMart gateway. */
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
	 * Instead of one request: a sequence each connection runs in a loop (autocannon's `requests`), e.g. add to cart
	 * then check out. Latencies are per request; iterations per second = requests per second / length.
	 */
	sequence?: import("autocannon").Request[];
}

export interface Scenario {
	/** Unique; `--scenario <text>` runs the scenarios whose name contains the text. */
	name: string;
	method: HttpMethod;
	path: string;
	headers?: Record<string, string>;
	body?: string | JsonValue;
	/** Services (from ALL_SERVICES) the scenario needs; reported as skipped while one is missing. */
	requires: string[];
	/**
	 * Runs once against the started cluster, before the warm-up (register a user, create a product,
	 * ...). What it returns overrides the declared request; its headers are merged over the declared
	 * ones (e.g. `{ headers: { Authorization: "Bearer ..." } }`).
	 */
	setup?: (baseUrl: string) => Promise<Partial<RequestOptions>>;
}

/** The admin the bench's FlashMart cluster is started with (bench/run.ts). */
export const BENCH_ADMIN = {
	email: "bench-admin@flashmart.local",
	password: "bench-admin-password-1"
};

async function post(baseUrl: string, path: string, body: unknown, token?: string): Promise<any> {
	const res = await fetch(`${baseUrl}${path}`, {
		method: "POST",
		headers: {
			"Content-Type": "application/json",
			...(token ? { Authorization: `Bearer ${token}` } : {})
		},
		body: JSON.stringify(body)
	});
	if (res.status >= 300) throw new Error(`${path} answered ${res.status}: ${await res.text()}`);
	return res.json();
}

/** A new customer's access token. Registration costs ~200 ms of scrypt by design: callers make them 4 at a time. */
async function newCustomer(baseUrl: string): Promise<string> {
	const email = `bench-${randomUUID()}@example.com`;
	return (
		await post(baseUrl, "/api/auth/register", {
			email,
			password: "bench-password-1",
			name: "Bench"
		})
	).accessToken;
}

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

/** Products with practically endless stock, created as admin, so a checkout run never sells out. */
async function plentifulProducts(baseUrl: string, n: number): Promise<string[]> {
	const admin = (await post(baseUrl, "/api/auth/login", BENCH_ADMIN)).accessToken;
	const ids: string[] = [];
	for (let i = 0; i < n; i++) {
		const body = {
			sku: `BENCH-${randomUUID().slice(0, 8)}`,
			name: `Bench Item ${i}`,
			price: 1999,
			category: "bench",
			stock: 10_000_000
		};
		ids.push((await post(baseUrl, "/api/products", body, admin)).id);
	}
	return ids;
}

const SHIPPING = {
	name: "Bench",
	line1: "1 Bench St",
	city: "Testville",
	postalCode: "12345",
	country: "US"
};
/** More users than connections: each connection keeps its own user, so carts never collide. */
const CHECKOUT_USERS = 60;

/** A product of the seeded demo catalog, for the reads below. */
async function someProduct(baseUrl: string): Promise<{ id: string; category: string }> {
	const res = await fetch(`${baseUrl}/api/products?pageSize=1&sort=name`);
	const page = (await res.json()) as { rows: Array<{ id: string; category: string }> };
	if (res.status !== 200 || page.rows.length === 0)
		throw new Error("no product to read: is the catalog seeded?");
	return page.rows[0];
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
		// A cached read: gateway, one NATS round trip to products, answered from its cacher.
		name: "product by id /api/products/:id",
		method: "GET",
		path: "/api/products/:id",
		requires: ["api", "products", "inventory"],
		async setup(baseUrl) {
			return { path: `/api/products/${(await someProduct(baseUrl)).id}` };
		}
	},
	{
		// A page of one category (cached), with availability for the page in one inventory call.
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
		// A cart write: read the cart, price it from the catalog (one call), conditional write. Each connection is its
		// own customer (one cart per user: 50 connections on one cart would only measure write conflicts). PATCH sets
		// the quantity, so a line never reaches the 99-unit limit that repeated POSTs would.
		name: "add to cart /api/cart/items",
		method: "PATCH",
		path: "/api/cart/items/:productId",
		requires: ["api", "users", "products", "inventory", "carts"],
		async setup(baseUrl) {
			const { id } = await someProduct(baseUrl);
			const tokens = await customers(baseUrl, CHECKOUT_USERS);
			await Promise.all(
				tokens.map(t => post(baseUrl, "/api/cart/items", { productId: id, quantity: 1 }, t))
			);
			let next = 0;
			return {
				sequence: [
					{
						method: "PATCH",
						path: `/api/cart/items/${id}`,
						setupRequest: (req, context) => {
							const ctx = context as { token?: string };
							ctx.token ??= tokens[next++ % tokens.length];
							return {
								...req,
								headers: {
									"content-type": "application/json",
									authorization: `Bearer ${ctx.token}`
								},
								body: JSON.stringify({ quantity: 1 })
							};
						}
					}
				]
			};
		}
	},
	{
		// One purchase = 2 requests per connection, in a loop: add a unit to the cart, then check out (reserve the
		// stock, write the order, empty the cart) under a fresh Idempotency-Key. Each connection is its own customer.
		name: "checkout flow (add to cart + POST /api/orders)",
		method: "POST",
		path: "/api/orders",
		requires: ["api", "users", "products", "inventory", "carts", "orders"],
		async setup(baseUrl) {
			const products = await plentifulProducts(baseUrl, 3);
			const tokens = await customers(baseUrl, CHECKOUT_USERS);
			let next = 0;
			type Ctx = { token?: string; product?: string };
			const auth = (context: Ctx) => {
				if (!context.token) {
					context.token = tokens[next % tokens.length];
					context.product = products[next % products.length];
					next++;
				}
				return `Bearer ${context.token}`;
			};
			return {
				sequence: [
					{
						method: "POST",
						path: "/api/cart/items",
						setupRequest: (req, context) => ({
							...req,
							headers: { "content-type": "application/json", authorization: auth(context as Ctx) },
							body: JSON.stringify({ productId: (context as Ctx).product, quantity: 1 })
						})
					},
					{
						method: "POST",
						path: "/api/orders",
						setupRequest: (req, context) => ({
							...req,
							headers: {
								"content-type": "application/json",
								authorization: auth(context as Ctx),
								"idempotency-key": randomUUID()
							},
							body: JSON.stringify({ shippingAddress: SHIPPING })
						})
					}
				]
			};
		}
	},
	{
		// The access token is verified at the gateway with the public key (no call for it), then one
		// NATS round trip to users.me, which reads the user from its store.
		name: "authenticated /api/users/me",
		method: "GET",
		path: "/api/users/me",
		requires: ["api", "users"],
		async setup(baseUrl) {
			const res = await fetch(`${baseUrl}/api/auth/register`, {
				method: "POST",
				headers: { "Content-Type": "application/json" },
				body: JSON.stringify({
					email: `bench-${Date.now()}@example.com`,
					password: "bench-password-1",
					name: "Bench"
				})
			});
			if (res.status !== 201) throw new Error(`register answered ${res.status}`);
			const { accessToken } = (await res.json()) as { accessToken: string };
			return { headers: { Authorization: `Bearer ${accessToken}` } };
		}
	}
];

/** The declared request with the setup's result applied. */
export function resolveRequest(
	scenario: Scenario,
	fromSetup: Partial<RequestOptions> = {}
): RequestOptions {
	return {
		method: fromSetup.method ?? scenario.method,
		path: fromSetup.path ?? scenario.path,
		headers: { ...scenario.headers, ...fromSetup.headers },
		body: fromSetup.body ?? scenario.body,
		sequence: fromSetup.sequence
	};
}
