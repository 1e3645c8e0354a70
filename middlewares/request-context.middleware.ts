/**
 * Opens a request scope (lib/request-context) around every local action and event handler, so every log line a
 * request causes, on every node, carries its request id. The id itself crosses NATS as `ctx.requestID`.
 */
import type { Context, Middleware } from "moleculer";
import { runInScope } from "../lib/request-context";
import type { AppMeta } from "../types/meta";

type Handler = (ctx: Context) => Promise<unknown>;

function scoped(next: Handler): Handler {
	return function requestScope(ctx: Context) {
		const meta = ctx.meta as AppMeta;
		return runInScope({ requestId: ctx.requestID ?? undefined, userId: meta.user?.id }, () =>
			next(ctx)
		);
	};
}

const RequestContextMiddleware: Middleware = {
	name: "RequestContext",
	localAction: scoped as never,
	localEvent: scoped as never
};

export default RequestContextMiddleware;
