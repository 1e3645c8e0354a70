/**
 * The tracing middleware on an in-process broker, spans exported to the SDK's in-memory exporter: caller and callee
 * spans linked through `ctx.headers`, errors marked with their type, store operations traced, log lines carrying the
 * ids of the span they were written in, and no spans for work that belongs to no trace.
 */
import { type Context, ServiceBroker } from "moleculer";
import { context, trace } from "@opentelemetry/api";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { loadConfig } from "../../../../config";
import { Tracing } from "../../../../adapters/tracing";
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
});
