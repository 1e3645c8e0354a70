/**
 * Issue 17 over real HTTP on a cluster over a real nats-server: every answer inside one deadline from the moment the
 * gateway reads the request, retries that tell the truth, fast 503s while NATS is down, a node restarted under its old
 * name taking traffic at once, and a gateway that stops without dropping a request.
 */
import net from "node:net";
import { sleep, waitForStatus } from "../../scripts/lib/cluster";
import { type TestCluster, api, startCluster } from "../helpers/flashmart-cluster";
import { ADMIN, eventually, expectError, shop, unique } from "../helpers/shop";

const REQUEST_TIMEOUT = 2000;
/** Above the request deadline on purpose: an action's inner calls must not outlive the client's wait. */
const PROVIDER_TIMEOUT = 3500;
/** What "inside the deadline" allows for the answer to travel. */
const SLACK_MS = 700;

let cluster: TestCluster;
let s: ReturnType<typeof shop>;

beforeAll(async () => {
	cluster = await startCluster({
		services: ["users", "products", "inventory", "carts", "orders", "payments"],
		gateways: 2,
		env: {
			ADMIN_EMAIL: ADMIN.email,
			ADMIN_PASSWORD: ADMIN.password,
			REQUEST_TIMEOUT: String(REQUEST_TIMEOUT),
			PAYMENT_PROVIDER_TIMEOUT: String(PROVIDER_TIMEOUT),
			PAYMENT_RECONCILE_INTERVAL: "500",
			OUTBOX_RELAY_INTERVAL: "300",
			EVENT_ACK_WAIT: "2000",
			ORDER_SWEEP_INTERVAL: "500",
			LOG_LEVEL: "warn"
		},
		envFor: {
			// The gateways keep a silent node for a while (a container restarted faster than the heartbeat timeout),
			// and their breaker, once open, would wait long before trying again.
			api: {
				HEARTBEAT_TIMEOUT: "30",
				BREAKER_WINDOW: "60",
				BREAKER_HALF_OPEN_TIME: "60000",
				SHUTDOWN_TIMEOUT: "1500"
			}
		}
	});
	s = shop(cluster);
}, 120_000);

afterAll(() => cluster?.stop());

async function timed<T>(run: () => Promise<T>): Promise<{ ms: number; value: T }> {
	const started = performance.now();
	const value = await run();
	return { ms: performance.now() - started, value };
}

describe("one deadline", () => {
	it("a pay whose provider is silent answers 504 inside REQUEST_TIMEOUT, though the provider's own timeout is longer", async () => {
		const { token } = await s.customer();
		const order = await s.pendingOrder(token, await s.product(5));
		const { ms, value } = await timed(() => s.pay(token, order.id, "tok_timeout"));
		expectError(value, 504, "REQUEST_TIMEOUT");
		expect(ms).toBeLessThan(REQUEST_TIMEOUT + SLACK_MS);
	}, 30_000);
});

describe("retries tell the truth", () => {
	it("a retry of the pay that paid answers the paid order, even while payments is down", async () => {
		// Under a fixed name, so the node restarted below replaces the killed one at once (no dead node lingers).
		await cluster.nodes.get("payments")!.stop();
		await cluster.startService("payments", { NODE_ID: "payments-in-place" });
		await waitForStatus(`${cluster.base}/ready`, { timeoutMs: 30_000 });
		const { token } = await s.customer();
		const order = await s.pendingOrder(token, await s.product(5));
		const key = unique("pay");
		expectError(await s.pay(token, order.id, "tok_timeout", key), 504, "REQUEST_TIMEOUT");
		// The provider charged it; reconciliation learns so and the order is paid by that request.
		await eventually(async () => (await s.order(order.id)).status === "paid", 20_000);
		await cluster.nodes.get("payments")!.kill9();
		try {
			const retry = await s.pay(token, order.id, "tok_timeout", key);
			expect({ status: retry.status, order: retry.body.status }).toEqual({
				status: 200,
				order: "paid"
			});
			expect(retry.body.payment).toEqual({
				id: expect.any(String),
				status: "succeeded",
				amount: order.total
			});
			// Another request (another key) for the paid order is a conflict, as before.
			expectError(await s.pay(token, order.id, "tok_visa"), 409, "INVALID_ORDER_STATE");
		} finally {
			await cluster.startService("payments", { NODE_ID: "payments-in-place" });
			await waitForStatus(`${cluster.base}/ready`, { timeoutMs: 30_000 });
		}
	}, 60_000);
});

describe("retries tell the truth: cancel", () => {
	it("a cancel sent with a key is answered again on retry, not refused for the state it left", async () => {
		const { token } = await s.customer();
		const order = await s.pendingOrder(token, await s.product(5));
		expect((await s.pay(token, order.id)).status).toBe(200);
		const key = unique("cancel");
		const cancel = () =>
			api(cluster.base, "POST", `/api/orders/${order.id}/cancel`, {
				token,
				headers: { "Idempotency-Key": key }
			});
		const first = await cancel();
		expect({ status: first.status, order: first.body.status }).toEqual({
			status: 200,
			order: "refunded"
		});
		const retry = await cancel();
		expect({ status: retry.status, order: retry.body.status }).toEqual({
			status: 200,
			order: "refunded"
		});
		expect(retry.headers.get("idempotent-replayed")).toBe("true");
		// Without a key, as API.md has it: a second cancel is a conflict.
		expectError(await s.cancel(token, order.id), 409, "INVALID_ORDER_STATE");
	}, 30_000);
});

describe("NATS down", () => {
	it("answers 503 with Retry-After at once instead of waiting out the deadline, and serves again after", async () => {
		const { token } = await s.customer();
		await cluster.nats.stop();
		try {
			await waitForStatus(`${cluster.base}/ready`, { status: 503, timeoutMs: 10_000 });
			const { ms, value } = await timed(() => api(cluster.base, "GET", "/api/orders", { token }));
			expectError(value, 503, "SERVICE_UNAVAILABLE");
			expect(value.headers.get("retry-after")).toBe("1");
			expect(ms).toBeLessThan(REQUEST_TIMEOUT / 2);
		} finally {
			await cluster.nats.restart();
		}
		for (const base of cluster.gateways)
			await waitForStatus(`${base}/ready`, { timeoutMs: 30_000 });
		await eventually(
			async () => (await api(cluster.base, "GET", "/api/orders", { token })).status === 200,
			15_000
		);
	}, 90_000);
});

describe("circuit breaker and readiness agree", () => {
	it("a node restarted under its old name takes traffic as soon as it is back", async () => {
		const { token } = await s.customer();
		const list = () => api(cluster.base, "GET", "/api/orders", { token });
		// Under a fixed name, as a container restarted in place keeps its hostname.
		await cluster.nodes.get("orders")!.stop();
		await cluster.startService("orders", { NODE_ID: "orders-in-place" });
		await eventually(async () => (await list()).status === 200, 20_000);

		await cluster.nodes.get("orders")!.kill9();
		// The gateway still lists the silent node (heartbeat timeout 30 s): calls to it time out until the breaker
		// has seen enough of them (BREAKER_MIN_REQUESTS) and takes it out; then the gateway answers 503 at once.
		await Promise.all(Array.from({ length: 25 }, list));
		await eventually(async () => {
			const { ms, value } = await timed(list);
			return value.status === 503 && ms < REQUEST_TIMEOUT / 2;
		}, 30_000);

		await cluster.startService("orders", { NODE_ID: "orders-in-place" });
		await waitForStatus(`${cluster.base}/ready`, { timeoutMs: 30_000 });
		const back = Date.now();
		await eventually(async () => (await list()).status === 200, 3_000);
		expect(Date.now() - back).toBeLessThan(3_000);
	}, 120_000);
});

/** One HTTP/1.1 exchange on a raw socket kept open afterwards (a client's kept-alive connection). */
function keptAlive(base: string): Promise<net.Socket> {
	const { hostname, port } = new URL(base);
	return new Promise((resolve, reject) => {
		const socket = net.connect(Number(port), hostname, () => {
			socket.write(`GET /health HTTP/1.1\r\nHost: ${hostname}\r\nConnection: keep-alive\r\n\r\n`);
		});
		socket.once("error", reject);
		socket.once("data", () => resolve(socket));
	});
}

/** A request over its own connection: status and Connection header, or the network error's code. */
function rawRequest(
	base: string,
	method: string,
	path: string,
	opts: { token?: string; body?: unknown; key?: string } = {}
): Promise<{ status?: number; connection?: string; error?: string }> {
	const body = opts.body === undefined ? "" : JSON.stringify(opts.body);
	const headers: Record<string, string> = { Connection: "keep-alive" };
	if (body) headers["Content-Type"] = "application/json";
	if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
	if (opts.key) headers["Idempotency-Key"] = opts.key;
	return fetch(`${base}${path}`, { method, headers, body: body || undefined }).then(
		async res => {
			await res.text();
			return { status: res.status, connection: res.headers.get("connection") ?? undefined };
		},
		(err: Error & { cause?: { code?: string } }) => ({ error: err.cause?.code ?? err.message })
	);
}

describe("a stopping gateway", () => {
	it("fails /ready at once, answers every request it has, closes its connections, and exits within SHUTDOWN_TIMEOUT", async () => {
		const base = cluster.gateways[1];
		const proc = cluster.gatewayProcs[1];
		const { token } = await s.customer();
		const productId = await s.product(10);
		const orders = [];
		for (let i = 0; i < 3; i++) orders.push(await s.pendingOrder(token, productId));

		const idle = await keptAlive(base);
		const idleClosed = new Promise<number>(resolve =>
			idle.once("close", () => resolve(Date.now()))
		);
		// Pays the provider never answers: still running when the stop begins (their deadline is past the stop's).
		const running = orders.map(o =>
			rawRequest(base, "POST", `/api/orders/${o.id}/pay`, {
				token,
				body: { paymentToken: "tok_timeout" },
				key: unique("pay")
			})
		);
		await sleep(300);
		const stopped = Date.now();
		proc.child.kill("SIGTERM");
		const exited = proc.exited.then(() => Date.now());

		// A load balancer's probe fails as soon as the signal is handled: refused, or 503.
		const failedAt = await eventually(async () => {
			const probe = await rawRequest(base, "GET", "/ready");
			return probe.status === 503 || probe.error === "ECONNREFUSED" ? Date.now() : null;
		}, 2000);
		expect(failedAt - stopped).toBeLessThan(500);

		// A request that was on its way on the idle kept-alive connection is answered, not run, and told to go.
		let late = "";
		idle.on("data", chunk => (late += chunk.toString()));
		idle.write(`GET /api/products HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
		await idleClosed;
		expect(late).toMatch(/^HTTP\/1\.1 503 /);
		expect(late).toMatch(/\r\nconnection: close\r\n/i);

		const answers = await Promise.all(running);
		for (const a of answers) expect(a).toEqual({ status: 503, connection: "close" });
		expect((await exited) - stopped).toBeLessThan(1500 + 700);
		// The idle kept-alive connection was not cut while a request might have been on its way, but is gone by exit.
		expect(await idleClosed).toBeLessThanOrEqual(await exited);
		// The calls behind the requests cut short are abandoned once, at the one deadline (not once per wait).
		const lines = proc.output().split("\n");
		expect(lines.filter(l => /Unable to stop ServiceBroker gracefully/.test(l))).toHaveLength(1);
		expect(lines.filter(l => /Unable to stop '[^']+' service gracefully/.test(l))).toEqual([]);
	}, 60_000);
});
