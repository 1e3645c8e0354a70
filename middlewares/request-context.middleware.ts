/**
 * Opens a request scope (lib/request-context) around every local action, event and channel handler, so every log line a
 * request causes, on every node, carries its request id. The id itself crosses NATS as `ctx.requestID`.
 */
import type { Context, Middleware } from "moleculer";
import { runInScope } from "../lib/request-context";
import type { AppMeta } from "../types/meta";

type Handler = (ctx: Context, ...rest: unknown[]) => Promise<unknown>;

function scoped(next: Handler): Handler {
	return function requestScope(ctx: Context, ...rest: unknown[]) {
		const meta = (ctx.meta ?? {}) as AppMeta;
		const traceparent = ctx.headers?.traceparent;
		return runInScope(
			{
				requestId: ctx.requestID ?? undefined,
				userId: meta.user?.id,
				...(typeof traceparent === "string" ? { traceparent } : {})
			},
			() => next(ctx, ...rest)
		);
	};
}

const RequestContextMiddleware = {
	name: "RequestContext",
	localAction: scoped as never,
	localEvent: scoped as never,
	// Durable event consumers (@moleculer/channels with `context: true`): the request that caused the event.
	localChannel: scoped as never
} as Middleware;

export default RequestContextMiddleware;
