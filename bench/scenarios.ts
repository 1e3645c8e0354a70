/** The benchmark scenarios: one HTTP request each, driven against a running FlashMart gateway. */

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
		body: fromSetup.body ?? scenario.body
	};
}
