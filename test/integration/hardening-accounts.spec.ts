/**
 * Issue 16, items 2, 4 and 8 over real HTTP against the embedded default (node dist/server.js): `null` for optional
 * fields, stored nulls, look-alike emails, login and registration throttling.
 *
 * The client address comes from the socket (TRUSTED_PROXIES is empty): each throttling case connects from its own
 * loopback address (127.0.0.x), so no case locks out another.
 */
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import type { Proc } from "../../scripts/lib/cluster";
import { tempDir } from "../../scripts/lib/cluster";
import { startEmbedded } from "../helpers/embedded";
import { ADDRESS } from "../helpers/shop";

const ADMIN = { email: "hardening-admin@flashmart.test", password: "hardening-admin-pw" };
const PASSWORD = "correct-horse-battery";
const MAX_FAILURES = 5;
const ADDRESS_MAX_ACCOUNTS = 12;
const REGISTER_MAX = 8;

interface Res {
	status: number;
	headers: http.IncomingHttpHeaders;
	body: any;
}

let node: Proc;
let base: string;
let dataDir: string;

/** One HTTP request, from a chosen loopback address. */
function send(
	method: string,
	urlPath: string,
	opts: { body?: unknown; token?: string; from?: string; headers?: Record<string, string> } = {}
): Promise<Res> {
	const headers: Record<string, string> = { ...opts.headers };
	const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
	if (payload !== undefined) {
		headers["Content-Type"] = "application/json";
		headers["Content-Length"] = String(Buffer.byteLength(payload));
	}
	if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
	const target = new URL(urlPath, base);
	return new Promise((resolve, reject) => {
		const req = http.request(
			{
				host: target.hostname,
				port: target.port,
				path: `${target.pathname}${target.search}`,
				method,
				headers,
				localAddress: opts.from ?? "127.0.0.1",
				agent: false
			},
			res => {
				const chunks: Buffer[] = [];
				res.on("data", (c: Buffer) => chunks.push(c));
				res.on("error", reject);
				res.on("end", () => {
					const text = Buffer.concat(chunks).toString("utf8");
					let body: unknown = text;
					try {
						body = text ? JSON.parse(text) : null;
					} catch {
						// not JSON
					}
					resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
				});
			}
		);
		req.on("error", reject);
		req.end(payload);
	});
}

function expectError(res: Res, status: number, type: string) {
	expect(res.status).toBe(status);
	expect(res.body).toMatchObject({ code: status, type, requestId: expect.any(String) });
}

function expectThrottled(res: Res) {
	expectError(res, 429, "RATE_LIMIT_EXCEEDED");
	expect(Number(res.headers["retry-after"])).toBeGreaterThanOrEqual(1);
}

let seq = 0;
const uniqueEmail = (tag: string) => `${tag}-${process.pid}-${Date.now()}-${++seq}@example.com`;
let nextHost = 10;
const freshAddress = () => `127.0.0.${nextHost++}`;

async function register(email: string, from = freshAddress()) {
	const res = await send("POST", "/api/auth/register", {
		from,
		body: { email, password: PASSWORD, name: "Hardening" }
	});
	expect(res.status).toBe(201);
	return res.body as { accessToken: string; user: { id: string; email: string } };
}

const login = (email: string, password: string, from: string, deviceToken?: string) =>
	send("POST", "/api/auth/login", {
		from,
		body: deviceToken ? { email, password, deviceToken } : { email, password }
	});

async function failTimes(email: string, from: string, times: number) {
	for (let i = 0; i < times; i++) {
		const res = await login(email, "wrong-password", from);
		expectError(res, 401, "INVALID_CREDENTIALS");
	}
}

/** A store written by an earlier version: products saved with `null` in optional fields. */
function seedStoredNulls(dir: string) {
	const stamp = "2024-01-01T00:00:00.000Z";
	const docs = [
		{ _id: "nullcat1", sku: "OLD-NULL-1", slug: "old-null-1", name: "Old lamp", description: null },
		{ _id: "nullcat2", sku: "OLD-NULL-2", slug: "old-null-2", name: null, description: "x" },
		{ _id: "goodcat1", sku: "OLD-GOOD-1", slug: "old-good-1", name: "Good", description: "" }
	].map((d, i) => ({
		...d,
		price: 1000,
		currency: i === 0 ? null : "USD",
		category: i === 2 ? "lamps" : null,
		images: i === 1 ? null : [],
		archived: false,
		createdAt: stamp,
		updatedAt: stamp
	}));
	fs.mkdirSync(dir, { recursive: true });
	fs.writeFileSync(
		path.join(dir, "products.db"),
		docs.map(d => JSON.stringify(d)).join("\n") + "\n"
	);
}

beforeAll(async () => {
	dataDir = tempDir("hardening-accounts");
	seedStoredNulls(dataDir);
	({ node, base } = await startEmbedded(
		"hardening-accounts",
		{
			DATA_DIR: dataDir,
			ADMIN_EMAIL: ADMIN.email,
			ADMIN_PASSWORD: ADMIN.password,
			LOGIN_MAX_FAILURES: String(MAX_FAILURES),
			LOGIN_ADDRESS_MAX_ACCOUNTS: String(ADDRESS_MAX_ACCOUNTS),
			REGISTER_MAX_PER_WINDOW: String(REGISTER_MAX),
			REGISTER_WINDOW: "600"
		},
		60000
	));
}, 90000);

afterAll(async () => {
	await node?.stop();
});

describe("null for optional fields", () => {
	let admin: string;
	let customer: string;
	let productId: string;

	beforeAll(async () => {
		const res = await login(ADMIN.email, ADMIN.password, "127.0.0.2");
		expect(res.status).toBe(200);
		admin = res.body.accessToken;
		customer = (await register(uniqueEmail("nulls"), "127.0.0.3")).accessToken;
		const created = await send("POST", "/api/products", {
			token: admin,
			body: {
				sku: `NULL-${Date.now()}`,
				name: "Null lamp",
				price: 500,
				category: "lamps",
				stock: 5
			}
		});
		expect(created.status).toBe(201);
		productId = created.body.id;
	});

	it("refuses null for an optional field of a product create with 422 naming it", async () => {
		const res = await send("POST", "/api/products", {
			token: admin,
			body: {
				sku: `NULL-D-${Date.now()}`,
				name: "Lamp",
				price: 500,
				category: "lamps",
				description: null
			}
		});
		expectError(res, 422, "VALIDATION_ERROR");
		expect(JSON.stringify(res.body.data)).toContain("description");
	});

	it("refuses null for a product update's category, and GET /api/categories stays 200", async () => {
		const res = await send("PATCH", `/api/products/${productId}`, {
			token: admin,
			body: { category: null }
		});
		expectError(res, 422, "VALIDATION_ERROR");
		const categories = await send("GET", "/api/categories");
		expect(categories.status).toBe(200);
	});

	it("refuses null for a cart line's quantity", async () => {
		const res = await send("POST", "/api/cart/items", {
			token: customer,
			body: { productId, quantity: null }
		});
		expectError(res, 422, "VALIDATION_ERROR");
	});

	it("refuses null for an optional shipping address line at checkout, creating nothing", async () => {
		const added = await send("POST", "/api/cart/items", {
			token: customer,
			body: { productId, quantity: 1 }
		});
		expect(added.status).toBe(200);
		const res = await send("POST", "/api/orders", {
			token: customer,
			headers: { "Idempotency-Key": `null-${Date.now()}` },
			body: { shippingAddress: { ...ADDRESS, line2: null } }
		});
		expectError(res, 422, "VALIDATION_ERROR");
		expect(JSON.stringify(res.body.data)).toContain("line2");
		const orders = await send("GET", "/api/orders", { token: customer });
		expect(orders.body.total).toBe(0);
	});

	it("answers PATCH /api/users/me with password: null as 422, not 500", async () => {
		const res = await send("PATCH", "/api/users/me", {
			token: customer,
			body: { password: null, currentPassword: PASSWORD }
		});
		expectError(res, 422, "VALIDATION_ERROR");
		const named = await send("PATCH", "/api/users/me", { token: customer, body: { name: null } });
		expectError(named, 422, "VALIDATION_ERROR");
	});
});

describe("values stored as null by an earlier version", () => {
	it("GET /api/categories answers 200 with [{ name: string, count: integer }]", async () => {
		const res = await send("GET", "/api/categories");
		expect(res.status).toBe(200);
		expect(Array.isArray(res.body)).toBe(true);
		for (const c of res.body) {
			expect(typeof c.name).toBe("string");
			expect(Number.isInteger(c.count)).toBe(true);
		}
		expect(res.body).toEqual(
			expect.arrayContaining([{ name: "lamps", count: expect.any(Number) }])
		);
	});

	it("reads stored products back with every documented field of the documented type", async () => {
		for (const id of ["nullcat1", "nullcat2"]) {
			const res = await send("GET", `/api/products/${id}`);
			expect(res.status).toBe(200);
			const p = res.body;
			for (const f of ["id", "sku", "slug", "name", "description", "currency", "category"]) {
				expect(typeof p[f]).toBe("string");
			}
			expect(p.currency).toMatch(/^[A-Z]{3}$/);
			expect(Array.isArray(p.images)).toBe(true);
		}
		const list = await send("GET", "/api/products?pageSize=100");
		expect(list.status).toBe(200);
		for (const p of list.body.rows) expect(typeof p.category).toBe("string");
	});
});

describe("look-alike emails", () => {
	it("normalises full-width letters (NFKC): the same account, 409 on register, and login works", async () => {
		const local = `fw${process.pid}${Date.now()}`;
		await register(`${local}@example.com`);
		const fullWidth = [...local]
			.map(ch => String.fromCodePoint(ch.codePointAt(0)! + 0xfee0))
			.join("");
		const again = await send("POST", "/api/auth/register", {
			body: { email: `${fullWidth}@example.com`, password: PASSWORD, name: "Twin" }
		});
		expectError(again, 409, "EMAIL_TAKEN");
		const res = await login(`${fullWidth.toUpperCase()}@EXAMPLE.COM`, PASSWORD, "127.0.0.1");
		expect(res.status).toBe(200);
		expect(res.body.user.email).toBe(`${local}@example.com`);
	});

	it.each([
		["a zero-width space", "\u200b"],
		["a soft hyphen", "\u00ad"],
		["a right-to-left override", "\u202e"],
		["a zero-width joiner", "\u200d"]
	])("refuses an email with %s with 422, on register and on login", async (_what, ch) => {
		const email = uniqueEmail("inv");
		const twisted = email.replace("@", `${ch}@`);
		const res = await send("POST", "/api/auth/register", {
			body: { email: twisted, password: PASSWORD, name: "Twin" }
		});
		expectError(res, 422, "VALIDATION_ERROR");
		expect(JSON.stringify(res.body.data)).toContain("email");
		expectError(await login(twisted, PASSWORD, "127.0.0.1"), 422, "VALIDATION_ERROR");
	});
});

describe("login throttling", () => {
	it("lets a correct password in from an address where other accounts failed (no lockout of a whole address)", async () => {
		const from = freshAddress();
		const victim = uniqueEmail("office");
		await register(victim);
		for (let i = 0; i < MAX_FAILURES; i++) {
			expectError(
				await login(uniqueEmail("typo"), "wrong-password", from),
				401,
				"INVALID_CREDENTIALS"
			);
		}
		const res = await login(victim, PASSWORD, from);
		expect(res.status).toBe(200);
	});

	it("throttles brute force on one account from one and from other addresses, without checking the password", async () => {
		const email = uniqueEmail("brute");
		await register(email);
		await failTimes(email, freshAddress(), MAX_FAILURES);
		expectThrottled(await login(email, PASSWORD, freshAddress()));
		expectThrottled(await login(email, "wrong-password", freshAddress()));
	});

	it("lets the owner in with the device token of an earlier login while the account is under attack", async () => {
		const email = uniqueEmail("owner");
		await register(email);
		const first = await login(email, PASSWORD, freshAddress());
		expect(first.status).toBe(200);
		expect(typeof first.body.deviceToken).toBe("string");
		await failTimes(email, freshAddress(), MAX_FAILURES);
		expectThrottled(await login(email, PASSWORD, freshAddress()));
		const res = await login(email, PASSWORD, freshAddress(), first.body.deviceToken);
		expect(res.status).toBe(200);
		expect(res.body.user.email).toBe(email);
	});

	it("does not take another account's device token as proof", async () => {
		const email = uniqueEmail("victim");
		const other = uniqueEmail("other");
		await register(email);
		await register(other);
		const theirs = await login(other, PASSWORD, freshAddress());
		await failTimes(email, freshAddress(), MAX_FAILURES);
		expectThrottled(await login(email, PASSWORD, freshAddress(), theirs.body.deviceToken));
	});

	it("throttles password spraying from one address, and lets a client with a device token through it", async () => {
		const from = freshAddress();
		const email = uniqueEmail("sprayed");
		await register(email);
		const earlier = await login(email, PASSWORD, freshAddress());
		for (let i = 0; i < ADDRESS_MAX_ACCOUNTS; i++) {
			const res = await login(uniqueEmail("spray"), "Password1!", from);
			expectError(res, 401, "INVALID_CREDENTIALS");
		}
		expectThrottled(await login(email, PASSWORD, from));
		const res = await login(email, PASSWORD, from, earlier.body.deviceToken);
		expect(res.status).toBe(200);
	});

	it("refuses a device token as an access token", async () => {
		const email = uniqueEmail("bearer");
		await register(email);
		const res = await login(email, PASSWORD, freshAddress());
		const me = await send("GET", "/api/users/me", { token: res.body.deviceToken });
		expect(me.status).toBe(401);
	});
});

describe("registration throttling", () => {
	it("answers 429 with Retry-After past REGISTER_MAX_PER_WINDOW registrations from one address", async () => {
		const from = freshAddress();
		for (let i = 0; i < REGISTER_MAX; i++) await register(uniqueEmail("reg"), from);
		const res = await send("POST", "/api/auth/register", {
			from,
			body: { email: uniqueEmail("reg"), password: PASSWORD, name: "One too many" }
		});
		expectThrottled(res);
		// Another address is not affected.
		await register(uniqueEmail("reg"), freshAddress());
	});
});
