/** The tracing port's own words, shared by its files without importing each other. */
import type { Attributes } from "@opentelemetry/api";

/** The W3C headers of one span: what crosses a node, an outbox and a message. */
export interface TraceHeaders {
	traceparent?: string;
	tracestate?: string;
}

/** OpenTelemetry's span kinds, by name (callers need not load the API to say which). */
export type SpanKindName = "internal" | "server" | "client" | "producer" | "consumer";

/** What the port wrappers (ports.ts) need of a node's tracing: a span around one call. */
export interface SpanRunner {
	inSpan<T>(
		name: string,
		kind: SpanKindName,
		attributes: Attributes,
		work: () => T | Promise<T>
	): T | Promise<T>;
}
