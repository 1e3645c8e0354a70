/**
 * The gateway's conventions and operational endpoints, over real HTTP, against the embedded default that
 * `npm start` runs (node dist/server.js without TRANSPORTER).
 */
import { type AddressInfo, connect, createServer } from "node:net";
import {
	type Proc,
	freePort,
	startNode,
	stopAll,
	tempDir,
	waitForStatus
} from "../../scripts/lib/cluster";
import { startEmbedded } from "../helpers/embedded";

type Json = Record<string, unknown>;

describe("the embedded gateway", () => {
	let node: Proc;
	let base: string;

	beforeAll(async () => {
		({ node, base } = await startEmbedded("embedded", { CORS_ORIGINS: "https://shop.example" }));
	});

	afterAll(() => stopAll());

	describe("operations", () => {
		it("GET /health names the version, node and uptime", async () => {
			const res = await fetch(`${base}/health`);
			expect(res.status).toBe(200);
			const body = (await res.json()) as Json;
			expect(body).toMatchObject({
				status: "ok",
				version: expect.any(String),
				nodeID: expect.any(String)
			});
			expect(body.uptime).toEqual(expect.any(Number));
		});

		it("GET /live and GET /ready answer 200 when everything is up", async () => {
			expect((await fetch(`${base}/live`)).status).toBe(200);
			const ready = await fetch(`${base}/ready`);
			expect(ready.status).toBe(200);
			expect(await ready.json()).toEqual({ status: "ok" });
		});

		it("GET /api/health gives the backend view", async () => {
			const res = await fetch(`${base}/api/health`);
			expect(res.status).toBe(200);
			const body = (await res.json()) as Json;
			expect(body.status).toBe("ok");
			expect(typeof body.services).toBe("object");
		});

		it("GET /metrics is Prometheus text with Moleculer's metrics", async () => {
			const res = await fetch(`${base}/metrics`);
			expect(res.status).toBe(200);
			expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
			const text = await res.text();
			expect(text).toMatch(/^# TYPE moleculer_request_total counter$/m);
			expect(text).toMatch(/^moleculer_broker_local_services_total\{/m);
		});

		it("GET /api/openapi.json is an OpenAPI 3.1 document of the whole API", async () => {
			const res = await fetch(`${base}/api/openapi.json`);
			expect(res.status).toBe(200);
			const doc = (await res.json()) as {
				openapi: string;
				paths: Record<string, Json>;
				components: Json;
			};
			expect(doc.openapi).toBe("3.1.0");
			for (const p of [
				"/health",
				"/live",
				"/ready",
				"/metrics",
				"/api/health",
				"/api/openapi.json",
				"/api/docs"
			]) {
				expect(doc.paths[p]?.get).toBeDefined();
			}
			expect(doc.components).toHaveProperty("schemas.Error");
		});

		it("documents every operation of API.md in a valid OpenAPI 3.1 document", async () => {
			const doc = (await (await fetch(`${base}/api/openapi.json`)).json()) as {
				paths: Record<string, Record<string, unknown>>;
			};
			const contract = [
				"get /health",
				"get /live",
				"get /ready",
				"get /metrics",
				"get /api/health",
				"get /api/openapi.json",
				"get /api/docs",
				"post /api/auth/register",
				"post /api/auth/login",
				"post /api/auth/refresh",
				"post /api/auth/logout",
				"get /api/users/me",
				"patch /api/users/me",
				"get /api/users",
				"patch /api/users/{id}",
				"get /api/products",
				"get /api/products/{id}",
				"get /api/categories",
				"post /api/products",
				"patch /api/products/{id}",
				"delete /api/products/{id}",
				"post /api/products/{id}/images",
				"delete /api/products/{id}/images/{imageId}",
				"get /api/inventory/{productId}",
				"put /api/inventory/{productId}",
				"get /api/cart",
				"post /api/cart/items",
				"patch /api/cart/items/{productId}",
				"delete /api/cart/items/{productId}",
				"delete /api/cart",
				"post /api/orders",
				"get /api/orders",
				"get /api/orders/{id}",
				"post /api/orders/{id}/cancel",
				"post /api/orders/{id}/ship",
				"post /api/orders/{id}/deliver"
			];
			const documented = Object.entries(doc.paths).flatMap(([p, ops]) =>
				Object.keys(ops).map(m => `${m} ${p}`)
			);
			expect(contract.filter(op => !documented.includes(op))).toEqual([]);
			const { spawnSync } = await import("node:child_process");
			const check = spawnSync(process.execPath, [`${__dirname}/../helpers/validate-openapi.mjs`], {
				input: JSON.stringify(doc),
				encoding: "utf8"
			});
			expect(JSON.parse(check.stdout || "{}")).toEqual({ valid: true, errors: [] });
		});

		it("GET /api/docs is a browsable page whose assets load from this gateway", async () => {
			const page = await fetch(`${base}/api/docs`);
			expect(page.status).toBe(200);
			expect(page.headers.get("content-type")).toMatch(/^text\/html/);
			const html = await page.text();
			for (const src of html.matchAll(/(?:src|href)="(\/api\/docs\/[^"]+)"/g)) {
				const asset = await fetch(`${base}${src[1]}`);
				expect(asset.status).toBe(200);
				await asset.arrayBuffer();
			}
			expect((await fetch(`${base}/api/docs/..%2Fpackage.json`)).status).toBe(404);
		});
	});

	describe("conventions", () => {
		it("echoes a sane X-Request-Id and replaces an insane one", async () => {
			const sane = await fetch(`${base}/health`, {
				headers: { "X-Request-Id": "client-id_1.2:3" }
			});
			expect(sane.headers.get("x-request-id")).toBe("client-id_1.2:3");
			const insane = await fetch(`${base}/health`, {
				headers: { "X-Request-Id": "x".repeat(300) }
			});
			expect(insane.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
			const injected = await fetch(`${base}/health`, {
				headers: { "X-Request-Id": "a b<script>" }
			});
			expect(injected.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
			const none = await fetch(`${base}/health`);
			expect(none.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
		});

		it("answers an unknown route with 404 in the contract's error shape", async () => {
			const res = await fetch(`${base}/api/nothing-here`, {
				headers: { "X-Request-Id": "req-404" }
			});
			expect(res.status).toBe(404);
			expect(res.headers.get("content-type")).toMatch(/^application\/json/);
			const body = (await res.json()) as Json;
			expect(body).toEqual({
				name: "NotFoundError",
				message: "Not found",
				code: 404,
				type: "NOT_FOUND",
				requestId: "req-404"
			});
		});

		// Paths whose answer is the same twice (/health's uptime is not), so the lengths can be compared.
		it.each([
			"/live",
			"/api/products?pageSize=1",
			"/api/users/me",
			"/api/nothing-here",
			"/api/auth/login"
		])("answers HEAD %s as GET would, with the same status and headers and no body", async path => {
			const get = await fetch(`${base}${path}`);
			const getBody = await get.arrayBuffer();
			const head = await fetch(`${base}${path}`, { method: "HEAD" });
			expect(head.status).toBe(get.status);
			expect(head.headers.get("content-type")).toBe(get.headers.get("content-type"));
			expect(head.headers.get("content-length")).toBe(String(getBody.byteLength));
			expect(head.headers.get("x-request-id")).toBeTruthy();
			// fetch never reads a HEAD answer's body: on the wire, nothing may follow the headers.
			const raw = await rawExchange(
				new URL(base).port,
				`HEAD ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`
			);
			expect(raw.slice(raw.indexOf("\r\n\r\n") + 4)).toBe("");
		});

		it.each([
			"/api/$node.list",
			"/api/~node/list",
			"/api/$node/services",
			"/$node/list",
			"/api/api.rest",
			"/api/api/rest",
			"/api/api.listAliases",
			"/api/health.anything"
		])("never reaches an internal action: %s is 404", async path => {
			const res = await fetch(`${base}${path}`);
			expect(res.status).toBe(404);
			expect(((await res.json()) as Json).type).toBe("NOT_FOUND");
		});

		it("answers malformed JSON with 400 INVALID_REQUEST_BODY", async () => {
			const res = await fetch(`${base}/api/health`, {
				method: "POST",
				headers: { "Content-Type": "application/json" },
				body: '{"email": "a@b.c",'
			});
			expect(res.status).toBe(400);
			const body = (await res.json()) as Json;
			expect(body).toMatchObject({
				code: 400,
				type: "INVALID_REQUEST_BODY",
				requestId: expect.any(String)
			});
			expect(JSON.stringify(body)).not.toMatch(/stack|at JSON\.parse|node_modules/);
		});

		it("answers a body that is not UTF-8 with 400 INVALID_REQUEST_BODY, and changes nothing", async () => {
			const email = `utf8-${Date.now()}@example.com`;
			const register = (body: Buffer, type = "application/json") =>
				fetch(`${base}/api/auth/register`, {
					method: "POST",
					headers: { "Content-Type": type },
					body
				});
			const json = (name: string) =>
				`{"email":"${email}","password":"password-123","name":"${name}"}`;
			// 0xff never occurs in UTF-8: body-parser alone would have stored it as U+FFFD.
			const broken = Buffer.concat([
				Buffer.from(json("Zo").slice(0, -2)),
				Buffer.from([0xff, 0xfe]),
				Buffer.from('"}')
			]);
			const refused = await register(broken);
			expect(refused.status).toBe(400);
			expect(await refused.json()).toMatchObject({
				code: 400,
				type: "INVALID_REQUEST_BODY",
				message: "The request body is not valid UTF-8"
			});
			// Another charset than UTF-8 (RFC 8259 8.1): 415, however well formed.
			const utf16 = await register(
				Buffer.from(json("Zoe"), "utf16le"),
				"application/json; charset=utf-16le"
			);
			expect(utf16.status).toBe(415);
			expect(((await utf16.json()) as Json).type).toBe("UNSUPPORTED_MEDIA_TYPE");
			// Nothing was registered: the same email in well-formed UTF-8, non-ASCII name included, is new.
			const ok = await register(Buffer.from(json("Zoë 日本")), "application/json; charset=UTF-8");
			expect(ok.status).toBe(201);
			expect(((await ok.json()) as { user: { name: string } }).user.name).toBe("Zoë 日本");
		});

		it("answers a body over 1 MiB with 413, JSON or not", async () => {
			const big = JSON.stringify({ blob: "x".repeat(1024 * 1024) });
			for (const type of ["application/json", "text/plain"]) {
				const res = await fetch(`${base}/api/health`, {
					method: "POST",
					headers: { "Content-Type": type },
					body: big
				});
				expect(res.status).toBe(413);
				expect(((await res.json()) as Json).type).toBe("PAYLOAD_TOO_LARGE");
			}
		});

		it("accepts a body just under 1 MiB", async () => {
			const body = JSON.stringify({ blob: "x".repeat(1024 * 1024 - 100) });
			const res = await fetch(`${base}/api/health`, {
				method: "POST",
				headers: { "Content-Type": "application/json" },
				body
			});
			// Parsed fine; there is no POST /api/health, so it is a 404, not a 413.
			expect(res.status).toBe(404);
		});

		it("never lets __proto__ or constructor keys grant anything (mass assignment)", async () => {
			const body =
				'{"email":"proto-' +
				Date.now() +
				'@example.com","password":"password-123","name":"P",' +
				'"__proto__":{"roles":["admin"],"disabled":false},"constructor":{"prototype":{"roles":["admin"]}},' +
				'"roles":["admin"]}';
			const res = await fetch(`${base}/api/auth/register`, {
				method: "POST",
				headers: { "Content-Type": "application/json" },
				body
			});
			expect(res.status).toBe(201);
			const bundle = (await res.json()) as { user: { roles: string[] }; accessToken: string };
			expect(bundle.user.roles).toEqual(["customer"]);
			const admin = await fetch(`${base}/api/users`, {
				headers: { Authorization: `Bearer ${bundle.accessToken}` }
			});
			expect(admin.status).toBe(403);
			expect(({} as Record<string, unknown>).roles).toBeUndefined();
		});

		it("sets security headers on every answer, errors included", async () => {
			for (const path of ["/health", "/api/nothing"]) {
				const res = await fetch(`${base}${path}`);
				expect(res.headers.get("x-content-type-options")).toBe("nosniff");
				expect(res.headers.get("x-frame-options")).toBe("DENY");
				expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
				expect(res.headers.get("referrer-policy")).toBe("no-referrer");
			}
		});

		it("allows the configured CORS origins only", async () => {
			const preflight = (origin: string) =>
				fetch(`${base}/api/health`, {
					method: "OPTIONS",
					headers: { Origin: origin, "Access-Control-Request-Method": "GET" }
				});
			const allowed = await preflight("https://shop.example");
			expect(allowed.status).toBeLessThan(300);
			expect(allowed.headers.get("access-control-allow-origin")).toBe("https://shop.example");
			const other = await preflight("https://evil.example");
			expect(other.headers.get("access-control-allow-origin")).toBeNull();
		});
	});

	it("stops with exit code 0 on Ctrl-C (SIGINT)", async () => {
		node.child.kill("SIGINT");
		expect(await node.exited).toBe(0);
	});
});

describe("npm start", () => {
	it("serves /health, then /ready, and stops with exit code 0 on Ctrl-C", async () => {
		const { spawn } = await import("node:child_process");
		const port = await freePort();
		// Its own process group, so SIGINT reaches npm and the node under it, as Ctrl-C in a terminal does.
		const child = spawn("npm", ["start", "--silent"], {
			cwd: `${__dirname}/../..`,
			detached: true,
			stdio: "ignore",
			env: {
				...process.env,
				TRANSPORTER: "",
				SERVICES: "",
				GATEWAY_PORT: String(port),
				METRICS_PORT: "0",
				DATA_DIR: tempDir("npm-start")
			}
		});
		const exited = new Promise<number | null>(resolve => child.on("exit", code => resolve(code)));
		try {
			// Generous bounds: this asserts the behaviour; how fast a cold start is, is the bench's measure.
			await waitForStatus(`http://127.0.0.1:${port}/health`, { timeoutMs: 15000 });
			await waitForStatus(`http://127.0.0.1:${port}/ready`, { timeoutMs: 15000 });
		} finally {
			process.kill(-child.pid!, "SIGINT");
		}
		expect(await exited).toBe(0);
	});

	it.each(["METRICS_PORT", "GATEWAY_PORT"])(
		"stops with exit code 1 and one fatal line naming the port when %s is taken",
		async variable => {
			const taken = createServer();
			await new Promise<void>(resolve => taken.listen(0, "0.0.0.0", resolve));
			const port = String((taken.address() as AddressInfo).port);
			try {
				const node = startNode({
					name: `port-taken-${variable}`,
					env: {
						NODE_ENV: "test",
						TRANSPORTER: undefined,
						SERVICES: undefined,
						GATEWAY_PORT: String(await freePort()),
						METRICS_PORT: "0",
						DATA_DIR: tempDir("port-taken"),
						[variable]: port
					}
				});
				expect(await node.exited).toBe(1);
				const fatal = node
					.output()
					.split("\n")
					.filter(l => l.includes("FATAL"));
				expect(fatal).toEqual([expect.stringContaining(`${port} is already in use`)]);
				if (variable === "METRICS_PORT") expect(fatal[0]).toContain("(METRICS_PORT)");
				expect(node.output()).not.toContain("Unhandled 'error' event");
			} finally {
				taken.close();
			}
		}
	);
});

/** Writes `request` to the gateway on a fresh connection and gives back everything it answers until it closes. */
function rawExchange(port: string, request: string): Promise<string> {
	return new Promise((resolve, reject) => {
		const socket = connect(Number(port), "127.0.0.1", () => socket.write(request));
		let answer = "";
		socket.setEncoding("utf8");
		socket.on("data", chunk => (answer += chunk));
		socket.on("end", () => resolve(answer));
		socket.on("error", reject);
	});
}
