/**
 * FlashMart's business metrics (`flashmart_*`), defined once and registered on every node when its broker is
 * created, so services only increment or observe them by name and every node exposes the same families.
 */
import type { Middleware, ServiceBroker } from "moleculer";
import { METRIC } from "../lib/metric-names";

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
	},
	{
		type: "counter",
		name: METRIC.PAYMENTS,
		labelNames: ["outcome"],
		description: "Payment outcomes: succeeded, declined, timeout (outcome unknown), error, refunded"
	},
	{
		type: "histogram",
		name: METRIC.PAYMENT_DURATION,
		description: "Time the payment provider took to answer a charge",
		unit: "seconds",
		buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
	},
	{
		type: "counter",
		name: METRIC.REVENUE,
		labelNames: ["currency"],
		description: "Money charged, in minor units (refunds not subtracted; see payments refunded)"
	},
	{
		type: "counter",
		name: METRIC.INVENTORY_LOW,
		description: "Times a product's available stock fell below LOW_STOCK_THRESHOLD"
	},
	{
		type: "counter",
		name: METRIC.EVENTS_PUBLISHED,
		labelNames: ["event"],
		description: "Durable events relayed from an outbox to the event stream"
	},
	{
		type: "counter",
		name: METRIC.EVENTS_DEAD_LETTERED,
		labelNames: ["channel"],
		description: "Events a consumer failed too many times, moved to the dead-letter destination"
	}
] as const;

const BusinessMetricsMiddleware = {
	name: "BusinessMetrics",
	created(broker: ServiceBroker) {
		if (!broker.isMetricsEnabled()) return;
		// Copies: the registry keeps (and may change) what it is given; the definitions stay read-only. (JSON, not
		// structuredClone: the registry wants plain objects of this realm, and jest runs modules in a realm of its own.)
		for (const def of DEFINITIONS) broker.metrics.register(JSON.parse(JSON.stringify(def)));
	}
} as unknown as Middleware;

export default BusinessMetricsMiddleware;
