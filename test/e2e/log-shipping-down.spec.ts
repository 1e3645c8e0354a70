/**
 * The embedded node (node dist/server.js) with ELASTICSEARCH_URL pointing at a port where nothing listens: requests
 * are answered as usual, the shipper's failures are counted, its buffer stays within LOG_SHIP_MAX_BUFFER (the oldest
 * lines dropped and counted), and the node still stops cleanly.
 */
import { type Proc, freePort, stopAll } from "../../scripts/lib/cluster";
import { startEmbedded } from "../helpers/embedded";
import { SHIPPER_ENV } from "../helpers/es-stand-in";

const MAX_BUFFER = 50;

function metric(text: string, name: string): number | undefined {
	const line = text.split("\n").find(l => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
	return line ? Number(line.split(" ").pop()) : undefined;
}

describe("log shipping while Elasticsearch is down", () => {
	let node: Proc;
	let base: string;

	beforeAll(async () => {
		const deadPort = await freePort();
		({ node, base } = await startEmbedded("embedded-es-down", {
			LOG_FORMAT: "json",
			LOG_LEVEL: "debug",
			ELASTICSEARCH_URL: `http://127.0.0.1:${deadPort}`,
			...SHIPPER_ENV,
			LOG_SHIP_FLUSH_INTERVAL: "50",
			LOG_SHIP_BATCH_SIZE: "20",
			LOG_SHIP_MAX_BUFFER: String(MAX_BUFFER)
		}));
	});

	afterAll(() => stopAll());

	it("answers every request, counts failed shipments and drops, and keeps the buffer bounded", async () => {
		const statuses = await Promise.all(
			Array.from({ length: 100 }, (_, i) =>
				fetch(`${base}/api/products?page=${(i % 5) + 1}`).then(r => r.status)
			)
		);
		expect(statuses.every(s => s === 200)).toBe(true);
		const text = await (await fetch(`${base}/metrics`)).text();
		expect(metric(text, "flashmart_logs_ship_errors_total")).toBeGreaterThan(0);
		expect(metric(text, "flashmart_logs_dropped_total")).toBeGreaterThan(0);
		expect(metric(text, "flashmart_logs_buffered")).toBeLessThanOrEqual(MAX_BUFFER);
		expect(metric(text, "flashmart_logs_shipped_total") ?? 0).toBe(0);
		// The trouble is reported on stderr, without flooding it.
		const warnings = node.output().match(/log shipping: .*failed/g) ?? [];
		expect(warnings.length).toBeGreaterThanOrEqual(1);
		expect(warnings.length).toBeLessThanOrEqual(2);
	});

	it("still stops with exit code 0 on SIGTERM", async () => {
		expect(await node.stop("SIGTERM", 20000)).toBe(0);
	});
});
