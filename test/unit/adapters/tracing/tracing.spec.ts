/**
 * The tracing middleware on an in-process broker, spans exported to the SDK's in-memory exporter: caller and callee
 * spans linked through `ctx.headers`, errors marked with their type, store operations traced, log lines carrying the
 * ids of the span they were written in, and no spans for work that belongs to no trace.
 */
import { type Context, ServiceBroker } from "moleculer";
import { context, trace } from "@opentelemetry/api";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { loadConfig } from "../../../../config";
import { attachTracing } from "../../../../adapters/tracing";
import { Tracing, currentTraceHeaders } from "../../../../adapters/tracing/tracing";
import RequestContextMiddleware from "../../../../middlewares/request-context.middleware";
import TracingMiddleware from "../../../../middlewares/tracing.middleware";
import { logRecord } from "../../../../adapters/logging/logger";
import { ConflictError } from "../../../../lib/errors";

const cfg = loadConfig({ TRACING_ENABLED: "true", TRACING_SAMPLE_RATIO: "1" }).tracing!;
const BINDINGS = { nodeID: "n1", ns: "t", mod: "test" };

describe("middlewares/tracing", () => {
	const exporter = new InMemorySpanExporter();
	const tracing = new Tracing(cfg, { namespace: "t", nodeID: "n1" }, exporter);
	const broker = new ServiceBroker({
		logger: false,
		nodeID: "n1",
		middlewares: [TracingMiddleware(tracing)]
	});
	const logged: Array<Record<string, unknown>> = [];
	const rows = new Map<string, object>();

	broker.createService({
		name: "outer",
		actions: {
			async run(ctx) {
				logged.push(logRecord("info", ["outer runs"], BINDINGS));
				return ctx.call("inner.work", ctx.params);
			}
		}
	});
	broker.createService({
		name: "inner",
		// A store port shaped like moleculer-db's adapter, as a service holds it.
		adapter: null as unknown,
		created(this: { adapter: unknown; schema: { collection?: string } }) {
			this.schema.collection = "things";
			this.adapter = {
				find: async () => [...rows.values()],
				findById: async (id: string) => rows.get(id) ?? null,
				updateMany: async () => 0,
				insert: async (doc: { _id: string }) => (rows.set(doc._id, doc), doc)
			};
		},
		actions: {
			async work(
				this: { adapter: { insert(d: object): Promise<object> } },
				ctx: Context<{ fail?: boolean }>
			) {
				if (ctx.params.fail) throw new ConflictError("OUT_OF_STOCK", "Not enough stock");
				return this.adapter.insert({ _id: "a" });
			}
		}
	} as never);

	beforeAll(() => broker.start());
	afterAll(() => broker.stop());
	beforeEach(async () => {
		await tracing.flush();
		exporter.reset();
	});

	/** Runs `fn` as the child of a client's span, as a traced HTTP request would. */
	function inTrace<T>(fn: () => Promise<T>) {
		const root = tracing.tracer.startSpan("client");
		return {
			root,
			done: context.with(trace.setSpan(context.active(), root), fn).finally(() => root.end())
		};
	}
	const spans = async () => {
		await tracing.flush();
		return exporter.getFinishedSpans();
	};
	const named = (all: ReadableSpan[], name: string) => all.find(s => s.name === name)!;
	const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;

	it("links caller and callee spans through the context's headers, store operations under the callee", async () => {
		const { root, done } = inTrace(() => broker.call("outer.run", {}));
		await done;
		const all = await spans();
		const ids = (s: ReadableSpan) => s.spanContext().spanId;
		const callOuter = named(all, "call outer.run");
		const outer = named(all, "outer.run");
		const callInner = named(all, "call inner.work");
		const inner = named(all, "inner.work");
		const insert = named(all, "insert things");
		expect(parentOf(callOuter)).toBe(root.spanContext().spanId);
		expect(parentOf(outer)).toBe(ids(callOuter));
		expect(parentOf(callInner)).toBe(ids(outer));
		expect(parentOf(inner)).toBe(ids(callInner));
		expect(parentOf(insert)).toBe(ids(inner));
		expect(new Set(all.map(s => s.spanContext().traceId))).toEqual(
			new Set([root.spanContext().traceId])
		);
		expect(inner.attributes).toMatchObject({
			"rpc.service": "inner",
			"rpc.method": "inner.work",
			"moleculer.node": "n1"
		});
		expect(insert.attributes).toMatchObject({
			"db.collection.name": "things",
			"db.operation.name": "insert"
		});
		// The log line written in outer.run names its span.
		expect(logged.at(-1)).toMatchObject({
			traceId: root.spanContext().traceId,
			spanId: ids(outer)
		});
	});

	it("marks the failed spans with the error's type", async () => {
		const { done } = inTrace(() => broker.call("outer.run", { fail: true }));
		await expect(done).rejects.toMatchObject({ type: "OUT_OF_STOCK" });
		const all = await spans();
		for (const name of ["inner.work", "call inner.work", "outer.run"]) {
			const s = named(all, name);
			expect({ name, status: s.status.code, type: s.attributes["error.type"] }).toEqual({
				name,
				status: 2,
				type: "OUT_OF_STOCK"
			});
		}
	});

	it("starts no trace of its own: a call outside any trace makes no span, and its log lines no ids", async () => {
		await broker.call("outer.run", {});
		expect(await spans()).toEqual([]);
		expect(logged.at(-1)).not.toHaveProperty("traceId");
	});

	it("does no span work under an unsampled trace: no spans, no context handed to the callee", async () => {
		const seen: unknown[] = [];
		const watcher = broker.createService({
			name: "watcher",
			actions: { look: (ctx: Context) => void seen.push(ctx.headers.traceparent) }
		});
		await broker.waitForServices("watcher");
		const unsampled = trace.wrapSpanContext({
			traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
			spanId: "00f067aa0ba902b7",
			traceFlags: 0,
			isRemote: true
		});
		await context.with(trace.setSpan(context.active(), unsampled), async () => {
			await broker.call("outer.run", {});
			await broker.call("watcher.look", {});
		});
		expect(await spans()).toEqual([]);
		expect(seen).toEqual([undefined]);
		await broker.destroyService(watcher);
	});
	it("never writes the headers into a caller's own options (a constant without parentCtx)", async () => {
		const OPTIONS = { timeout: 5000 };
		const { done } = inTrace(() => broker.call("inner.work", {}, OPTIONS));
		await done;
		expect(OPTIONS).toEqual({ timeout: 5000 });
		expect(named(await spans(), "inner.work")).toBeDefined();
	});

	it("passes a request's unsampled traceparent from call to call in ctx.headers, making no spans", async () => {
		const seen: unknown[] = [];
		const watcher = broker.createService({
			name: "relay",
			actions: {
				first: (ctx: Context) => ctx.call("relay.second", {}),
				second: (ctx: Context) => void seen.push(ctx.headers.traceparent)
			}
		});
		await broker.waitForServices("relay");
		const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
		// As the gateway hands an unsampled request to its action: in the call's headers, no context entered.
		await broker.call("relay.first", {}, { headers: { traceparent } });
		expect(seen).toEqual([traceparent]);
		expect(await spans()).toEqual([]);
		await broker.destroyService(watcher);
	});
});

describe("middlewares/tracing: the events of an unsampled request", () => {
	const exporter = new InMemorySpanExporter();
	const tracing = new Tracing(cfg, { namespace: "t", nodeID: "n2" }, exporter);
	const middleware = TracingMiddleware(tracing) as unknown as {
		localChannel(
			next: (ctx: Context, raw?: unknown) => Promise<unknown>,
			chan: { name: string; group: string }
		): (ctx: Context, raw?: unknown) => Promise<unknown>;
	};
	const UNSAMPLED = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
	const SAMPLED = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	const broker = new ServiceBroker({
		logger: false,
		nodeID: "n2",
		// Registered as moleculer.config.ts does (the last one registered wraps outermost: tracing outside the scope).
		middlewares: [RequestContextMiddleware, middleware as never]
	});
	const written: unknown[] = [];
	broker.createService({
		name: "writer",
		actions: {
			// What an outbox event stores of the trace it was written in.
			write: async () => void written.push(currentTraceHeaders())
		}
	});
	beforeAll(() => broker.start());
	afterAll(() => broker.stop());
	beforeEach(() => {
		written.length = 0;
		exporter.reset();
	});

	it("an event written by an unsampled request carries its unsampled traceparent", async () => {
		await broker.call("writer.write", {}, { headers: { traceparent: UNSAMPLED } });
		expect(written).toEqual([{ traceparent: UNSAMPLED }]);
		// Outside any request, nothing: an event of a sweeper carries no trace.
		await broker.call("writer.write", {});
		expect(written[1]).toEqual({});
	});

	it("its consumer records nothing and starts no trace, whatever the carrier; a sampled one's consumer joins", async () => {
		const consumed: string[] = [];
		const handler = middleware.localChannel(async () => void consumed.push("ran"), {
			name: "orders.created",
			group: "notifications"
		});
		const ctx = { params: { eventId: "e1" } } as unknown as Context;
		await handler(ctx, { headers: { traceparent: UNSAMPLED } });
		// A JetStream message's headers are read with get().
		await handler(ctx, { headers: { get: (k: string) => (k === "traceparent" ? UNSAMPLED : "") } });
		await tracing.flush();
		expect(consumed).toEqual(["ran", "ran"]);
		expect(exporter.getFinishedSpans()).toEqual([]);
		await handler(ctx, { headers: { traceparent: SAMPLED } });
		await tracing.flush();
		const [span] = exporter.getFinishedSpans();
		expect(span.name).toBe("consume orders.created");
		expect(span.spanContext().traceId).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
		expect(span.parentSpanContext?.spanId).toBe("00f067aa0ba902b7");
	});
});

describe("adapters/tracing export", () => {
	/** An exporter that waits for `release` before answering each export with `outcome`. */
	function exporter(outcome: { code: 0 | 1; error?: Error }) {
		const batches: number[] = [];
		let release!: () => void;
		const released = new Promise<void>(resolve => (release = resolve));
		return {
			batches,
			release,
			export(spans: unknown[], done: (r: { code: number; error?: Error }) => void) {
				batches.push(spans.length);
				void released.then(() => done(outcome));
			},
			shutdown: async () => undefined
		};
	}
	const traced = (tracing: Tracing, n: number) => {
		const root = tracing.tracer.startSpan("request");
		context.with(trace.setSpan(context.active(), root), () => {
			for (let i = 0; i < n; i++) tracing.tracer.startSpan(`op ${i}`).end();
		});
		root.end();
	};

	it("holds at most OTEL_BSP_MAX_QUEUE_SIZE spans (and one batch in flight) while the collector is slow", async () => {
		const slow = exporter({ code: 0 });
		const cfg = loadConfig({
			TRACING_ENABLED: "true",
			OTEL_BSP_MAX_QUEUE_SIZE: "5",
			OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "5",
			OTEL_BSP_SCHEDULE_DELAY: "600000"
		}).tracing!;
		const tracing = new Tracing(cfg, { namespace: "t", nodeID: "n2" }, slow as never);
		traced(tracing, 50);
		const flushed = tracing.flush();
		slow.release();
		await flushed;
		// The queue (5) and the one batch being exported (5): the other 41 spans were dropped, not held.
		expect(slow.batches.reduce((a, b) => a + b, 0)).toBe(10);
	});

	it("reports a failed export to the broker's logger, at most once a minute, and the work goes on", async () => {
		const down = exporter({ code: 1, error: new Error("collector down") });
		down.release();
		const tracing = new Tracing(
			loadConfig({ TRACING_ENABLED: "true", OTEL_BSP_SCHEDULE_DELAY: "5" }).tracing!,
			{ namespace: "t", nodeID: "n3" },
			down as never
		);
		const warnings: unknown[][] = [];
		attachTracing(
			{ getLogger: () => ({ warn: (...args: unknown[]) => warnings.push(args) }) },
			tracing
		);
		const until = async (check: () => boolean) => {
			while (!check()) await new Promise(resolve => setTimeout(resolve, 5));
		};
		for (let i = 1; i <= 3; i++) {
			traced(tracing, 1);
			await until(() => down.batches.length === i);
		}
		await until(() => warnings.length > 0);
		await tracing.shutdown(1000);
		expect(warnings).toEqual([
			[
				"Trace export failed; spans are dropped until the collector answers",
				{ error: "collector down" }
			]
		]);
	});
});
