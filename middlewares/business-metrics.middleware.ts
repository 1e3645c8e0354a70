/**
 * FlashMart's business metrics (`flashmart_*`), defined once and registered on every node when its broker is
 * created, so services only increment or observe them by name and every node exposes the same families.
 */
import type { Middleware, ServiceBroker } from "moleculer";

export const METRIC = {
	AUTH_EVENTS: "flashmart.auth.events.total",
	RESERVATION_FAILURES: "flashmart.reservation.failures.total",
	ORDERS: "flashmart.orders.total",
	CHECKOUT_DURATION: "flashmart.checkout.duration.seconds",
	IDEMPOTENT_REPLAYS: "flashmart.idempotent.replays.total"
} as const;

const DEFINITIONS = [
	{
		type: "counter",
		name: METRIC.AUTH_EVENTS,
		labelNames: ["event"],
		description: "Security events: logins, token rotation and revocation, role and account changes"
	},
	{
		type: "counter",
		name: METRIC.RESERVATION_FAILURES,
		labelNames: ["reason"],
		description: "Checkouts refused for lack of stock"
	},
	{
		type: "counter",
		name: METRIC.ORDERS,
		labelNames: ["status"],
		description: "Orders entering each status"
	},
	{
		type: "histogram",
		name: METRIC.CHECKOUT_DURATION,
		description: "Checkout latency, from request to order",
		unit: "seconds",
		buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
	},
	{
		type: "counter",
		name: METRIC.IDEMPOTENT_REPLAYS,
		labelNames: ["scope"],
		description: "Requests answered from a stored idempotent response"
	}
] as const;

const BusinessMetricsMiddleware = {
	name: "BusinessMetrics",
	created(broker: ServiceBroker) {
		if (!broker.isMetricsEnabled()) return;
		// Copies: the registry keeps (and may change) what it is given; the definitions stay read-only.
		for (const def of DEFINITIONS) broker.metrics.register(structuredClone(def) as never);
	}
} as unknown as Middleware;

export default BusinessMetricsMiddleware;
