/**
 * Registers the log shipper's metrics (`flashmart_logs_*`) on this node's registry and hands them to the shipper,
 * which exists before the broker (the logger is a broker option). On nodes without ELASTICSEARCH_URL it does nothing.
 */
import type { Middleware, ServiceBroker } from "moleculer";
import type { LogShipper } from "../adapters/logging/log-shipper";

export const LOG_METRIC = {
	SHIPPED: "flashmart.logs.shipped.total",
	DROPPED: "flashmart.logs.dropped.total",
	SHIP_ERRORS: "flashmart.logs.ship.errors.total",
	BUFFERED: "flashmart.logs.buffered"
} as const;

export default function LogShippingMiddleware(shipper: LogShipper | null): Middleware {
	return {
		name: "LogShipping",
		created(broker: ServiceBroker) {
			if (!shipper || !broker.isMetricsEnabled()) return;
			const m = broker.metrics;
			const counter = (name: string, description: string) =>
				m.register({ type: "counter", name, description, rate: false } as never);
			counter(LOG_METRIC.SHIPPED, "Log lines accepted by Elasticsearch");
			counter(
				LOG_METRIC.DROPPED,
				"Log lines never shipped: pushed out of a full buffer, or refused"
			);
			counter(
				LOG_METRIC.SHIP_ERRORS,
				"Failed requests to Elasticsearch (each retried with backoff)"
			);
			m.register({
				type: "gauge",
				name: LOG_METRIC.BUFFERED,
				description: "Log lines waiting in memory to be shipped"
			} as never);
			shipper.useMetrics({
				shipped: n => m.increment(LOG_METRIC.SHIPPED, undefined, n),
				dropped: n => m.increment(LOG_METRIC.DROPPED, undefined, n),
				shipError: () => m.increment(LOG_METRIC.SHIP_ERRORS, undefined, 1),
				buffered: n => m.set(LOG_METRIC.BUFFERED, n)
			});
		}
	} as unknown as Middleware;
}
