/**
 * Bridges Moleculer to OpenTelemetry (adapters/tracing): a client span for every action call on the caller, a server
 * span on the callee (its parent read from `ctx.headers.traceparent`, which Moleculer carries over NATS), a producer
 * span for every durable event published and a consumer span for every one consumed (its parent read from the
 * message's own `traceparent` header, so it joins the trace whenever and wherever it runs), and spans for the
 * started services' ports (adapters/tracing/ports.ts). With tracing off (null) it is a middleware without hooks.
 */
import type { Context, Middleware, ServiceBroker } from "moleculer";
import { type Tracing, attachTracing } from "../adapters/tracing";

/** How long a stopping node waits for its last spans to leave. */
const FLUSH_TIMEOUT_MS = 3000;

/** The gateway's moleculer-web entry action: the HTTP span (services/api/trace-context.ts) stands for it. */
const HTTP_ENTRY_ACTIONS = new Set(["api.rest"]);

type ActionDef = { name: string; service?: { name?: string } };
type ChannelDef = { name: string; group: string };
type Handler = (ctx: Context, ...rest: unknown[]) => Promise<unknown>;
type CallOpts = {
	headers?: Record<string, unknown>;
	parentCtx?: { headers?: Record<string, unknown> };
} & Record<string, unknown>;
type CallFn = (
	action: string | { action?: { name?: string }; name?: string },
	params?: unknown,
	opts?: CallOpts
) => Promise<unknown> & { ctx?: Context };
type SendToChannel = (
	channel: string,
	payload: unknown,
	opts?: { headers?: Record<string, string>; msgID?: string }
) => Promise<void>;

const SYSTEM = { "rpc.system": "moleculer" };

/**
 * The call's options with `headers`. Options naming a parentCtx are this call's own (ctx.call makes them afresh, and
 * Moleculer writes their timeout itself), so they take the headers in place: a copy of them made the rest of every
 * call (the context's creation, the timeout middleware) about three times slower in a micro-benchmark, so that an
 * unsampled request cost four times the CPU of one with tracing off. Other options may be a caller's constant: copied.
 */
function withHeaders(opts: CallOpts, headers: Record<string, unknown>): CallOpts {
	if (!opts.parentCtx) return { ...opts, headers };
	opts.headers = headers;
	return opts;
}

export default function TracingMiddleware(tracing: Tracing | null): Middleware {
	if (!tracing) return { name: "Tracing" } as Middleware;
	let nodeID = "";
	// The channels library prefixes each channel with the namespace; spans name the event as services do.
	let prefix = "";

	return {
		name: "Tracing",

		created(broker: ServiceBroker) {
			nodeID = broker.nodeID;
			prefix = broker.namespace ? `${broker.namespace}.` : "";
			attachTracing(broker, tracing);
		},

		/** The caller's span; its context goes to the callee in `ctx.headers` (local or over NATS). */
		call(next: CallFn): CallFn {
			return function tracedCall(action, params, opts = {}) {
				const parent = tracing.active();
				if (!tracing.isSampled(parent)) {
					// Unsampled: nothing is recorded. The caller's unsampled `traceparent` (a request's, read from the
					// gateway) goes on as it is, so the callee keeps the decision without any span or context work.
					const inherited = opts.parentCtx?.headers;
					if (!opts.headers?.traceparent && tracing.unsampledIn(inherited)) {
						const headers = { ...opts.headers, traceparent: inherited!.traceparent as string };
						return next(action, params, withHeaders(opts, headers));
					}
					return next(action, params, opts);
				}
				const name =
					typeof action === "string" ? action : (action.action?.name ?? action.name ?? "");
				const { span, ctx } = tracing.start(
					`call ${name}`,
					"client",
					{ ...SYSTEM, "rpc.method": name, "moleculer.caller.node": nodeID },
					parent
				);
				// A copy: a child context shares its parent's headers object, which must keep the parent's span.
				const headers = { ...opts.headers, ...tracing.headersOf(ctx) };
				const inner = tracing.with(ctx, () => next(action, params, withHeaders(opts, headers)));
				if (inner.ctx) span.setAttribute("moleculer.target.node", inner.ctx.nodeID ?? "");
				const outer = tracing.settle(span, inner) as Promise<unknown> & { ctx?: Context };
				// ctx.call merges the callee's meta back through the promise's `ctx`.
				outer.ctx = inner.ctx;
				return outer;
			};
		},

		localAction(next: Handler, action: ActionDef): Handler {
			if (HTTP_ENTRY_ACTIONS.has(action.name)) {
				return function httpEntry(ctx: Context, ...rest: unknown[]) {
					// An unsampled request is never entered: its calls pass its headers on (call above).
					if (tracing.unsampledIn(ctx.headers)) return next(ctx, ...rest);
					return tracing.with(tracing.extract(ctx.headers), () => next(ctx, ...rest));
				};
			}
			const attributes = {
				...SYSTEM,
				"rpc.service": action.service?.name ?? action.name.split(".")[0],
				"rpc.method": action.name,
				"moleculer.node": nodeID
			};
			return function tracedAction(ctx: Context, ...rest: unknown[]) {
				if (tracing.unsampledIn(ctx.headers)) return next(ctx, ...rest);
				const parent = tracing.extract(ctx.headers, tracing.active());
				return tracing.inSpan(
					action.name,
					"server",
					{ ...attributes, "moleculer.caller.node": ctx.nodeID ?? nodeID },
					() => next(ctx, ...rest),
					parent
				) as Promise<unknown>;
			};
		},

		/**
		 * A consumer span for each delivery, child of the publish; a root one for an event that carries no trace (one
		 * written outside any request, by a sweeper); none for an event of an unsampled trace.
		 */
		localChannel(next: Handler, chan: ChannelDef): Handler {
			const channel = chan.name.startsWith(prefix) ? chan.name.slice(prefix.length) : chan.name;
			return function tracedConsume(ctx: Context, raw?: unknown) {
				const message = raw as { headers?: unknown } | undefined;
				// Published by an unsampled request: nothing is recorded here either, and no trace of its own begins.
				if (tracing.unsampledCarrier(message?.headers)) return next(ctx, raw);
				const { span, ctx: active } = tracing.start(
					`consume ${channel}`,
					"consumer",
					{
						"messaging.system": "moleculer-channels",
						"messaging.operation.type": "process",
						"messaging.destination.name": channel,
						"messaging.consumer.group.name": chan.group,
						"messaging.message.id": String(
							(ctx.params as { eventId?: unknown } | undefined)?.eventId ?? ""
						),
						"moleculer.node": nodeID
					},
					tracing.extract(message?.headers)
				);
				return tracing.with(active, () => tracing.settle(span, next(ctx, raw)));
			};
		},

		serviceStarted(service: unknown) {
			tracing.instrumentPorts(service as object);
		},

		/** The producer span of every durable event: child of the span stored with it, parent of its consumers. */
		started(broker: ServiceBroker) {
			const b = broker as ServiceBroker & { sendToChannel?: SendToChannel };
			const send = b.sendToChannel;
			if (!send) return;
			b.sendToChannel = function tracedSend(channel, payload, opts = {}) {
				const parent = tracing.extract(opts.headers);
				if (!tracing.isSampled(parent)) return send.call(b, channel, payload, opts);
				const { span, ctx } = tracing.start(
					`publish ${channel}`,
					"producer",
					{
						"messaging.system": "moleculer-channels",
						"messaging.operation.type": "send",
						"messaging.destination.name": channel,
						"messaging.message.id": opts.msgID ?? "",
						"moleculer.node": nodeID
					},
					parent
				);
				const headers = { ...opts.headers, ...tracing.headersOf(ctx) } as Record<string, string>;
				return tracing.settle(
					span,
					tracing.with(ctx, () => send.call(b, channel, payload, { ...opts, headers }))
				);
			};
		},

		async stopped() {
			await tracing.shutdown(FLUSH_TIMEOUT_MS);
		}
	} as unknown as Middleware;
}
