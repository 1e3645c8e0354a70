/**
 * Lets an action opt out of Moleculer's per-call request metrics with `metrics: false` in its schema; every other
 * action is measured as before.
 *
 * The gateway's `rest` action opts out. It is moleculer-web's entry point, one call per HTTP request, and the
 * gateway's HTTP metrics (services/api/http-metrics.ts) already count and time each request, with its route and status
 * instead of one `api.rest` label; Moleculer's own metrics on that call cost a large share of the gateway's
 * throughput (bench/REPORT.md).
 *
 * Moleculer 0.15 has no per-action switch. Its Metrics middleware is registered after the user's, so it wraps them.
 * This middleware's `created` hook runs in the broker's constructor, before any service of ours exists. It puts a
 * filter around the Metrics middleware's `localAction` hook. If Moleculer's middleware list does not look as
 * expected, nothing changes and a warning says so.
 */
import type { ServiceBroker } from "moleculer";

type LocalActionHook = (
	this: ServiceBroker,
	next: unknown,
	action: { metrics?: boolean }
) => unknown;

interface MiddlewareHandlerInternals {
	list: Array<{ name?: string; localAction?: LocalActionHook }>;
	registeredHooks: Record<string, LocalActionHook[] | undefined>;
}

/** Puts the opt-out around Moleculer's Metrics middleware of `broker`; true when done. */
export function allowActionMetricsOptOut(broker: ServiceBroker): boolean {
	const handler = (broker as unknown as { middlewares: MiddlewareHandlerInternals }).middlewares;
	const metrics = handler?.list?.find(mw => mw.name === "Metrics");
	const hooks = handler?.registeredHooks?.localAction;
	const at = metrics?.localAction && hooks ? hooks.indexOf(metrics.localAction) : -1;
	if (!hooks || at < 0) return false;
	const measured = hooks[at];
	hooks[at] = function (this: ServiceBroker, next, action) {
		return action?.metrics === false ? next : measured.call(this, next, action);
	};
	return true;
}

export default {
	name: "ActionMetricsOptOut",
	created(broker: ServiceBroker) {
		if (broker.isMetricsEnabled() && !allowActionMetricsOptOut(broker)) {
			broker.logger.warn(
				"Moleculer's Metrics middleware was not found: actions with metrics: false are measured anyway"
			);
		}
	}
};
