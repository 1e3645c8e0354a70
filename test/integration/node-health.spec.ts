/**
 * Every node answers `/live` and `/ready` next to `/metrics` on METRICS_PORT (what compose healthchecks and probes
 * use on backend nodes, which have no gateway): ready while connected to NATS with its stores answering, 503 naming
 * the transporter while NATS is down, ready again once it is back.
 */
import {
	type NatsServer,
	type Proc,
	freePort,
	startNats,
	startNode,
	stopAll,
	tempDir,
	uniqueNamespace,
	waitForStatus
} from "../../scripts/lib/cluster";

describe("a backend node's /live and /ready on METRICS_PORT", () => {
	let nats: NatsServer;
	let node: Proc;
	let base: string;

	beforeAll(async () => {
		nats = await startNats();
		const port = await freePort();
		base = `http://127.0.0.1:${port}`;
		node = startNode({
			name: "inventory",
			env: {
				NODE_ENV: "test",
				TRANSPORTER: nats.url,
				NAMESPACE: uniqueNamespace("health"),
				SERVICES: "inventory",
				REQUIRED_SERVICES: "inventory",
				METRICS_PORT: String(port),
				DATA_DIR: tempDir("node-health")
			}
		});
		await waitForStatus(`${base}/ready`, { proc: node, timeoutMs: 30_000 });
	});
	afterAll(async () => {
		await stopAll();
		await nats?.stop();
	});

	it("answers /live and /ready with 200 and keeps /metrics", async () => {
		const live = await fetch(`${base}/live`);
		expect(live.status).toBe(200);
		expect(await live.json()).toEqual({ status: "ok" });
		const ready = await fetch(`${base}/ready`);
		expect(ready.status).toBe(200);
		expect((await fetch(`${base}/metrics`)).status).toBe(200);
		expect((await fetch(`${base}/nothing`)).status).toBe(404);
	});

	it("is not ready while NATS is down, and ready again once it is back", async () => {
		await nats.stop();
		await waitForStatus(`${base}/ready`, { status: 503, timeoutMs: 15_000 });
		const down = await fetch(`${base}/ready`);
		expect(await down.json()).toMatchObject({ status: "unavailable", missing: ["transporter"] });
		expect((await fetch(`${base}/live`)).status).toBe(200);
		// What FlashMartNatsDisconnected reads.
		const connected = () =>
			fetch(`${base}/metrics`)
				.then(r => r.text())
				.then(t => /^moleculer_transit_connected(?:\{[^}]*\})? (\d)/m.exec(t)?.[1]);
		expect(await connected()).toBe("0");
		await nats.restart();
		await waitForStatus(`${base}/ready`, { timeoutMs: 30_000, proc: node });
		expect(await connected()).toBe("1");
	});
});
