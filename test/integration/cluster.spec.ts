/**
 * The foundation over real processes: a nats-server, a gateway node and a backend node, each its own process.
 */
import path from "node:path";
import {
	type NatsServer,
	type Proc,
	freePort,
	sleep,
	startNats,
	startNode,
	stopAll,
	tempDir,
	uniqueNamespace,
	waitForStatus
} from "../../scripts/lib/cluster";
import { makeKeyPair } from "../helpers/flashmart-cluster";

const FIXTURES = path.resolve(__dirname, "..", "..", "dist", "test", "fixtures");
const REQUEST_TIMEOUT = 3000;

describe("a gateway and a backend node over NATS", () => {
	let nats: NatsServer;
	let namespace: string;
	let gatewayPort: number;
	let gateway: Proc;
	let backend: Proc;
	let base: string;

	const keys = makeKeyPair();
	const commonEnv = () => ({
		JWT_PUBLIC_KEY: keys.publicKey,
		NODE_ENV: "test",
		TRANSPORTER: nats.url,
		NAMESPACE: namespace,
		LOG_FORMAT: "json",
		LOG_LEVEL: "info",
		METRICS_PORT: "0",
		REQUEST_TIMEOUT: String(REQUEST_TIMEOUT),
		HEARTBEAT_INTERVAL: "1",
		HEARTBEAT_TIMEOUT: "3",
		SHUTDOWN_TIMEOUT: "8000"
	});

	const startBackend = (name = "backend") =>
		startNode({
			name,
			env: {
				...commonEnv(),
				NODE_ID: `${name}-${Date.now()}`,
				SERVICES: path.join(FIXTURES, "slow.service.js"),
				DATA_DIR: tempDir("backend")
			}
		});

	const startGateway = () =>
		startNode({
			name: "gateway",
			env: {
				...commonEnv(),
				NODE_ID: `gateway-${Date.now()}`,
				SERVICES: `api,${path.join(FIXTURES, "test-routes.service.js")}`,
				REQUIRED_SERVICES: "slow",
				GATEWAY_PORT: String(gatewayPort),
				GATEWAY_HOST: "127.0.0.1",
				DATA_DIR: tempDir("gateway")
			}
		});

	beforeAll(async () => {
		nats = await startNats();
		namespace = uniqueNamespace("foundation");
		gatewayPort = await freePort();
		base = `http://127.0.0.1:${gatewayPort}`;
		gateway = startGateway();
		// The fixture route is added once the gateway has started; until the backend joins it answers 503.
		await waitForStatus(`${base}/test/echo`, { proc: gateway, status: 503 });
	});

	afterAll(async () => {
		await stopAll();
	});

	it("answers /ready 503 naming the missing service before the backend node is up", async () => {
		const res = await fetch(`${base}/ready`);
		expect(res.status).toBe(503);
		expect(await res.json()).toEqual({ status: "unavailable", missing: ["slow"] });
		const health = await (await fetch(`${base}/api/health`)).json();
		expect(health).toEqual({ status: "degraded", services: { slow: "down" } });
	});

	it("answers a route whose service is down with 503, never 404 or 500", async () => {
		const res = await fetch(`${base}/test/echo`);
		expect(res.status).toBe(503);
		const body = (await res.json()) as Record<string, unknown>;
		expect(body).toMatchObject({ code: 503, type: "SERVICE_UNAVAILABLE" });
		expect(res.headers.get("retry-after")).toBe("1");
	});

	it("becomes ready once the backend node joins, and a request crosses NATS and comes back", async () => {
		backend = startBackend();
		await waitForStatus(`${base}/ready`, { proc: backend, timeoutMs: 20000 });
		const health = await (await fetch(`${base}/api/health`)).json();
		expect(health).toEqual({ status: "ok", services: { slow: "up" } });

		const res = await fetch(`${base}/test/echo?say=hello`, {
			headers: { "X-Request-Id": "trace-me-42" }
		});
		expect(res.status).toBe(200);
		expect(res.headers.get("x-request-id")).toBe("trace-me-42");
		const body = (await res.json()) as Record<string, unknown>;
		expect(body.say).toBe("hello");
		expect(body.nodeID).toMatch(/^backend-/);
		// The request id crossed NATS as ctx.requestID ...
		expect(body.requestID).toBe("trace-me-42");
		// ... and the backend's log line for this request carries it.
		await sleep(100);
		const line = backend
			.output()
			.split("\n")
			.filter(l => l.startsWith("{"))
			.map(l => JSON.parse(l) as Record<string, unknown>)
			.find(l => l.message === "echo called");
		expect(line).toMatchObject({
			requestId: "trace-me-42",
			service: "slow",
			level: "info",
			say: "hello"
		});
		expect(typeof line?.["@timestamp"]).toBe("string");
		expect(line?.nodeID).toMatch(/^backend-/);
	});

	it("answers 504 when the backend is slower than the request timeout", async () => {
		const started = Date.now();
		const res = await fetch(`${base}/test/slow?ms=${REQUEST_TIMEOUT + 2000}`);
		const elapsed = Date.now() - started;
		expect(res.status).toBe(504);
		expect(((await res.json()) as { type: string }).type).toBe("REQUEST_TIMEOUT");
		expect(elapsed).toBeLessThan(REQUEST_TIMEOUT + 2000);
	});

	it("answers 503 or 504 within the request timeout when the backend is killed mid-request", async () => {
		const started = Date.now();
		const pending = fetch(`${base}/test/slow?ms=2500`);
		await sleep(300);
		await backend.kill9();
		const res = await pending;
		const elapsed = Date.now() - started;
		expect([503, 504]).toContain(res.status);
		const body = (await res.json()) as Record<string, unknown>;
		expect(["SERVICE_UNAVAILABLE", "REQUEST_TIMEOUT"]).toContain(body.type as string);
		expect(JSON.stringify(body)).not.toMatch(/backend-|stack/);
		expect(elapsed).toBeLessThan(REQUEST_TIMEOUT + 1500);
	});

	it("lets in-flight requests finish when the gateway gets SIGTERM, then exits 0", async () => {
		backend = startBackend("backend2");
		await waitForStatus(`${base}/ready`, { proc: backend, timeoutMs: 20000 });
		const inFlight = [1, 2, 3].map(() => fetch(`${base}/test/slow?ms=1500`));
		await sleep(300);
		gateway.child.kill("SIGTERM");
		const answers = await Promise.all(inFlight);
		expect(answers.map(r => r.status)).toEqual([200, 200, 200]);
		expect(await gateway.exited).toBe(0);
		// The earlier timed-out calls left nothing tracked (middlewares/deadline.middleware.ts),
		// so the stop did not have to give up waiting for them.
		expect(gateway.output()).not.toMatch(/GracefulStopTimeoutError/);
		// It stopped taking new connections.
		await expect(fetch(`${base}/health`)).rejects.toThrow();
	});
});
