/**
 * One deadline for a whole stop: SHUTDOWN_TIMEOUT from the moment the node is asked to stop.
 *
 * Moleculer's context tracker waits up to `tracking.shutdownTimeout` twice, once for the calls this node is waiting on
 * and again for each service's own requests, so a busy node took twice SHUTDOWN_TIMEOUT and a gateway that first
 * drains its HTTP connections would take longer still. The tracker reads the setting each time it waits, so this
 * sets it to what is left of the one deadline before each wait. Before any of it, a service with a `drain` method
 * (the gateway) stops taking requests and answers the ones it has.
 */
import type { Middleware, ServiceBroker } from "moleculer";

const STARTED = Symbol.for("flashmart.shutdown.startedAt");
/** Of the deadline, what a draining gateway leaves for the broker's own stop and the last log lines. */
const STOP_RESERVE_MS = 500;

/** A service that takes requests from outside the cluster: `drain` answers them and says how many it cut short. */
interface Drainable {
	drain?: (timeoutMs: number) => Promise<number>;
}

type Tracked = ServiceBroker & {
	[STARTED]?: number;
	options: ServiceBroker["options"] & { tracking: { shutdownTimeout: number } };
};

/** Starts the stop's deadline (server.ts at SIGTERM, before the gateway drains); later calls keep the first start. */
export function beginShutdown(broker: ServiceBroker): void {
	(broker as Tracked)[STARTED] ??= Date.now();
}

/** Milliseconds left of the stop's deadline (the whole timeout before the stop began). */
export function shutdownTimeLeft(broker: ServiceBroker, timeout: number): number {
	const started = (broker as Tracked)[STARTED];
	return started === undefined ? timeout : Math.max(0, started + timeout - Date.now());
}

export function ShutdownDeadlineMiddleware(timeout: number): Middleware {
	const refresh = (broker: Tracked) => {
		beginShutdown(broker);
		// 0 would mean "no timeout" to a service with its own $shutdownTimeout; 1 ms means "none left".
		broker.options.tracking.shutdownTimeout = Math.max(1, shutdownTimeLeft(broker, timeout));
	};
	return {
		name: "ShutdownDeadline",
		created(broker: Tracked) {
			const stop = broker.stop.bind(broker);
			broker.stop = async () => {
				refresh(broker);
				// A service that takes requests from outside (the gateway) stops taking them and answers what it has
				// first, leaving a little of the deadline for the broker's own stop.
				for (const service of broker.services as unknown as Drainable[]) {
					if (typeof service.drain !== "function") continue;
					const cut = await service.drain(
						Math.max(0, shutdownTimeLeft(broker, timeout) - STOP_RESERVE_MS)
					);
					if (cut > 0)
						broker.logger.warn(`${cut} request(s) running at the deadline were answered 503`);
				}
				refresh(broker);
				return stop();
			};
		},
		// Runs after the tracker's wait for this node's outgoing calls, before the services' own waits.
		stopping(broker: Tracked) {
			refresh(broker);
		}
	} as unknown as Middleware;
}
