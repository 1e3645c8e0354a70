/**
 * Accounts over HTTP, black-box from the contract (API.md "Accounts"): a real nats-server, one `users` node and two
 * gateways, each its own process.
 *
 * Login throttling counts failures per account and accounts failing per client address. TRUSTED_PROXIES is empty, so the gateways take
 * the client address from the socket and ignore X-Forwarded-For. Every test that makes a login fail connects from
 * its own loopback address (127.0.0.x, all of 127/8 is local on Linux), so no test locks another one out, and the
 * throttling tests can tell "per email" from "per address".
 */
import { createHmac, randomUUID } from "node:crypto";
import http from "node:http";
import jwt, { type JwtPayload } from "jsonwebtoken";
import { type TestCluster, api, makeKeyPair, startCluster } from "../helpers/flashmart-cluster";

const ADMIN_EMAIL = "admin@flashmart.test";
const ADMIN_PASSWORD = "admin-password-123";
const PASSWORD = "correct-horse-battery";
const MAX_FAILURES = 5;

interface Res {
	status: number;
	headers: Headers;
	body: any;
}

interface CallOptions {
	body?: unknown;
	token?: string;
	headers?: Record<string, string>;
	/** Connect from this local (loopback) address instead of 127.0.0.1. */
	from?: string;
}

interface Bundle {
	user: { id: string; email: string; name: string; roles: string[]; createdAt: string };
	accessToken: string;
	refreshToken: string;
	tokenType: string;
	expiresIn: number;
}

let cluster: TestCluster;
let base: string;

let seq = 0;
const uniqueEmail = (tag = "u") => `${tag}${Date.now()}-${++seq}@example.com`;

// 127.0.0.1 is the default client; every failing login uses an address of its own from here on.
let nextHost = 10;
const freshAddress = () => `127.0.0.${nextHost++}`;

/** The harness request, or the same over node:http bound to `from`. */
function send(url: string, method: string, path: string, opts: CallOptions): Promise<Res> {
	const { from, ...rest } = opts;
	if (!from) return api(url, method, path, rest);
	const headers: Record<string, string> = { ...rest.headers };
	const payload = rest.body === undefined ? undefined : JSON.stringify(rest.body);
	if (payload !== undefined) {
		headers["Content-Type"] = "application/json";
		headers["Content-Length"] = String(Buffer.byteLength(payload));
	}
	if (rest.token) headers.Authorization = `Bearer ${rest.token}`;
	const target = new URL(path, url);
	return new Promise((resolve, reject) => {
		const req = http.request(
			{
				host: target.hostname,
				port: target.port,
				path: `${target.pathname}${target.search}`,
				method,
				headers,
				localAddress: from,
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
						// not JSON: keep the text
					}
					const h = new Headers();
					for (const [k, v] of Object.entries(res.headers)) {
						if (v !== undefined) h.set(k, Array.isArray(v) ? v.join(", ") : v);
					}
					resolve({ status: res.statusCode ?? 0, headers: h, body });
				});
			}
		);
		req.on("error", reject);
		if (payload !== undefined) req.write(payload);
		req.end();
	});
}

/** No response, success or error, ever carries a stack, a password hash or a hash-shaped string. */
function expectNoLeak(res: Res): void {
	const text = typeof res.body === "string" ? res.body : JSON.stringify(res.body ?? null);
	expect(text).not.toMatch(/"stack"\s*:/);
	expect(text).not.toMatch(/\n\s+at .+:\d+:\d+/);
	expect(text).not.toMatch(/passwordHash/i);
	expect(text).not.toMatch(/\$2[abxy]?\$\d{2}\$/);
	expect(text).not.toMatch(/scrypt\$/);
}

async function call(
	method: string,
	path: string,
	opts: CallOptions = {},
	url = base
): Promise<Res> {
	const res = await send(url, method, path, opts);
	expectNoLeak(res);
	return res;
}

/** The one error shape: Moleculer's, plus the request id; HTTP status = code. */
function expectError(res: Res, status: number, type: string): void {
	expect({ status: res.status, type: res.body?.type }).toEqual({ status, type });
	expect(res.body).toEqual(
		expect.objectContaining({
			name: expect.any(String),
			message: expect.any(String),
			code: status,
			type,
			requestId: expect.any(String)
		})
	);
	expect(res.body.requestId).not.toBe("");
	expect(res.body.requestId).toBe(res.headers.get("x-request-id"));
	expectNoLeak(res);
}

/** A 422 whose `data` is a list of `{ field, type, message }` naming every one of `fields`. */
function expectValidationError(res: Res, fields: string[]): void {
	expectError(res, 422, "VALIDATION_ERROR");
	expect(Array.isArray(res.body.data)).toBe(true);
	for (const item of res.body.data) {
		expect(item).toEqual(
			expect.objectContaining({
				field: expect.any(String),
				type: expect.any(String),
				message: expect.any(String)
			})
		);
	}
	const named = (res.body.data as Array<{ field: string }>).map(d => d.field);
	for (const field of fields) expect(named).toContain(field);
}

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/** `{ id, email, name, roles, createdAt }` and nothing secret. */
function expectPublicUser(user: any): void {
	expect(user).toEqual(
		expect.objectContaining({
			id: expect.any(String),
			email: expect.any(String),
			name: expect.any(String),
			roles: expect.any(Array),
			createdAt: expect.stringMatching(ISO_UTC)
		})
	);
	for (const key of Object.keys(user)) expect(key).not.toMatch(/password|hash|salt|secret|token/i);
}

function expectBundle(res: Res, status: number): Bundle {
	expect(res.status).toBe(status);
	const b = res.body as Bundle;
	expectPublicUser(b.user);
	expect(b.accessToken).toEqual(expect.any(String));
	expect(b.refreshToken).toEqual(expect.any(String));
	expect(b.accessToken).not.toBe("");
	expect(b.refreshToken).not.toBe("");
	expect(b.tokenType).toBe("Bearer");
	expect(typeof b.expiresIn).toBe("number");
	expect(b.expiresIn).toBeGreaterThan(0);
	expect(b.expiresIn).toBeLessThanOrEqual(900);
	return b;
}

async function register(
	over: { email?: string; password?: string; name?: string } = {},
	url = base
): Promise<Bundle & { password: string }> {
	const password = over.password ?? PASSWORD;
	const res = await call(
		"POST",
		"/api/auth/register",
		{ body: { email: over.email ?? uniqueEmail(), password, name: over.name ?? "Test User" } },
		url
	);
	return { ...expectBundle(res, 201), password };
}

function login(email: string, password: string, opts: CallOptions = {}, url = base): Promise<Res> {
	return call("POST", "/api/auth/login", { ...opts, body: { email, password } }, url);
}

function refresh(refreshToken: string, url = base): Promise<Res> {
	return call("POST", "/api/auth/refresh", { body: { refreshToken } }, url);
}

async function adminToken(): Promise<string> {
	return expectBundle(await login(ADMIN_EMAIL, ADMIN_PASSWORD), 200).accessToken;
}

// ---- forged tokens ----

const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
const nowSec = () => Math.floor(Date.now() / 1000);

/** The claims of a real access token, re-dated to be valid for 5 more minutes, with `over` applied. */
function claimsOf(accessToken: string, over: Record<string, unknown> = {}): JwtPayload {
	const real = jwt.decode(accessToken) as JwtPayload;
	return {
		...real,
		iss: "flashmart",
		aud: "flashmart-api",
		iat: nowSec(),
		exp: nowSec() + 300,
		...over
	};
}

const signRs256 = (payload: JwtPayload, privateKey: string) =>
	jwt.sign(payload, privateKey, { algorithm: "RS256" });

function signHs256(payload: JwtPayload, secret: string): string {
	const head = `${b64url({ alg: "HS256", typ: "JWT" })}.${b64url(payload)}`;
	return `${head}.${createHmac("sha256", secret).update(head).digest("base64url")}`;
}

const unsigned = (payload: JwtPayload) =>
	`${b64url({ alg: "none", typ: "JWT" })}.${b64url(payload)}.`;

/** The same token with one character of its payload segment changed. */
function tamper(token: string): string {
	const [h, p, s] = token.split(".");
	const i = Math.floor(p.length / 2);
	const changed = p[i] === "A" ? "B" : "A";
	return `${h}.${p.slice(0, i)}${changed}${p.slice(i + 1)}.${s}`;
}

beforeAll(async () => {
	cluster = await startCluster({
		services: ["users"],
		gateways: 2,
		env: {
			LOGIN_MAX_FAILURES: String(MAX_FAILURES),
			LOGIN_FAILURE_WINDOW: "60",
			// Registration throttling has its own suite; this one registers many accounts from 127.0.0.1.
			REGISTER_MAX_PER_WINDOW: "100000",
			ADMIN_EMAIL,
			ADMIN_PASSWORD,
			TRUSTED_PROXIES: ""
		}
	});
	base = cluster.base;
}, 60000);

afterAll(async () => {
	await cluster?.stop();
}, 30000);

describe("auth.register", () => {
	it("creates a customer and answers 201 with the user and a Bearer token bundle", async () => {
		const email = uniqueEmail();
		const res = await call("POST", "/api/auth/register", {
			body: { email, password: PASSWORD, name: "Ada Lovelace" }
		});
		const b = expectBundle(res, 201);
		expect(b.user).toEqual(
			expect.objectContaining({ email, name: "Ada Lovelace", roles: ["customer"] })
		);
		expect(b.accessToken).not.toBe(b.refreshToken);
		expect(res.headers.get("x-request-id")).toBeTruthy();
	});

	it("issues an RS256 access token with iss, aud and sub that expires within 15 minutes", async () => {
		const b = await register();
		expect(jwt.decode(b.accessToken, { complete: true })?.header.alg).toBe("RS256");
		const claims = jwt.verify(b.accessToken, cluster.keys.publicKey, {
			algorithms: ["RS256"],
			issuer: "flashmart",
			audience: "flashmart-api"
		}) as JwtPayload;
		expect(claims.sub).toBe(b.user.id);
		expect(claims.roles).toEqual(["customer"]);
		expect(claims.exp).toEqual(expect.any(Number));
		expect((claims.exp as number) - nowSec()).toBeLessThanOrEqual(900);
	});

	it("trims and lower-cases the email", async () => {
		const local = uniqueEmail("Mixed").replace("@example.com", "");
		const b = await register({ email: `  ${local}@Example.COM  ` });
		expect(b.user.email).toBe(`${local.toLowerCase()}@example.com`);
		expectBundle(await login(`${local.toLowerCase()}@example.com`, PASSWORD), 200);
	});

	it("trims the name", async () => {
		const b = await register({ name: "  Grace Hopper  " });
		expect(b.user.name).toBe("Grace Hopper");
	});

	it("ignores a roles field in the body and makes the user a customer", async () => {
		const res = await call("POST", "/api/auth/register", {
			body: { email: uniqueEmail(), password: PASSWORD, name: "Mallory", roles: ["admin"] }
		});
		const b = expectBundle(res, 201);
		expect(b.user.roles).toEqual(["customer"]);
		expect((jwt.decode(b.accessToken) as JwtPayload).roles).toEqual(["customer"]);
		expectError(await call("GET", "/api/users", { token: b.accessToken }), 403, "FORBIDDEN");
	});

	it("rejects a duplicate email in another case with 409 EMAIL_TAKEN", async () => {
		const email = uniqueEmail("dup");
		await register({ email });
		const res = await call("POST", "/api/auth/register", {
			body: { email: ` ${email.toUpperCase()} `, password: PASSWORD, name: "Twin" }
		});
		expectError(res, 409, "EMAIL_TAKEN");
	});

	it("accepts the boundary lengths: an 8 and a 128 character password, a 100 character name", async () => {
		await register({ password: "a".repeat(8) });
		await register({ password: "b".repeat(128), name: "n".repeat(100) });
	});

	it.each<[string, () => Record<string, unknown>, string[]]>([
		["a missing email", () => ({ password: PASSWORD, name: "N" }), ["email"]],
		[
			"an email that is not one",
			() => ({ email: "not-an-email", password: PASSWORD, name: "N" }),
			["email"]
		],
		[
			"an operator-shaped email",
			() => ({ email: { $gt: "" }, password: PASSWORD, name: "N" }),
			["email"]
		],
		["a missing password", () => ({ email: uniqueEmail(), name: "N" }), ["password"]],
		[
			"a 7 character password",
			() => ({ email: uniqueEmail(), password: "a".repeat(7), name: "N" }),
			["password"]
		],
		[
			"a 129 character password",
			() => ({ email: uniqueEmail(), password: "a".repeat(129), name: "N" }),
			["password"]
		],
		[
			"a password that is not a string",
			() => ({ email: uniqueEmail(), password: 12345678, name: "N" }),
			["password"]
		],
		["a missing name", () => ({ email: uniqueEmail(), password: PASSWORD }), ["name"]],
		["an empty name", () => ({ email: uniqueEmail(), password: PASSWORD, name: "" }), ["name"]],
		[
			"a name of spaces only",
			() => ({ email: uniqueEmail(), password: PASSWORD, name: "   " }),
			["name"]
		],
		[
			"a 101 character name",
			() => ({ email: uniqueEmail(), password: PASSWORD, name: "n".repeat(101) }),
			["name"]
		],
		[
			"three bad fields at once",
			() => ({ email: "nope", password: "short", name: "" }),
			["email", "password", "name"]
		]
	])("rejects %s with 422 VALIDATION_ERROR naming the field", async (_label, body, fields) => {
		const res = await call("POST", "/api/auth/register", { body: body() });
		expectValidationError(res, fields);
	});

	it("rejects malformed JSON with 400 INVALID_REQUEST_BODY", async () => {
		const res = await fetch(`${base}/api/auth/register`, {
			method: "POST",
			headers: { "Content-Type": "application/json" },
			body: '{"email": "a@b.c", "password": '
		});
		const text = await res.text();
		let body: unknown = text;
		try {
			body = JSON.parse(text);
		} catch {
			// asserted below
		}
		expectError({ status: res.status, headers: res.headers, body }, 400, "INVALID_REQUEST_BODY");
	});
});

describe("auth.login", () => {
	it("answers 200 with the same bundle for the right password", async () => {
		const reg = await register();
		const b = expectBundle(await login(reg.user.email, PASSWORD), 200);
		expect(b.user).toEqual(reg.user);
		expect(b.refreshToken).not.toBe(reg.refreshToken);
		const me = await call("GET", "/api/users/me", { token: b.accessToken });
		expect(me.status).toBe(200);
		expect(me.body.id).toBe(reg.user.id);
	});

	it("answers 401 INVALID_CREDENTIALS with the same message for an unknown email and a wrong password", async () => {
		const reg = await register();
		const from = freshAddress();
		const unknown = await login(uniqueEmail("nobody"), PASSWORD, { from });
		const wrong = await login(reg.user.email, "wrong-password-1", { from });
		expectError(unknown, 401, "INVALID_CREDENTIALS");
		expectError(wrong, 401, "INVALID_CREDENTIALS");
		expect(wrong.body.message).toBe(unknown.body.message);
		expect(wrong.body.name).toBe(unknown.body.name);
	});

	it.each<[string, (email: string) => Record<string, unknown>]>([
		["an operator as the password", email => ({ email, password: { $ne: "" } })],
		["an operator as the email", () => ({ email: { $gt: "" }, password: PASSWORD })],
		["operators as both", () => ({ email: { $ne: null }, password: { $ne: null } })]
	])("rejects %s with 422 VALIDATION_ERROR and never logs in", async (_label, body) => {
		const reg = await register();
		const res = await call("POST", "/api/auth/login", {
			body: body(reg.user.email),
			from: freshAddress()
		});
		expect(res.body?.accessToken).toBeUndefined();
		expectError(res, 422, "VALIDATION_ERROR");
	});

	it("rejects a missing password with 422 VALIDATION_ERROR naming password", async () => {
		const res = await call("POST", "/api/auth/login", {
			body: { email: uniqueEmail() },
			from: freshAddress()
		});
		expectValidationError(res, ["password"]);
	});

	it("logs in through gateway 1 a user who registered through gateway 0", async () => {
		const reg = await register({}, cluster.gateways[0]);
		const b = expectBundle(await login(reg.user.email, PASSWORD, {}, cluster.gateways[1]), 200);
		expect(b.user.id).toBe(reg.user.id);
	});
});

describe("auth.refresh", () => {
	it("answers 200 with a new bundle and a different refresh token", async () => {
		const reg = await register();
		const b = expectBundle(await refresh(reg.refreshToken), 200);
		expect(b.refreshToken).not.toBe(reg.refreshToken);
		expect(b.user.id).toBe(reg.user.id);
		const me = await call("GET", "/api/users/me", { token: b.accessToken });
		expect(me.status).toBe(200);
		expect(me.body.id).toBe(reg.user.id);
	});

	it("rejects a used refresh token with 401 INVALID_TOKEN and revokes the newest token of its family", async () => {
		const reg = await register();
		const r1 = expectBundle(await refresh(reg.refreshToken), 200).refreshToken;
		const r2 = expectBundle(await refresh(r1), 200).refreshToken;
		expectError(await refresh(reg.refreshToken), 401, "INVALID_TOKEN");
		expectError(await refresh(r2), 401, "INVALID_TOKEN");
	});

	it("lets each refresh token work once: the second use of the same token is 401 INVALID_TOKEN", async () => {
		const reg = await register();
		expectBundle(await refresh(reg.refreshToken), 200);
		expectError(await refresh(reg.refreshToken), 401, "INVALID_TOKEN");
	});

	it("rotates on gateway 1 a refresh token issued on gateway 0", async () => {
		const reg = await register({}, cluster.gateways[0]);
		const b = expectBundle(await refresh(reg.refreshToken, cluster.gateways[1]), 200);
		expect(b.user.id).toBe(reg.user.id);
		expectError(await refresh(reg.refreshToken, cluster.gateways[0]), 401, "INVALID_TOKEN");
	});

	it("rejects an unknown refresh token with 401 INVALID_TOKEN", async () => {
		const reg = await register();
		const t = reg.refreshToken;
		const i = Math.floor(t.length / 2);
		const lookalike = `${t.slice(0, i)}${t[i] === "A" ? "B" : "A"}${t.slice(i + 1)}`;
		expectError(await refresh(lookalike), 401, "INVALID_TOKEN");
		expectError(await refresh(randomUUID()), 401, "INVALID_TOKEN");
	});

	it("never refreshes with an access token: 401 INVALID_TOKEN, or 422 naming refreshToken", async () => {
		const reg = await register();
		const res = await refresh(reg.accessToken);
		// A JWT is not the shape of a refresh token, so refusing it at validation is as good as not finding it.
		if (res.status === 422) expectValidationError(res, ["refreshToken"]);
		else expectError(res, 401, "INVALID_TOKEN");
	});

	it("rejects a missing refreshToken with 422 VALIDATION_ERROR", async () => {
		const res = await call("POST", "/api/auth/refresh", { body: {} });
		expectValidationError(res, ["refreshToken"]);
	});
});

describe("auth.logout", () => {
	it("answers 204 with an empty body and the refresh token stops working", async () => {
		const reg = await register();
		const res = await call("POST", "/api/auth/logout", {
			body: { refreshToken: reg.refreshToken },
			token: reg.accessToken
		});
		expect(res.status).toBe(204);
		expect(res.body).toBeNull();
		expectError(await refresh(reg.refreshToken), 401, "INVALID_TOKEN");
	});

	it("revokes on gateway 0 a refresh token logged out on gateway 1", async () => {
		const reg = await register({}, cluster.gateways[0]);
		const res = await call(
			"POST",
			"/api/auth/logout",
			{ body: { refreshToken: reg.refreshToken }, token: reg.accessToken },
			cluster.gateways[1]
		);
		expect(res.status).toBe(204);
		expectError(await refresh(reg.refreshToken, cluster.gateways[0]), 401, "INVALID_TOKEN");
	});
});

describe("users.me", () => {
	let user: Bundle;

	beforeAll(async () => {
		user = await register({ name: "Me Myself" });
	});

	it("answers the caller's profile without any hash or token field", async () => {
		const res = await call("GET", "/api/users/me", { token: user.accessToken });
		expect(res.status).toBe(200);
		expectPublicUser(res.body);
		expect(res.body).toEqual(
			expect.objectContaining({
				id: user.user.id,
				email: user.user.email,
				name: "Me Myself",
				roles: ["customer"],
				createdAt: user.user.createdAt
			})
		);
		expect(JSON.stringify(res.body)).not.toContain(user.refreshToken);
		expect(JSON.stringify(res.body)).not.toContain(PASSWORD);
	});

	it("answers 401 NO_TOKEN without a token", async () => {
		expectError(await call("GET", "/api/users/me"), 401, "NO_TOKEN");
	});

	it("accepts a correctly signed RS256 token with iss flashmart and aud flashmart-api", async () => {
		const token = signRs256(claimsOf(user.accessToken), cluster.keys.privateKey);
		const res = await call("GET", "/api/users/me", { token });
		expect(res.status).toBe(200);
		expect(res.body.id).toBe(user.user.id);
	});

	it("accepts on gateway 1 a token issued through gateway 0", async () => {
		const b = await register({}, cluster.gateways[0]);
		const res = await call("GET", "/api/users/me", { token: b.accessToken }, cluster.gateways[1]);
		expect(res.status).toBe(200);
		expect(res.body.id).toBe(b.user.id);
	});

	it.each<[string, () => string]>([
		["an unsigned alg none token", () => unsigned(claimsOf(user.accessToken))],
		[
			"a token with one payload character changed",
			() => tamper(signRs256(claimsOf(user.accessToken), cluster.keys.privateKey))
		],
		[
			"a token with roles raised to admin under the original signature",
			() => {
				const [h, , s] = signRs256(claimsOf(user.accessToken), cluster.keys.privateKey).split(".");
				return `${h}.${b64url(claimsOf(user.accessToken, { roles: ["customer", "admin"] }))}.${s}`;
			}
		],
		[
			"an expired token",
			() =>
				signRs256(
					claimsOf(user.accessToken, { iat: nowSec() - 4500, exp: nowSec() - 3600 }),
					cluster.keys.privateKey
				)
		],
		[
			"a token with the wrong iss",
			() => signRs256(claimsOf(user.accessToken, { iss: "evil-issuer" }), cluster.keys.privateKey)
		],
		[
			"a token with the wrong aud",
			() => signRs256(claimsOf(user.accessToken, { aud: "another-api" }), cluster.keys.privateKey)
		],
		[
			"an HS256 token keyed with the public key PEM",
			() => signHs256(claimsOf(user.accessToken), cluster.keys.publicKey)
		],
		[
			"an RS256 token signed by another key pair",
			() => signRs256(claimsOf(user.accessToken), makeKeyPair().privateKey)
		],
		["a string that is not a JWT", () => "not-a-jwt"]
	])("rejects %s with 401 INVALID_TOKEN", async (_label, forge) => {
		const res = await call("GET", "/api/users/me", { token: forge() });
		expectError(res, 401, "INVALID_TOKEN");
	});
});

describe("users.updateMe", () => {
	it("changes the name", async () => {
		const b = await register({ name: "Old Name" });
		const res = await call("PATCH", "/api/users/me", {
			token: b.accessToken,
			body: { name: "New Name" }
		});
		expect(res.status).toBe(200);
		expectPublicUser(res.body);
		expect(res.body).toEqual(expect.objectContaining({ id: b.user.id, name: "New Name" }));
		const me = await call("GET", "/api/users/me", { token: b.accessToken });
		expect(me.body.name).toBe("New Name");
	});

	it("ignores roles in the body: the user stays a customer", async () => {
		const b = await register();
		const res = await call("PATCH", "/api/users/me", {
			token: b.accessToken,
			body: { name: "Still Customer", roles: ["customer", "admin"] }
		});
		expect(res.status).toBe(200);
		expect(res.body.roles).toEqual(["customer"]);
		const again = expectBundle(await login(b.user.email, PASSWORD), 200);
		expect(again.user.roles).toEqual(["customer"]);
		expectError(await call("GET", "/api/users", { token: again.accessToken }), 403, "FORBIDDEN");
	});

	it("rejects a password change without currentPassword with 422 naming currentPassword", async () => {
		const b = await register();
		const res = await call("PATCH", "/api/users/me", {
			token: b.accessToken,
			body: { password: "a-brand-new-password" }
		});
		expectValidationError(res, ["currentPassword"]);
		expectBundle(await login(b.user.email, PASSWORD), 200);
	});

	it("rejects a password change with a wrong currentPassword with 422 naming currentPassword", async () => {
		const b = await register();
		const res = await call("PATCH", "/api/users/me", {
			token: b.accessToken,
			body: { password: "a-brand-new-password", currentPassword: "not-the-password" }
		});
		expectValidationError(res, ["currentPassword"]);
		expectBundle(await login(b.user.email, PASSWORD), 200);
	});

	it("rejects a 7 character new password with 422 naming password", async () => {
		const b = await register();
		const res = await call("PATCH", "/api/users/me", {
			token: b.accessToken,
			body: { password: "short77", currentPassword: PASSWORD }
		});
		expectValidationError(res, ["password"]);
	});

	it("changes the password: the old one gets 401 INVALID_CREDENTIALS and the new one logs in", async () => {
		const b = await register();
		const res = await call("PATCH", "/api/users/me", {
			token: b.accessToken,
			body: { password: "a-brand-new-password", currentPassword: PASSWORD }
		});
		expect(res.status).toBe(200);
		expectPublicUser(res.body);
		expectError(
			await login(b.user.email, PASSWORD, { from: freshAddress() }),
			401,
			"INVALID_CREDENTIALS"
		);
		expectBundle(await login(b.user.email, "a-brand-new-password"), 200);
	});

	it("answers 401 NO_TOKEN without a token", async () => {
		const res = await call("PATCH", "/api/users/me", { body: { name: "Nobody" } });
		expectError(res, 401, "NO_TOKEN");
	});
});

describe("users.list", () => {
	let admin: string;

	beforeAll(async () => {
		admin = await adminToken();
		for (let i = 0; i < 3; i++) await register();
	});

	it("logs the configured admin in with the admin role", async () => {
		const b = expectBundle(await login(ADMIN_EMAIL, ADMIN_PASSWORD), 200);
		expect(b.user.email).toBe(ADMIN_EMAIL);
		expect(b.user.roles).toContain("admin");
	});

	it("answers a page of at most pageSize users without hashes", async () => {
		const res = await call("GET", "/api/users?page=1&pageSize=2", { token: admin });
		expect(res.status).toBe(200);
		expect(res.body).toEqual(
			expect.objectContaining({
				rows: expect.any(Array),
				total: expect.any(Number),
				page: 1,
				pageSize: 2
			})
		);
		expect(res.body.total).toBeGreaterThanOrEqual(4);
		expect(res.body.rows).toHaveLength(2);
		expect(res.body.totalPages).toBe(Math.ceil(res.body.total / 2));
		for (const row of res.body.rows) expectPublicUser(row);
	});

	it("rejects pageSize 101 with 422 VALIDATION_ERROR", async () => {
		const res = await call("GET", "/api/users?page=1&pageSize=101", { token: admin });
		expectError(res, 422, "VALIDATION_ERROR");
	});

	it("answers 403 FORBIDDEN to a customer", async () => {
		const b = await register();
		expectError(await call("GET", "/api/users", { token: b.accessToken }), 403, "FORBIDDEN");
	});

	it("answers 401 NO_TOKEN without a token", async () => {
		expectError(await call("GET", "/api/users"), 401, "NO_TOKEN");
	});
});

describe("users.update", () => {
	let admin: string;

	beforeAll(async () => {
		admin = await adminToken();
	});

	it("grants admin: the user's next login token reaches the admin list", async () => {
		const b = await register();
		expectError(await call("GET", "/api/users", { token: b.accessToken }), 403, "FORBIDDEN");
		const res = await call("PATCH", `/api/users/${b.user.id}`, {
			token: admin,
			body: { roles: ["customer", "admin"] }
		});
		expect(res.status).toBe(200);
		expectPublicUser(res.body);
		expect(res.body.roles).toEqual(expect.arrayContaining(["customer", "admin"]));
		const again = expectBundle(await login(b.user.email, PASSWORD), 200);
		expect(again.user.roles).toContain("admin");
		const list = await call("GET", "/api/users?pageSize=1", { token: again.accessToken });
		expect(list.status).toBe(200);
		expect(list.body.rows).toHaveLength(1);
	});

	it("disables a user: login answers 401 INVALID_CREDENTIALS and the refresh token 401 at once", async () => {
		const b = await register();
		const res = await call("PATCH", `/api/users/${b.user.id}`, {
			token: admin,
			body: { disabled: true }
		});
		expect(res.status).toBe(200);
		expectError(
			await login(b.user.email, PASSWORD, { from: freshAddress() }),
			401,
			"INVALID_CREDENTIALS"
		);
		expectError(await refresh(b.refreshToken), 401, "INVALID_TOKEN");
	});

	it("refuses a role that does not exist with 422 naming it, and changes nothing", async () => {
		const b = await register();
		const res = await call("PATCH", `/api/users/${b.user.id}`, {
			token: admin,
			body: { roles: ["customer", "superuser"] }
		});
		expectError(res, 422, "VALIDATION_ERROR");
		expect(res.body.data).toEqual([
			expect.objectContaining({
				field: "roles[1]",
				message: "'superuser' is not a valid role; allowed values: customer, admin"
			})
		]);
		expect(expectBundle(await login(b.user.email, PASSWORD), 200).user.roles).toEqual(["customer"]);
	});

	it("answers 404 NOT_FOUND for an unknown id", async () => {
		const res = await call("PATCH", `/api/users/${randomUUID()}`, {
			token: admin,
			body: { disabled: true }
		});
		expectError(res, 404, "NOT_FOUND");
	});

	it("answers 403 FORBIDDEN to a customer, who stays a customer", async () => {
		const b = await register();
		const res = await call("PATCH", `/api/users/${b.user.id}`, {
			token: b.accessToken,
			body: { roles: ["customer", "admin"] }
		});
		expectError(res, 403, "FORBIDDEN");
		const me = await call("GET", "/api/users/me", { token: b.accessToken });
		expect(me.body.roles).toEqual(["customer"]);
	});

	it("answers 401 NO_TOKEN without a token", async () => {
		const b = await register();
		const res = await call("PATCH", `/api/users/${b.user.id}`, { body: { disabled: true } });
		expectError(res, 401, "NO_TOKEN");
	});
});

// Last: these lock emails and client addresses out for LOGIN_FAILURE_WINDOW.
describe("auth.login throttling", () => {
	function expectThrottled(res: Res): void {
		expectError(res, 429, "RATE_LIMIT_EXCEEDED");
		const retryAfter = res.headers.get("retry-after");
		expect(retryAfter).toMatch(/^\d+$/);
		expect(Number(retryAfter)).toBeGreaterThan(0);
		expect(res.body?.accessToken).toBeUndefined();
	}

	it("answers 429 with Retry-After to the 6th login for an email after 5 failures, even with the right password, through either gateway, from any address or X-Forwarded-For", async () => {
		const victim = await register();
		const bystander = await register();
		// Each failure from its own address and alternating gateways: only the per-email count reaches 5.
		for (let i = 0; i < MAX_FAILURES; i++) {
			const res = await login(
				victim.user.email,
				`wrong-password-${i}`,
				{ from: freshAddress(), headers: { "X-Forwarded-For": `198.51.100.${i + 1}` } },
				cluster.gateways[i % 2]
			);
			expectError(res, 401, "INVALID_CREDENTIALS");
		}
		const from = freshAddress();
		expectThrottled(
			await login(
				victim.user.email,
				PASSWORD,
				{ from, headers: { "X-Forwarded-For": "203.0.113.77" } },
				cluster.gateways[1]
			)
		);
		expectThrottled(await login(victim.user.email, PASSWORD, { from }, cluster.gateways[0]));
		expectThrottled(
			await login(` ${victim.user.email.toUpperCase()} `, PASSWORD, { from: freshAddress() })
		);
		// The same address may still log another account in: the lock is on the email.
		expectBundle(await login(bystander.user.email, PASSWORD, { from }, cluster.gateways[0]), 200);
	});

	it("does not lock a client address out for failures of other accounts (issue 16: spraying is hardening-accounts.spec.ts), whatever X-Forwarded-For says", async () => {
		const known = await register();
		const target = await register();
		const from = freshAddress();
		for (let i = 0; i < MAX_FAILURES; i++) {
			const email = i % 2 === 0 ? uniqueEmail("ghost") : known.user.email;
			const res = await login(email, `wrong-password-${i}`, {
				from,
				headers: { "X-Forwarded-For": `192.0.2.${i + 1}` }
			});
			expectError(res, 401, "INVALID_CREDENTIALS");
		}
		expectBundle(
			await login(target.user.email, PASSWORD, {
				from,
				headers: { "X-Forwarded-For": "192.0.2.200" }
			}),
			200
		);
		expectError(
			await login(uniqueEmail("other"), "whatever-password", { from }),
			401,
			"INVALID_CREDENTIALS"
		);
	});
});
