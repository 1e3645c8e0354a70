/**
 * FlashMart's business metrics (`flashmart_*`), defined once and registered on every node when its broker is
 * created, so services only increment or observe them by name and every node exposes the same families.
 *
 * Each counter's known label sets start at 0 when the service that counts them starts (the Prometheus client
 * convention): a series that appears at its first value has no earlier sample, so `rate()` and `increase()` miss
 * that first event (a first login failure, dead letter or declined payment would read as none).
 */
import type { Middleware, Service, ServiceBroker } from "moleculer";
import {
	DISCOUNT_REDEMPTION_OUTCOMES,
	GATEWAY_AUTH_EVENTS,
	HOLD_EXPIRY_KINDS,
	METRIC,
	PAYMENT_OUTCOMES,
	RESERVATION_FAILURE_REASONS,
	USER_AUTH_EVENTS
} from "../lib/metric-names";
import { ALL_STATES } from "../lib/order-state";

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
	},
	{
		type: "gauge",
		name: METRIC.OUTBOX_PENDING,
		labelNames: ["service"],
		description:
			"Durable events written to this service's outbox and not yet published (its relay's last count)"
	},
	{
		type: "gauge",
		name: METRIC.OUTBOX_OLDEST_PENDING,
		labelNames: ["service"],
		unit: "seconds",
		description: "Age of the oldest event waiting in this service's outbox (0 when none waits)"
	},
	{
		type: "counter",
		name: METRIC.SALE_CHECKOUTS,
		labelNames: ["sale", "outcome"],
		description: "Sale lines inventory was asked to reserve, by sale and outcome"
	},
	{
		type: "gauge",
		name: METRIC.SALE_UNITS_LEFT,
		labelNames: ["sale", "product"],
		description: "Units of a sale item not yet held or sold (this inventory node's last reading)"
	},
	{
		type: "gauge",
		name: METRIC.SALES_LIVE,
		description: "Sales between their start and end (this inventory node's last reading)"
	},
	{
		type: "counter",
		name: METRIC.CHECKOUT_REJECTIONS,
		labelNames: ["reason"],
		description: "Checkouts refused at once, before any stock was asked for, by reason"
	},
	{
		type: "gauge",
		name: METRIC.HOLDS_OPEN,
		description:
			"Stock holds open (reserved for unpaid orders), as inventory's last sweep counted them"
	},
	{
		type: "counter",
		name: METRIC.HOLD_EXPIRIES,
		labelNames: ["kind"],
		description: "Holds inventory released because their order was not paid in time, by kind"
	},
	{
		type: "counter",
		name: METRIC.DISCOUNT_REDEMPTIONS,
		labelNames: ["outcome"],
		description: "Discount code redemptions at checkout: taken, refused (and why), or given back"
	},
	{
		type: "counter",
		name: METRIC.NET_REVENUE,
		labelNames: ["currency"],
		description: "Orders paid, in minor units, net of discounts and tax (shipping included)"
	}
] as const;

/** The label sets each service counts, by service name: created at 0 when that service starts on a node. */
const KNOWN_LABELS: Readonly<Record<string, ReadonlyArray<[string, Record<string, string>[]]>>> = {
	users: [[METRIC.AUTH_EVENTS, USER_AUTH_EVENTS.map(event => ({ event }))]],
	api: [
		[METRIC.AUTH_EVENTS, GATEWAY_AUTH_EVENTS.map(event => ({ event }))],
		// Refused by an orders node's bulkhead, counted where the refusal is answered.
		[METRIC.CHECKOUT_REJECTIONS, [{ reason: "overloaded" }]]
	],
	payments: [[METRIC.PAYMENTS, PAYMENT_OUTCOMES.map(outcome => ({ outcome }))]],
	orders: [
		[METRIC.ORDERS, ALL_STATES.map(status => ({ status }))],
		[METRIC.CHECKOUT_REJECTIONS, [{ reason: "sold_out" }]]
	],
	inventory: [
		[METRIC.RESERVATION_FAILURES, RESERVATION_FAILURE_REASONS.map(reason => ({ reason }))],
		[METRIC.HOLD_EXPIRIES, HOLD_EXPIRY_KINDS.map(kind => ({ kind }))]
	],
	pricing: [
		[METRIC.DISCOUNT_REDEMPTIONS, DISCOUNT_REDEMPTION_OUTCOMES.map(outcome => ({ outcome }))]
	]
};

/**
 * The dead-letter `channel` labels of a service: the channels it consumes, named as @moleculer/channels names them
 * (the definition's `name`, else the key with the adapter's prefix, the namespace).
 */
function consumedChannels(service: Service): string[] {
	const channels = (service.schema as { channels?: Record<string, unknown> }).channels;
	const adapter = (
		service.broker as unknown as { channelAdapter?: { addPrefixTopic(t: string): string } }
	).channelAdapter;
	return Object.entries(channels ?? {}).map(
		([key, def]) => (def as { name?: string } | null)?.name ?? adapter?.addPrefixTopic(key) ?? key
	);
}

/** Adds 0 to a counter's series: creates it at 0, leaves one that already counted as it is. */
function startAtZero(broker: ServiceBroker, name: string, labels: Record<string, string>): void {
	broker.metrics.increment(name, labels, 0);
}

const BusinessMetricsMiddleware = {
	name: "BusinessMetrics",
	created(broker: ServiceBroker) {
		if (!broker.isMetricsEnabled()) return;
		// Copies: the registry keeps (and may change) what it is given; the definitions stay read-only. (JSON, not
		// structuredClone: the registry wants plain objects of this realm, and jest runs modules in a realm of its own.)
		for (const def of DEFINITIONS) broker.metrics.register(JSON.parse(JSON.stringify(def)));
	},
	serviceStarted(service: Service) {
		const broker = service.broker;
		if (!broker.isMetricsEnabled()) return;
		for (const [name, labelSets] of KNOWN_LABELS[service.name] ?? []) {
			for (const labels of labelSets) startAtZero(broker, name, labels);
		}
		for (const channel of consumedChannels(service)) {
			startAtZero(broker, METRIC.EVENTS_DEAD_LETTERED, { channel });
		}
	}
} as unknown as Middleware;

export default BusinessMetricsMiddleware;
