/**
 * While this node's NATS connection is down, a call to another node fails at once with 503 instead of waiting out its
 * deadline: nats.js would buffer the request until it reconnects, and the caller (a client behind the gateway) would
 * wait the whole REQUEST_TIMEOUT for a 504. A 503 with Retry-After tells it to come back; nothing was sent, so a retry
 * is safe. Local calls (the embedded default, a service on this node) are not affected.
 */
import type { Context, Middleware, ServiceBroker } from "moleculer";
import { natsDisconnected } from "../adapters/patches/nats-connection-state.patch";
import { ServiceUnavailableError } from "../lib/errors";

type Handler = (ctx: Context) => Promise<unknown>;

const TransporterDownMiddleware = {
	name: "TransporterDown",
	remoteAction(this: ServiceBroker, next: Handler) {
		const broker = this as unknown as { transit?: { tx?: unknown } };
		return function failFastWhileDisconnected(ctx: Context) {
			if (natsDisconnected(broker.transit?.tx)) {
				return Promise.reject(
					new ServiceUnavailableError("The cluster's message bus is unreachable, please retry")
				);
			}
			return next(ctx);
		};
	}
} as unknown as Middleware;

export default TransporterDownMiddleware;
