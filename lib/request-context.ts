/**
 * The ids of the request being served, carried through async code with AsyncLocalStorage so that every
 * log line can name them without passing a context around. The request id itself travels between nodes
 * as Moleculer's `ctx.requestID`; the request-context middleware opens a scope for every local action and event.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";

export interface RequestScope {
	requestId?: string;
	userId?: string;
	orderId?: string;
	/**
	 * The W3C `traceparent` the request arrived with (tracing on). The tracing adapter passes an unsampled one on to
	 * work that leaves the request (an outbox event), so its consumers keep the decision instead of starting traces.
	 */
	traceparent?: string;
}

/**
 * The scope and the tracing adapter's context share one AsyncLocalStorage: on Node 20 every storage entered once makes
 * every later promise of the process copy its store, and a second one costs promise-heavy code about a fifth.
 */
interface Store {
	scope?: RequestScope;
	trace?: unknown;
}

const storage = new AsyncLocalStorage<Store>();

/** Runs `fn` inside a new scope (the trace context running now stays active). */
export function runInScope<T>(scope: RequestScope, fn: () => T): T {
	return storage.run({ scope, trace: storage.getStore()?.trace }, fn);
}

/** The scope of the request being served, if any. */
export function currentScope(): RequestScope | undefined {
	return storage.getStore()?.scope;
}

/** Adds ids (e.g. the order being worked on) to the current scope, so later log lines carry them. */
export function bindToScope(ids: Partial<RequestScope>): void {
	const scope = storage.getStore()?.scope;
	if (scope) Object.assign(scope, ids);
}

/** Runs `fn` with `trace` as the active trace context, in the same scope (the tracing adapter's context manager). */
export function runInTraceContext<T>(trace: unknown, fn: () => T): T {
	return storage.run({ scope: storage.getStore()?.scope, trace }, fn);
}

/**
 * Makes `trace` the active trace context of the rest of the current async chain, in the same scope; the returned
 * function restores the store it replaced (OpenTelemetry's experimental `attach`).
 */
export function enterTraceContext(trace: unknown): () => void {
	const previous = storage.getStore();
	storage.enterWith({ scope: previous?.scope, trace });
	let restored = false;
	return () => {
		if (restored) return;
		restored = true;
		// enterWith(undefined) clears the store: what a chain outside any scope had.
		storage.enterWith(previous as Store);
	};
}

/** The trace context active now, if any. */
export function currentTraceContext(): unknown {
	return storage.getStore()?.trace;
}

/** The trace and span a log line was written in. */
export interface TraceIds {
	traceId: string;
	spanId: string;
}

let traceIdsSource: () => TraceIds | undefined = () => undefined;

/**
 * Where the ids of the span running now come from: the tracing adapter sets it when tracing is on (the active
 * OpenTelemetry span follows async code on its own); otherwise there are none, at the cost of one call.
 */
export function setTraceIdsSource(source: () => TraceIds | undefined): void {
	traceIdsSource = source;
}

/** The trace and span ids of the sampled span running now, if any. */
export function currentTraceIds(): TraceIds | undefined {
	return traceIdsSource();
}

/** A request id from a client is kept only when it is a sane token: 1-128 visible, header-safe characters. */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:@=+/-]{1,128}$/;

/** The client's request id when it is sane, else a new one. */
export function acceptRequestId(candidate: unknown): string {
	if (typeof candidate === "string" && SANE_REQUEST_ID.test(candidate)) return candidate;
	return randomUUID();
}
