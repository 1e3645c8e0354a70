/**
 * OPTIONS never runs an operation (issue 16, item 1): moleculer-web routed it as the method that
 * Access-Control-Request-Method names, or as GET, so a preflight could register an account or empty a cart. A
 * preflight is answered from the CORS settings alone; any other OPTIONS is 404 as an unknown method is.
 */
import { stopAll } from "../../scripts/lib/cluster";
import { startEmbedded } from "../helpers/embedded";

type Json = Record<string, any>;

async function call(
	base: string,
	method: string,
	path: string,
	opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {}
) {
	const res = await fetch(`${base}${path}`, {
		method,
		headers: {
			...(opts.body !== undefined ? { "Content-Type": "application/json" } : {}),
			...(opts.token ? { Authorization: `Bearer ${opts.token}` } : {}),
			...opts.headers
		},
		body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined
	});
	const text = await res.text();
	return {
		status: res.status,
		headers: res.headers,
		body: (text ? JSON.parse(text) : null) as Json
	};
}

async function customer(base: string) {
	const email = `options-${Date.now()}-${Math.random().toString(36).slice(2)}@flashmart.test`;
	const reg = await call(base, "POST", "/api/auth/register", {
		body: { email, password: "a-long-password", name: "Options" }
	});
	expect(reg.status).toBe(201);
	return reg.body.accessToken as string;
}

describe.each([
	["with CORS_ORIGINS unset (the default)", {}],
	["with CORS_ORIGINS set", { CORS_ORIGINS: "https://shop.example" }]
])("OPTIONS %s", (_name, env) => {
	let base: string;
	let token: string;
	let productId: string;

	beforeAll(async () => {
		({ base } = await startEmbedded("options", env));
		token = await customer(base);
		const list = await call(base, "GET", "/api/products?pageSize=1");
		productId = list.body.rows[0].id;
	});
	afterAll(() => stopAll());

	it("does not answer the profile as GET would", async () => {
		const res = await call(base, "OPTIONS", "/api/users/me", { token });
		expect(res.status).toBe(404);
		expect(res.body).toMatchObject({ type: "NOT_FOUND" });
		expect(res.headers.get("x-request-id")).toBeTruthy();
		expect(res.headers.get("x-content-type-options")).toBe("nosniff");
	});

	it("does not register an account as the POST it names", async () => {
		const email = `preflight-${Date.now()}@flashmart.test`;
		const res = await call(base, "OPTIONS", "/api/auth/register", {
			body: { email, password: "a-long-password", name: "Nobody" },
			headers: { "Access-Control-Request-Method": "POST", Origin: "https://evil.example" }
		});
		expect(res.status).toBe(404);
		const login = await call(base, "POST", "/api/auth/login", {
			body: { email, password: "a-long-password" }
		});
		expect(login.status).toBe(401);
	});

	it("does not empty the cart as the DELETE it names", async () => {
		expect(
			(await call(base, "POST", "/api/cart/items", { token, body: { productId, quantity: 1 } }))
				.status
		).toBe(200);
		const res = await call(base, "OPTIONS", "/api/cart", {
			token,
			headers: { "Access-Control-Request-Method": "DELETE", Origin: "https://shop.example" }
		});
		expect([204, 404]).toContain(res.status);
		const cart = await call(base, "GET", "/api/cart", { token });
		expect(cart.body.items).toHaveLength(1);
	});

	it("answers an allowed origin's preflight from the CORS settings alone, and nobody else's", async () => {
		const res = await call(base, "OPTIONS", "/api/cart", {
			headers: { "Access-Control-Request-Method": "DELETE", Origin: "https://shop.example" }
		});
		if ("CORS_ORIGINS" in env) {
			expect(res.status).toBe(204);
			expect(res.headers.get("access-control-allow-origin")).toBe("https://shop.example");
			expect(res.headers.get("access-control-allow-methods")).toContain("DELETE");
		} else {
			expect(res.status).toBe(404);
			expect(res.headers.get("access-control-allow-origin")).toBeNull();
		}
		const other = await call(base, "OPTIONS", "/api/cart", {
			headers: { "Access-Control-Request-Method": "DELETE", Origin: "https://evil.example" }
		});
		expect(other.status).toBe(404);
		expect(other.headers.get("access-control-allow-origin")).toBeNull();
	});
});
