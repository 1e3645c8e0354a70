/**
 * Log shipping over real processes: a gateway, a users node and a backend fixture on a real nats-server, every node
 * shipping to the loopback Elasticsearch stand-in. Lines carry the request id of the HTTP request that caused them,
 * secrets never leave a node, a slow Elasticsearch neither slows nor fails requests, and SIGTERM flushes.
 */
import path from "node:path";
import {
	type NatsServer,
	type Proc,
	freePort,
	makeKeyPair,
	sleep,
	startNats,
	startNode,
	stopAll,
	tempDir,
	uniqueNamespace,
	waitForStatus
} from "../../scripts/lib/cluster";
import {
	ES_USERS,
	type EsStandIn,
	SHIPPER_ENV,
	type StoredDoc,
	startEsStandIn
} from "../helpers/es-stand-in";

const FIXTURES = path.resolve(__dirname, "..", "..", "dist", "test", "fixtures");
const ADMIN_EMAIL = "admin@logs.example";
const ADMIN_PASSWORD = "Adm1n-Pa55word-Logs";
const WRONG_PASSWORD = "Wr0ng-Pa55word-Logs";
const GATEWAY_MAX_BUFFER = 200;

async function until(cond: () => boolean, what: string, timeoutMs = 15000): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!cond()) {
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await sleep(50);
	}
}

/** A sample's value in Prometheus text (the first series of that name), or undefined. */
function metric(text: string, name: string): number | undefined {
	const line = text.split("\n").find(l => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
	return line ? Number(line.split(" ").pop()) : undefined;
}

describe("log shipping to Elasticsearch", () => {
	let nats: NatsServer;
	let es: EsStandIn;
	let base: string;
	let gateway: Proc;
	let backend: Proc;
	const keys = makeKeyPair();
	const backendId = `slow-${Date.now()}`;

	const docsWith = (requestId: string): StoredDoc[] =>
		es.docs.filter(d => d.doc.requestId === requestId);

	beforeAll(async () => {
		nats = await startNats();
		es = await startEsStandIn();
		const namespace = uniqueNamespace("logs");
		const port = await freePort();
		base = `http://127.0.0.1:${port}`;
		const common = {
			NODE_ENV: "test",
			TRANSPORTER: nats.url,
			NAMESPACE: namespace,
			LOG_FORMAT: "json",
			// Debug: the most lines, and the most chances for a secret to slip into one.
			LOG_LEVEL: "debug",
			METRICS_PORT: "0",
			REQUEST_TIMEOUT: "2000",
			HEARTBEAT_INTERVAL: "1",
			HEARTBEAT_TIMEOUT: "3",
			JWT_PRIVATE_KEY: keys.privateKey,
			JWT_PUBLIC_KEY: keys.publicKey,
			ELASTICSEARCH_URL: es.url,
			// The compose stack's shipping user: may create documents, not manage templates.
			...SHIPPER_ENV,
			LOG_SHIP_FLUSH_INTERVAL: "100",
			LOG_SHIP_BATCH_SIZE: "50"
		};
		startNode({
			name: "users",
			env: {
				...common,
				NODE_ID: `users-${Date.now()}`,
				SERVICES: "users",
				ADMIN_EMAIL,
				ADMIN_PASSWORD,
				DATA_DIR: tempDir("users")
			}
		});
		// Ships nothing before it stops (a long interval, a batch larger than its whole life): the SIGTERM test.
		backend = startNode({
			name: "slow",
			env: {
				...common,
				NODE_ID: backendId,
				SERVICES: path.join(FIXTURES, "slow.service.js"),
				LOG_SHIP_FLUSH_INTERVAL: "600000",
				LOG_SHIP_BATCH_SIZE: "10000",
				DATA_DIR: tempDir("slow")
			}
		});
		gateway = startNode({
			name: "gateway",
			env: {
				...common,
				NODE_ID: `gateway-${Date.now()}`,
				SERVICES: `api,${path.join(FIXTURES, "test-routes.service.js")}`,
				REQUIRED_SERVICES: "users,slow",
				GATEWAY_HOST: "127.0.0.1",
				GATEWAY_PORT: String(port),
				LOG_SHIP_MAX_BUFFER: String(GATEWAY_MAX_BUFFER),
				ELASTICSEARCH_TIMEOUT: "20000",
				DATA_DIR: tempDir("gateway")
			}
		});
		await waitForStatus(`${base}/ready`, { proc: gateway, timeoutMs: 30000 });
	});

	afterAll(async () => {
		await stopAll();
		await es.close();
	});

	it("ships lines with the fields of the contract though its user is refused the index template", async () => {
		await until(() => es.docs.length > 0, "the first shipped lines");
		// Each node asked once and was refused (403), as Elasticsearch refuses flashmart_logs_writer; no line was.
		expect(es.templates.has("logs-flashmart")).toBe(false);
		const refused = es.refused.filter(r => r.path === "/_index_template/logs-flashmart");
		expect(refused.length).toBeGreaterThanOrEqual(1);
		expect(refused.length).toBeLessThanOrEqual(3);
		expect(refused.every(r => r.status === 403 && r.user === ES_USERS.shipper.username)).toBe(true);
		expect(es.refused.filter(r => r.status === 401)).toEqual([]);
		expect(es.refusedItems).toBe(0);
		const doc = es.docs[0];
		expect(doc.index).toMatch(/^logs-flashmart-\d{4}\.\d{2}\.\d{2}$/);
		expect(doc.doc).toMatchObject({
			"@timestamp": expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
			level: expect.any(String),
			message: expect.any(String),
			service: expect.any(String),
			nodeID: expect.any(String)
		});
	});

	let accessToken = "";
	let refreshToken = "";

	it("tags the lines of a request, on every node it crossed, with its X-Request-Id and user", async () => {
		const failedId = `it-failed-login-${Date.now()}`;
		const bad = await fetch(`${base}/api/auth/login`, {
			method: "POST",
			headers: { "Content-Type": "application/json", "X-Request-Id": failedId },
			body: JSON.stringify({ email: ADMIN_EMAIL, password: WRONG_PASSWORD })
		});
		expect(bad.status).toBe(401);

		const loginId = `it-login-${Date.now()}`;
		const login = await fetch(`${base}/api/auth/login`, {
			method: "POST",
			headers: { "Content-Type": "application/json", "X-Request-Id": loginId },
			body: JSON.stringify({ email: ADMIN_EMAIL, password: ADMIN_PASSWORD })
		});
		expect(login.status).toBe(200);
		const tokens = (await login.json()) as { accessToken: string; refreshToken: string };
		accessToken = tokens.accessToken;
		refreshToken = tokens.refreshToken;

		const meId = `it-me-${Date.now()}`;
		const me = await fetch(`${base}/api/users/me`, {
			headers: { Authorization: `Bearer ${accessToken}`, "X-Request-Id": meId }
		});
		expect(me.status).toBe(200);
		const user = (await me.json()) as { id: string };

		await until(() => docsWith(failedId).length > 0, "the failed login's lines");
		await until(() => docsWith(loginId).length > 0, "the login's lines");
		await until(() => docsWith(meId).length > 0, "the lines of GET /api/users/me");
		const failed = docsWith(failedId);
		expect(
			failed.some(d => d.doc.service === "users" && /login_failed/.test(String(d.doc.message)))
		).toBe(true);
		for (const d of [...failed, ...docsWith(loginId), ...docsWith(meId)]) {
			expect(d.doc).toMatchObject({
				"@timestamp": expect.any(String),
				level: expect.any(String),
				message: expect.any(String),
				service: expect.any(String),
				nodeID: expect.any(String)
			});
		}
		// The authenticated request's lines name the user.
		expect(docsWith(meId).some(d => d.doc.userId === user.id)).toBe(true);
	});

	it("answers 504 with one warning line from the gateway, without a stack, and no error line", async () => {
		const id = `it-timeout-${Date.now()}`;
		const res = await fetch(`${base}/test/slow?ms=4000`, { headers: { "X-Request-Id": id } });
		expect(res.status).toBe(504);
		await until(() => docsWith(id).some(d => d.doc.level === "warn"), "the 504 warning");
		const lines = docsWith(id);
		expect(lines.filter(d => d.doc.level === "error" || d.doc.level === "fatal")).toEqual([]);
		// Moleculer's own debug lines may carry a stack; what an operator sees at warn does not.
		const warnings = lines.filter(d => d.doc.level === "warn");
		expect(JSON.stringify(warnings)).not.toMatch(/"stack"|\\n\s+at /);
		const gatewayWarnings = warnings.filter(d => d.doc.service === "api");
		expect(gatewayWarnings).toHaveLength(1);
		expect(gatewayWarnings[0].doc.message).toMatch(/answered 504 REQUEST_TIMEOUT/);
	});

	it("ships no secret: passwords, tokens and Authorization headers appear in no line", async () => {
		// A refresh and a logout: the refresh token travels in a body too.
		const refreshed = await fetch(`${base}/api/auth/refresh`, {
			method: "POST",
			headers: { "Content-Type": "application/json" },
			body: JSON.stringify({ refreshToken })
		});
		expect(refreshed.status).toBe(200);
		const marker = `it-secrets-done-${Date.now()}`;
		await fetch(`${base}/health`, { headers: { "X-Request-Id": marker } });
		await sleep(1000);
		const shipped = es.bodies.join("\n");
		expect(shipped.length).toBeGreaterThan(0);
		for (const secret of [ADMIN_PASSWORD, WRONG_PASSWORD, accessToken, refreshToken]) {
			expect(shipped).not.toContain(secret);
		}
		// Nor a token's signature alone.
		expect(shipped).not.toContain(accessToken.split(".")[2]);
	});

	it("keeps answering at once while Elasticsearch is slow; the gateway's buffer stays bounded and drops are counted", async () => {
		es.delayMs = 8000;
		// Wait until the gateway has a request held by the stand-in.
		const heldBefore = es.bulkRequests;
		await fetch(`${base}/health`);
		await until(() => es.pending() > 0 && es.bulkRequests > heldBefore, "a held _bulk request");

		const answers = await Promise.all(
			Array.from({ length: 200 }, (_, i) =>
				fetch(`${base}/test/echo?say=n${i}`).then(r => r.status)
			)
		);
		expect(answers.every(s => s === 200)).toBe(true);
		// All of it happened while Elasticsearch had not answered yet.
		expect(es.pending()).toBeGreaterThan(0);

		const text = await (await fetch(`${base}/metrics`)).text();
		expect(metric(text, "flashmart_logs_dropped_total")).toBeGreaterThan(0);
		expect(metric(text, "flashmart_logs_buffered")).toBeLessThanOrEqual(GATEWAY_MAX_BUFFER);
		expect(metric(text, "flashmart_logs_shipped_total")).toBeGreaterThan(0);
		es.delayMs = 0;
	});

	it("flushes a node's buffered lines on SIGTERM before it exits", async () => {
		const id = `it-before-sigterm-${Date.now()}`;
		const echo = await fetch(`${base}/test/echo?say=bye`, { headers: { "X-Request-Id": id } });
		expect(echo.status).toBe(200);
		await sleep(500);
		const fromBackend = () => es.docs.filter(d => d.doc.nodeID === backendId);
		expect(fromBackend()).toEqual([]);
		expect(await backend.stop("SIGTERM", 20000)).toBe(0);
		const shipped = fromBackend();
		expect(shipped.some(d => d.doc.requestId === id && d.doc.message === "echo called")).toBe(true);
		const messages = shipped.map(d => String(d.doc.message));
		expect(messages).toEqual(
			expect.arrayContaining([
				expect.stringMatching(/SIGTERM received/),
				expect.stringMatching(/ServiceBroker is stopped/)
			])
		);
	});
});
