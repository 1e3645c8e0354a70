/**
 * The tracing port: OpenTelemetry's JS SDK (tracing.ts), spans exported over OTLP/HTTP, when TRACING_ENABLED is on;
 * nothing at all otherwise, not even the SDK's modules loaded. Moleculer's own tracer is left off: it takes
 * `ctx.requestID` as the trace id, and FlashMart's request ids are free-form (X-Request-Id), so its Jaeger and Zipkin
 * exports would carry broken ids. Instead the W3C trace context travels in `ctx.headers` between nodes
 * (middlewares/tracing.middleware.ts), in the outbox and in the message headers of durable events.
 */
import type { AppConfig } from "../../config";
import type { Tracing } from "./tracing";

export type { Tracing, TracingConfig } from "./tracing";

/** The W3C headers of one span: what crosses a node, an outbox and a message. */
export interface TraceHeaders {
	traceparent?: string;
	tracestate?: string;
}

/** OpenTelemetry's span kinds, by name (callers need not load the API to say which). */
export type SpanKindName = "internal" | "server" | "client" | "producer" | "consumer";

/** The SDK side, once a node has tracing on. */
let sdk: typeof import("./tracing") | null = null;

/** The node's tracing when TRACING_ENABLED is on, else null (and nothing of OpenTelemetry is loaded). */
export function resolveTracing(
	cfg: Pick<AppConfig, "tracing" | "namespace" | "nodeID">
): Tracing | null {
	if (!cfg.tracing) return null;
	// Loaded here, not imported: the SDK and the exporter take ~0.1 s to load, which a node without tracing never pays.
	// eslint-disable-next-line @typescript-eslint/no-require-imports
	sdk ??= require("./tracing") as typeof import("./tracing");
	return new sdk.Tracing(cfg.tracing, { namespace: cfg.namespace, nodeID: cfg.nodeID });
}

/**
 * The W3C headers of the span running now, for work that leaves the request (an outbox event published later,
 * perhaps by another node): empty when nothing is traced, so tracing off adds nothing to a stored event.
 */
export function currentTraceHeaders(): TraceHeaders {
	return sdk ? sdk.currentTraceHeaders() : {};
}

const byBroker = new WeakMap<object, Tracing>();

/** Makes `tracing` the tracing of `broker` (the tracing middleware's `created`), reporting to its logger. */
export function attachTracing(
	broker: object & { getLogger(name: string): { warn(...args: unknown[]): void } },
	tracing: Tracing
): void {
	byBroker.set(broker, tracing);
	tracing.reportTo(broker);
}

/** The tracing of `broker`, or null when it has none (tracing off). */
export function tracingOf(broker: object): Tracing | null {
	return byBroker.get(broker) ?? null;
}
