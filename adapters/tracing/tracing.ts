/**
 * OpenTelemetry's JS SDK behind the tracing port (index.ts loads this file only when TRACING_ENABLED is on, so a node
 * without tracing never loads the SDK): spans batched and exported over OTLP/HTTP (JSON), the W3C propagator, the
 * context manager the active span follows async code with (context-manager.ts, on the process's one
 * AsyncLocalStorage). Callers (the tracing middleware, the gateway's trace context, the ports) use this class's
 * methods and never import OpenTelemetry themselves.
 */
import {
	type Attributes,
	type Context as OtelContext,
	ROOT_CONTEXT,
	type Span,
	SpanKind,
	SpanStatusCode,
	TraceFlags,
	type TextMapGetter,
	type Tracer,
	context,
	defaultTextMapSetter,
	isSpanContextValid,
	trace
} from "@opentelemetry/api";
import { SharedStorageContextManager } from "./context-manager";
import {
	W3CTraceContextPropagator,
	parseTraceParent,
	setGlobalErrorHandler
} from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
	BasicTracerProvider,
	BatchSpanProcessor,
	type IdGenerator,
	ParentBasedSampler,
	RandomIdGenerator,
	type Sampler,
	SamplingDecision,
	type SpanExporter,
	TraceIdRatioBasedSampler
} from "@opentelemetry/sdk-trace-base";
import { ATTR_SERVICE_NAME } from "@opentelemetry/semantic-conventions";
import proxyaddr from "proxy-addr";
import type { AppConfig } from "../../config";
import { currentScope, setTraceIdsSource } from "../../lib/request-context";
import { type ServiceLike, instrumentPorts } from "./ports";
import type { SpanKindName, TraceHeaders } from "./types";

export type TracingConfig = NonNullable<AppConfig["tracing"]>;

const KINDS: Record<SpanKindName, SpanKind> = {
	internal: SpanKind.INTERNAL,
	server: SpanKind.SERVER,
	client: SpanKind.CLIENT,
	producer: SpanKind.PRODUCER,
	consumer: SpanKind.CONSUMER
};

const propagator = new W3CTraceContextPropagator();

const NO_ATTRIBUTES: Attributes = Object.freeze({});

/**
 * Reads a header from any carrier FlashMart has: a plain object (`ctx.headers`, Node's request headers, the
 * in-process adapter's message) or a nats.js `MsgHdrs` (JetStream messages), whose values are read with `get`.
 */
const carrierGetter: TextMapGetter<unknown> = {
	keys: carrier =>
		carrier && typeof (carrier as { keys?: unknown }).keys === "function"
			? [...(carrier as { keys(): Iterable<string> }).keys()]
			: Object.keys((carrier as object | null) ?? {}),
	get(carrier, key) {
		if (!carrier) return undefined;
		const c = carrier as { get?: (k: string) => string } & Record<string, unknown>;
		if (typeof c.get === "function") return c.get(key) || undefined;
		const value = c[key];
		return typeof value === "string" || Array.isArray(value)
			? (value as string | string[])
			: undefined;
	}
};

/** The W3C headers of `ctx`'s span (empty when there is none). */
export function traceHeadersOf(ctx: OtelContext): TraceHeaders {
	const out: TraceHeaders = {};
	propagator.inject(ctx, out, defaultTextMapSetter);
	return out;
}

/** The trace context in `carrier` on top of `base`; `base` itself when the carrier has none (or a malformed one). */
export function extractTrace(carrier: unknown, base: OtelContext = ROOT_CONTEXT): OtelContext {
	return carrier ? propagator.extract(base, carrier, carrierGetter) : base;
}

/**
 * Whether `headers` carry a `traceparent` that is not sampled: read from its flags alone (their place is fixed in
 * every version of the format), so the work of an unsampled request passes it on and parses nothing.
 */
export function unsampledIn(headers: Record<string, unknown> | null | undefined): boolean {
	const tp = headers?.traceparent;
	return typeof tp === "string" && tp.length >= 55 && (parseInt(tp.slice(53, 55), 16) & 1) === 0;
}

/** Whether `ctx` holds a span to continue: a trace is joined, never started, by calls and store operations. */
export function hasSpan(ctx: OtelContext): boolean {
	const span = trace.getSpan(ctx);
	return !!span && isSpanContextValid(span.spanContext());
}

/**
 * Whether `ctx` holds a sampled span: only then do calls, store operations and events make spans of their own. An
 * unsampled trace records nothing anywhere, so its work skips the span machinery (most requests at a low ratio).
 */
export function isSampled(ctx: OtelContext): boolean {
	const span = trace.getSpan(ctx);
	if (!span) return false;
	const sc = span.spanContext();
	return (sc.traceFlags & TraceFlags.SAMPLED) !== 0 && isSpanContextValid(sc);
}

/**
 * The W3C headers of the span running now, for work that leaves the request (an outbox event published later,
 * perhaps by another node); in an unsampled request, its unsampled `traceparent` (its consumers then record nothing);
 * empty when nothing is traced, so tracing off adds nothing to a stored event.
 */
export function currentTraceHeaders(): TraceHeaders {
	const active = context.active();
	if (hasSpan(active)) return traceHeadersOf(active);
	// An unsampled request enters no context: its decision is the traceparent its scope arrived with.
	const arrived = currentScope()?.traceparent;
	return arrived && unsampledIn({ traceparent: arrived }) ? { traceparent: arrived } : {};
}

/** Whether a message's headers (any carrier: a plain object, a nats.js `MsgHdrs`) carry an unsampled `traceparent`. */
export function unsampledCarrier(carrier: unknown): boolean {
	const tp = carrier ? carrierGetter.get(carrier, "traceparent") : undefined;
	return unsampledIn({ traceparent: Array.isArray(tp) ? tp[0] : tp });
}

/** Marks a span failed: status ERROR, `error.type` (a FlashMart error's stable `type`, else its class), the exception. */
export function failSpan(span: Span, err: unknown): void {
	const e = (err ?? {}) as { type?: unknown; name?: unknown; message?: unknown; code?: unknown };
	const type = typeof e.type === "string" && e.type ? e.type : String(e.name ?? "Error");
	span.setAttribute("error.type", type);
	if (typeof e.code === "number") span.setAttribute("moleculer.error.code", e.code);
	span.setStatus({ code: SpanStatusCode.ERROR, message: String(e.message ?? type) });
	if (err instanceof Error) span.recordException(err);
}

/** Ends `span` when `work` settles, failed if it rejects; answers `work`'s own outcome. */
export function settle<T>(span: Span, work: T | Promise<T>): Promise<T> {
	return Promise.resolve(work).then(
		value => {
			span.end();
			return value;
		},
		(err: unknown) => {
			failSpan(span, err);
			span.end();
			throw err;
		}
	);
}

/** The trace and span ids of the sampled span running now, for log lines (lib/request-context). */
function activeTraceIds(): { traceId: string; spanId: string } | undefined {
	const span = trace.getSpan(context.active());
	if (!span) return undefined;
	const sc = span.spanContext();
	// An unsampled trace is in no backend: a log line naming it would link to nothing.
	if (!isSpanContextValid(sc) || (sc.traceFlags & 1) === 0) return undefined;
	return { traceId: sc.traceId, spanId: sc.spanId };
}

let processWide = false;
/** The context manager and log-correlation source are process-wide (OpenTelemetry's API is): set up once. */
function registerProcessWide(): void {
	if (processWide) return;
	processWide = true;
	context.setGlobalContextManager(new SharedStorageContextManager().enable());
	setTraceIdsSource(activeTraceIds);
}

type WarnLogger = { warn(...args: unknown[]): void };

/** Export failures (collector down, slow) are logged at most this often: spans are dropped, requests never wait. */
const EXPORT_WARNING_INTERVAL_MS = 60_000;

/**
 * What the gateway decided for one HTTP request: the server span when it is sampled (null otherwise: no OpenTelemetry
 * object exists for an unsampled request), and the W3C headers to answer and to hand to the gateway's action.
 */
export interface HttpTrace {
	span: Span | null;
	headers: TraceHeaders;
}

/**
 * Random ids, except that the gateway may name the next root span's trace id: it has already sampled that id with
 * the root sampler, and the SDK, sampling it again with the same deterministic sampler, comes to the same decision.
 */
class GatewayIdGenerator implements IdGenerator {
	private readonly random = new RandomIdGenerator();
	next: string | null = null;

	generateTraceId(): string {
		const id = this.next ?? this.random.generateTraceId();
		this.next = null;
		return id;
	}

	generateSpanId(): string {
		return this.random.generateSpanId();
	}
}

/** One node's tracing: its tracer, its exporter behind a bounded batch processor, and the gateway's trust list. */
export class Tracing {
	readonly tracer: Tracer;
	private readonly provider: BasicTracerProvider;
	private readonly trust: (address: string, hop: number) => boolean;
	private readonly rootSampler: Sampler;
	private readonly ids = new GatewayIdGenerator();
	private logger: WarnLogger | null = null;

	constructor(
		cfg: TracingConfig,
		resource: { namespace: string; nodeID: string },
		exporter: SpanExporter = new OTLPTraceExporter({
			url: cfg.exporter.url,
			headers: cfg.exporter.headers,
			timeoutMillis: cfg.exporter.timeoutMillis,
			compression: cfg.exporter.compression as never
		})
	) {
		registerProcessWide();
		this.trust = proxyaddr.compile(cfg.trustedClients);
		this.rootSampler = new TraceIdRatioBasedSampler(cfg.sampleRatio);
		this.provider = new BasicTracerProvider({
			resource: resourceFromAttributes({
				[ATTR_SERVICE_NAME]: cfg.serviceName,
				"service.namespace": resource.namespace,
				"service.instance.id": resource.nodeID
			}),
			// A trace continued from a client or another node keeps its decision; new ones are sampled by ratio.
			sampler: new ParentBasedSampler({ root: this.rootSampler }),
			idGenerator: this.ids,
			// Bounded: past maxQueueSize spans are dropped, never queued without end nor waited for by a request.
			spanProcessors: [new BatchSpanProcessor(exporter, cfg.batch)]
		});
		this.tracer = this.provider.getTracer("flashmart");
		let lastWarning = 0;
		setGlobalErrorHandler(err => {
			const now = Date.now();
			if (now - lastWarning < EXPORT_WARNING_INTERVAL_MS) return;
			lastWarning = now;
			this.logger?.warn("Trace export failed; spans are dropped until the collector answers", {
				error: (err as Error)?.message ?? String(err)
			});
		});
	}

	/** The trace context in `carrier` on top of `base` (extractTrace). */
	extract(carrier: unknown, base: OtelContext = ROOT_CONTEXT): OtelContext {
		return extractTrace(carrier, base);
	}

	/** The W3C headers of `ctx`'s span (traceHeadersOf). */
	headersOf(ctx: OtelContext): TraceHeaders {
		return traceHeadersOf(ctx);
	}

	/** Whether `headers` carry an unsampled `traceparent` (unsampledIn). */
	unsampledIn(headers: Record<string, unknown> | null | undefined): boolean {
		return unsampledIn(headers);
	}

	/** Whether a message's headers carry an unsampled `traceparent` (unsampledCarrier). */
	unsampledCarrier(carrier: unknown): boolean {
		return unsampledCarrier(carrier);
	}

	/** Whether `ctx` holds a span to join (hasSpan). */
	hasSpan(ctx: OtelContext): boolean {
		return hasSpan(ctx);
	}

	/** Whether `ctx` holds a sampled span (isSampled): the gate of every span a call or a store operation makes. */
	isSampled(ctx: OtelContext): boolean {
		return isSampled(ctx);
	}

	/** Ends `span` when `work` settles (settle). */
	settle<T>(span: Span, work: T | Promise<T>): Promise<T> {
		return settle(span, work);
	}

	/** Spans for a started service's store, payment provider and object store (ports.ts). */
	instrumentPorts(service: object): void {
		instrumentPorts(this, service as ServiceLike);
	}

	/** Reports export failures to `broker`'s logger (index.ts's attachTracing). */
	reportTo(broker: { getLogger(name: string): WarnLogger }): void {
		this.logger = broker.getLogger("tracing");
	}

	/** The empty context: what a request from an untrusted client starts from. */
	readonly root: OtelContext = ROOT_CONTEXT;

	/** The context active now (the span running in this async flow). */
	active(): OtelContext {
		return context.active();
	}

	/** Runs `fn` with `ctx` active. */
	with<T>(ctx: OtelContext, fn: () => T): T {
		return context.with(ctx, fn);
	}

	/** Marks `span` failed with `type` as its `error.type` (for outcomes that are not exceptions, e.g. a 5xx answer). */
	markFailed(span: Span, type: string): void {
		span.setAttribute("error.type", type);
		span.setStatus({ code: SpanStatusCode.ERROR });
	}

	/** Whether the gateway continues a `traceparent` that this peer (the socket's address) sent. */
	trustsClient(remoteAddress: string | undefined): boolean {
		return !!remoteAddress && this.trust(remoteAddress, 0);
	}

	/** Starts a span under `parent` and answers it with the context it is active in. */
	start(
		name: string,
		kind: SpanKindName,
		attributes: Attributes,
		parent: OtelContext
	): { span: Span; ctx: OtelContext } {
		const span = this.tracer.startSpan(name, { kind: KINDS[kind], attributes }, parent);
		return { span, ctx: trace.setSpan(parent, span) };
	}

	/**
	 * Runs `work` in a span under `parent` (default: the active span) and ends it when the work settles. Nothing is
	 * started when there is no trace to join: background timers (relays, sweepers) make no root spans of their own.
	 */
	inSpan<T>(
		name: string,
		kind: SpanKindName,
		attributes: Attributes,
		work: () => T | Promise<T>,
		parent: OtelContext = context.active()
	): T | Promise<T> {
		if (!isSampled(parent)) return work();
		const { span, ctx } = this.start(name, kind, attributes, parent);
		return context.with(ctx, () => settle(span, work()));
	}

	/**
	 * The gateway's trace for one HTTP request, its sampling decided before any OpenTelemetry object is made: from the
	 * trusted client's `traceparent` (`clientHeaders`, null for an untrusted peer), else by the root sampler on a new
	 * trace id. A sampled request gets its server span; an unsampled one only its W3C headers (flag 00, a span id
	 * of its own), so the answer still names the trace and the nodes keep the decision, at the cost of a string.
	 * `attributes` makes the server span's attributes, called only for a sampled request.
	 */
	beginHttp(
		name: string,
		attributes: () => Attributes,
		clientHeaders: Record<string, string | string[] | undefined> | null
	): HttpTrace {
		const raw = clientHeaders?.traceparent;
		// As the W3C propagator reads it: the first of repeated headers, all-zero ids refused.
		const header = Array.isArray(raw) ? raw[0] : raw;
		const parsed = typeof header === "string" ? parseTraceParent(header) : null;
		const client = parsed && isSpanContextValid(parsed) ? parsed : null;
		if (client) {
			if ((client.traceFlags & TraceFlags.SAMPLED) === 0) {
				const tracestate = clientHeaders?.tracestate;
				return {
					span: null,
					headers: {
						traceparent: `00-${client.traceId}-${this.ids.generateSpanId()}-00`,
						...(typeof tracestate === "string" && tracestate ? { tracestate } : {})
					}
				};
			}
			const { span, ctx } = this.start(name, "server", attributes(), extractTrace(clientHeaders));
			return { span, headers: traceHeadersOf(ctx) };
		}
		const traceId = this.ids.generateTraceId();
		// The ratio sampler reads the trace id alone; the span's attributes are made only for a sampled request.
		const decision = this.rootSampler.shouldSample(
			ROOT_CONTEXT,
			traceId,
			name,
			SpanKind.SERVER,
			NO_ATTRIBUTES,
			[]
		);
		if (decision.decision !== SamplingDecision.RECORD_AND_SAMPLED) {
			return {
				span: null,
				headers: { traceparent: `00-${traceId}-${this.ids.generateSpanId()}-00` }
			};
		}
		this.ids.next = traceId;
		const { span, ctx } = this.start(name, "server", attributes(), ROOT_CONTEXT);
		this.ids.next = null;
		return { span, headers: traceHeadersOf(ctx) };
	}

	/** Exports what is buffered now (tests, and an operator's flush). */
	flush(): Promise<void> {
		return this.provider.forceFlush();
	}

	/** Exports what is buffered and stops, within `timeoutMs` (a collector that is down costs no more than that). */
	async shutdown(timeoutMs: number): Promise<void> {
		let timer: NodeJS.Timeout | undefined;
		const deadline = new Promise<void>(resolve => {
			timer = setTimeout(resolve, timeoutMs);
			timer.unref();
		});
		await Promise.race([this.provider.shutdown().catch(() => undefined), deadline]);
		clearTimeout(timer);
	}
}
