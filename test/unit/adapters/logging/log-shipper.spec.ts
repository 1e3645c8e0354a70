/**
 * The log shipper against the Elasticsearch stand-in over real loopback HTTP: template, daily indices, batching,
 * a bounded buffer while Elasticsearch is slow, retries after it was down, and the final flush.
 */
import { type LogRecord, LogShipper, indexFor } from "../../../../adapters/logging/log-shipper";
import { FlashMartLogger, type RecordSink } from "../../../../adapters/logging/logger";
import { runInScope } from "../../../../lib/request-context";
import { freePort, sleep } from "../../../../scripts/lib/cluster";
import { ES_USERS, type EsStandIn, startEsStandIn } from "../../../helpers/es-stand-in";

const SHIPPER: { username: string; password: string } = {
	username: ES_USERS.shipper.username,
	password: ES_USERS.shipper.password
};
const ELASTIC: { username: string; password: string } = {
	username: ES_USERS.elastic.username,
	password: ES_USERS.elastic.password
};

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
			auth: SHIPPER,
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
		// As a user allowed to manage templates; the compose shipper's user is not (next test).
		const s = make(es.url, { auth: ELASTIC });
		for (let i = 0; i < 120; i++) s.push(record(i));
		await until(() => es.docs.length === 120 && s.stats.shipped === 120);
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

	it("ships every line when its user is refused the index template (403), and says so once", async () => {
		const warnings: string[] = [];
		const s = make(es.url, { warn: m => warnings.push(m) });
		for (let i = 0; i < 120; i++) s.push(record(i));
		await until(() => es.docs.length === 120);
		expect(es.docs.map(d => d.doc.message)).toEqual(
			Array.from({ length: 120 }, (_, i) => `line ${i}`)
		);
		expect(es.templates.has("logs-flashmart")).toBe(false);
		// Asked once, refused once: not before every batch.
		expect(es.refused).toEqual([
			{
				status: 403,
				method: "PUT",
				path: "/_index_template/logs-flashmart",
				user: SHIPPER.username
			}
		]);
		expect(es.refusedItems).toBe(0);
		for (let i = 120; i < 170; i++) s.push(record(i));
		// The stand-in holds the documents before the shipper has read its answer; wait for both.
		await until(() => es.docs.length === 170 && s.stats.shipped === 170);
		expect(es.refused).toHaveLength(1);
		expect(s.stats).toMatchObject({ shipped: 170, dropped: 0, templateRefused: 1, errors: 1 });
		expect(warnings).toHaveLength(1);
		expect(warnings[0]).toMatch(/index template logs-flashmart was refused.*security_exception/);
	});

	it("ships nothing without valid credentials: 401, counted, the lines kept for a retry", async () => {
		const s = make(es.url, { auth: { username: SHIPPER.username, password: "wrong" } });
		for (let i = 0; i < 10; i++) s.push(record(i));
		await until(() => s.stats.errors >= 2);
		expect(es.docs).toHaveLength(0);
		expect(s.bufferedCount).toBe(10);
		expect(es.refused.every(r => r.status === 401)).toBe(true);
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

describe("Elasticsearch stand-in", () => {
	let es: EsStandIn;
	beforeAll(async () => {
		es = await startEsStandIn();
	});
	afterAll(() => es.close());
	const basic = (u: { username: string; password: string }) =>
		`Basic ${Buffer.from(`${u.username}:${u.password}`).toString("base64")}`;
	const bulk = (index: string, id?: string) =>
		`${JSON.stringify({ index: { _index: index, ...(id ? { _id: id } : {}) } })}\n{"message":"m"}\n`;

	it("answers 401 security_exception with WWW-Authenticate without credentials, as Elasticsearch does", async () => {
		const res = await fetch(`${es.url}/_bulk`, { method: "POST", body: bulk("logs-flashmart-x") });
		expect(res.status).toBe(401);
		expect(res.headers.get("www-authenticate")).toMatch(/^Basic realm="security"/);
		const body = (await res.json()) as {
			error: { type: string; reason: string; root_cause: Array<{ type: string }> };
			status: number;
		};
		expect(body.status).toBe(401);
		expect(body.error.type).toBe("security_exception");
		expect(body.error.root_cause[0].type).toBe("security_exception");
		expect(body.error.reason).toBe("missing authentication credentials for REST request [/_bulk]");
		const wrong = await fetch(`${es.url}/_bulk`, {
			method: "POST",
			headers: { Authorization: basic({ ...SHIPPER, password: "nope" }) },
			body: bulk("logs-flashmart-x")
		});
		expect(wrong.status).toBe(401);
		expect(es.docs).toHaveLength(0);
	});

	it("answers 403 security_exception for the shipper's template call, and lets elastic make it", async () => {
		const put = (u: typeof SHIPPER) =>
			fetch(`${es.url}/_index_template/t`, {
				method: "PUT",
				headers: { Authorization: basic(u), "Content-Type": "application/json" },
				body: "{}"
			});
		const refused = await put(SHIPPER);
		expect(refused.status).toBe(403);
		const body = (await refused.json()) as { error: { type: string; reason: string } };
		expect(body.error.type).toBe("security_exception");
		expect(body.error.reason).toMatch(
			/^action \[indices:admin\/index_template\/put\] is unauthorized for user \[flashmart_logs\]/
		);
		expect((await put(ELASTIC)).status).toBe(200);
	});

	it("lets the shipper create documents in logs-flashmart-* only, never overwrite by _id", async () => {
		const res = await fetch(`${es.url}/_bulk`, {
			method: "POST",
			headers: { Authorization: basic(SHIPPER), "Content-Type": "application/x-ndjson" },
			body:
				bulk("logs-flashmart-2026.12.01") + bulk("other") + bulk("logs-flashmart-2026.12.01", "1")
		});
		expect(res.status).toBe(200);
		const body = (await res.json()) as {
			errors: boolean;
			items: Array<{ index: { status: number; error?: { type: string } } }>;
		};
		expect(body.errors).toBe(true);
		expect(body.items.map(i => i.index.status)).toEqual([201, 403, 403]);
		expect(body.items[1].index.error?.type).toBe("security_exception");
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
