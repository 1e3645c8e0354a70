/**
 * W3C Trace Context at the door: each HTTP request gets a server span, continuing the client's `traceparent` (and
 * `tracestate`) only when the client's socket address is in TRACING_TRUSTED_CLIENTS, else starting a new trace (a
 * stranger must not pick our trace ids or sampling decisions). Every answer carries the request's `traceparent`;
 * `X-Request-Id` is untouched. The span's context goes to the gateway's action in the call options' headers, where
 * the tracing middleware takes it up (an unsampled request's only to be passed on, never entered). Nothing happens
 * with tracing off.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { tracingOf } from "../../adapters/tracing";

/** What this reads of a gateway request (the alias moleculer-web matched names the route template). */
type GatewayRequest = IncomingMessage & {
	$alias?: { metricRoute?: string; fullPath?: string };
	/** Set by the gateway for a HEAD request, which it routes as GET. */
	$head?: boolean;
};

/** Opens the request's span, answers its `traceparent` and hands its context to the call (rootCallOptions). */
export function traceHttpRequest(
	broker: object,
	req: GatewayRequest,
	res: ServerResponse,
	options: { headers?: Record<string, unknown> }
): void {
	const tracing = tracingOf(broker);
	if (!tracing) return;
	const method = req.$head ? "HEAD" : (req.method ?? "GET");
	// Sampling is decided first: an unsampled request (nine in ten at 0.1) gets its `traceparent` and nothing else,
	// no attributes, no span, no context to enter, no hook on its answer.
	const { span, headers } = tracing.beginHttp(
		method,
		() => ({
			"http.request.method": method,
			"url.path": (req.url ?? "/").split("?")[0],
			"url.scheme": "http"
		}),
		tracing.trustsClient(req.socket.remoteAddress) ? req.headers : null
	);
	// `headers` is this request's own object: the call takes it as it is.
	options.headers = options.headers
		? { ...options.headers, ...headers }
		: (headers as Record<string, unknown>);
	if (headers.traceparent) res.setHeader("traceparent", headers.traceparent);
	if (!span) return;
	res.once("close", () => {
		// The operation's template (as the HTTP metrics name it), known once routing is done.
		const alias = req.$alias;
		const route = alias ? (alias.metricRoute ?? alias.fullPath) : undefined;
		if (route) {
			span.updateName(`${method} ${route}`);
			span.setAttribute("http.route", route);
		}
		span.setAttribute("http.response.status_code", res.statusCode);
		if (res.statusCode >= 500) {
			tracing.markFailed(span, String(res.statusCode));
		} else if (!res.writableFinished) {
			span.setAttribute("error.type", "aborted");
		}
		span.end();
	});
}
