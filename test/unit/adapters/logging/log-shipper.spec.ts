/**
 * The log shipper against the Elasticsearch stand-in over real loopback HTTP: template, daily indices, batching,
 * a bounded buffer while Elasticsearch is slow, retries after it was down, and the final flush.
 */
import { type LogRecord, LogShipper, indexFor } from "../../../../adapters/logging/log-shipper";
import { FlashMartLogger, type RecordSink } from "../../../../adapters/logging/logger";
import { runInScope } from "../../../../lib/request-context";
import { freePort, sleep } from "../../../../scripts/lib/cluster";
import { type EsStandIn, startEsStandIn } from "../../../helpers/es-stand-in";

const record = (n: number): LogRecord => ({
	"@timestamp": new Date().toISOString(),
	level: "info",
	message: `line ${n}`,
	service: "test",
	nodeID: "n1"
});

async function until(cond: () => boolean, timeoutMs = 10000): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!cond()) {
		if (Date.now() > deadline) throw new Error("condition not met in time");
		await sleep(20);
	}
}

describe("log shipper", () => {
	let es: EsStandIn;
	const shippers: LogShipper[] = [];
	const make = (url: string, over: Partial<ConstructorParameters<typeof LogShipper>[0]> = {}) => {
		const s = new LogShipper({
			nodes: [url],
			auth: null,
			batchSize: 50,
			flushInterval: 50,
			maxBuffer: 1000,
			requestTimeout: 2000,
			minBackoff: 50,
			maxBackoff: 200,
			warn: () => undefined,
			...over
		});
		shippers.push(s);
		return s;
	};

	beforeEach(async () => {
		es = await startEsStandIn();
	});
	afterEach(async () => {
		await Promise.all(shippers.splice(0).map(s => s.close(500)));
		await es.close();
	});

	it("names the daily index from the record's UTC timestamp", () => {
		expect(indexFor({ "@timestamp": "2026-03-09T23:59:59.999Z" })).toBe(
			"logs-flashmart-2026.03.09"
		);
	});

	it("installs the index template once, then ships every line to its daily index", async () => {
		const s = make(es.url);
		for (let i = 0; i < 120; i++) s.push(record(i));
		await until(() => es.docs.length === 120);
		expect(es.docs.map(d => d.doc.message)).toEqual(
			Array.from({ length: 120 }, (_, i) => `line ${i}`)
		);
		expect(es.docs.every(d => /^logs-flashmart-\d{4}\.\d{2}\.\d{2}$/.test(d.index))).toBe(true);
		const template = es.templates.get("logs-flashmart") as {
			index_patterns: string[];
			priority: number;
			template: { mappings: { properties: Record<string, { type: string }> } };
		};
		expect(template.index_patterns).toEqual(["logs-flashmart-*"]);
		expect(template.priority).toBeGreaterThan(100);
		expect(template.template.mappings.properties["@timestamp"].type).toBe("date");
		for (const f of ["level", "service", "nodeID", "requestId", "userId", "orderId"]) {
			expect(template.template.mappings.properties[f].type).toBe("keyword");
		}
		// Batched: 120 lines in a few requests, not one each.
		expect(es.bulkRequests).toBeLessThanOrEqual(6);
		expect(s.stats).toMatchObject({ shipped: 120, dropped: 0 });
	});

	it("stays bounded while Elasticsearch is slow: push never waits, the oldest lines are dropped and counted", async () => {
		es.delayMs = 3000;
		const s = make(es.url, { maxBuffer: 100, batchSize: 20, requestTimeout: 10000 });
		s.push(record(-1));
		await until(() => es.pending() > 0);
		for (let i = 0; i < 1000; i++) s.push(record(i));
		// Everything above ran while the stand-in held the first request.
		expect(es.pending()).toBeGreaterThan(0);
		expect(s.bufferedCount).toBeLessThanOrEqual(100);
		expect(s.stats.dropped).toBeGreaterThanOrEqual(900 - 20);
	});

	it("keeps the batch and retries with backoff while Elasticsearch is down, then ships it", async () => {
		const port = await freePort();
		const s = make(`http://127.0.0.1:${port}`);
		for (let i = 0; i < 10; i++) s.push(record(i));
		await until(() => s.stats.errors >= 2);
		expect(s.bufferedCount).toBe(10);
		const late = await startEsStandIn({ port });
		try {
			await until(() => late.docs.length === 10);
			expect(late.docs.map(d => d.doc.message)).toEqual(
				Array.from({ length: 10 }, (_, i) => `line ${i}`)
			);
			expect(s.stats.dropped).toBe(0);
		} finally {
			await late.close();
		}
	});

	it("sends what is buffered on close", async () => {
		const s = make(es.url, { flushInterval: 60_000, batchSize: 1000 });
		for (let i = 0; i < 30; i++) s.push(record(i));
		await sleep(100);
		expect(es.docs).toHaveLength(0);
		await s.close(3000);
		expect(es.docs).toHaveLength(30);
	});

	it("gives up on close at its deadline when Elasticsearch does not answer", async () => {
		es.delayMs = 10_000;
		const s = make(es.url);
		s.push(record(1));
		await until(() => es.pending() > 0);
		await s.close(300);
		// Resolved while the stand-in still holds the request: the line was never acknowledged.
		expect(es.pending()).toBeGreaterThan(0);
		expect(es.docs).toHaveLength(0);
		expect(s.stats.dropped).toBe(1);
	});
});

describe("FlashMartLogger", () => {
	const bindings = { nodeID: "n1", ns: "", mod: "users", svc: "users" };
	let logged: jest.SpyInstance;
	beforeEach(() => {
		logged = jest.spyOn(console, "log").mockImplementation(() => undefined);
	});
	afterEach(() => logged.mockRestore());

	it("prints a JSON line and hands the same record, redacted, to the sink", () => {
		const got: Record<string, unknown>[] = [];
		const sink: RecordSink = { push: r => got.push(r) };
		const logger = new FlashMartLogger({ level: "info", format: "json", sink });
		const handler = logger.getLogHandler(bindings);
		runInScope({ requestId: "req-1", userId: "u1", orderId: "o1" }, () =>
			handler?.("info", [
				"paying with tok_visa",
				{
					paymentToken: "tok_visa",
					headers: { Authorization: "Bearer abc.def.ghi" },
					password: "pw123456"
				}
			])
		);
		handler?.("debug", ["below the level"]);
		expect(got).toHaveLength(1);
		expect(got[0]).toMatchObject({
			level: "info",
			service: "users",
			nodeID: "n1",
			requestId: "req-1",
			userId: "u1",
			orderId: "o1"
		});
		expect(JSON.parse(logged.mock.calls[0][0] as string)).toEqual(got[0]);
		const text = JSON.stringify(got[0]);
		expect(text).not.toMatch(/tok_visa|abc\.def\.ghi|pw123456/);
	});
});
