/**
 * Every known label set of the business counters exists at 0 once the service that counts it started, before its
 * first event (the Prometheus client convention), so `rate()` and `increase()` see that first event.
 */
import { ServiceBroker } from "moleculer";
import BusinessMetricsMiddleware from "../../../middlewares/business-metrics.middleware";
import { METRIC, PAYMENT_OUTCOMES, USER_AUTH_EVENTS } from "../../../lib/metric-names";
import { ALL_STATES } from "../../../lib/order-state";

type Snapshot = Array<{ labels: Record<string, string>; value: number }>;

function series(broker: ServiceBroker, name: string): Snapshot {
	return (broker.metrics.getMetric(name) as unknown as { snapshot(): Snapshot }).snapshot();
}

describe("BusinessMetrics middleware", () => {
	let broker: ServiceBroker;
	beforeEach(() => {
		broker = new ServiceBroker({
			logger: false,
			metrics: { enabled: true, reporter: [] },
			middlewares: [BusinessMetricsMiddleware]
		});
	});
	afterEach(() => broker.stop());

	it("creates each known label set at 0 for the services this node runs, and no other", async () => {
		broker.createService({ name: "users" });
		broker.createService({
			name: "orders",
			channels: { "payments.succeeded": { name: "ns1.payments.succeeded" } }
		} as never);
		await broker.start();
		const auth = series(broker, METRIC.AUTH_EVENTS);
		expect(auth.map(s => s.labels.event).sort()).toEqual([...USER_AUTH_EVENTS].sort());
		expect(auth.find(s => s.labels.event === "login_failed")?.value).toBe(0);
		expect(auth.every(s => s.value === 0)).toBe(true);
		expect(
			series(broker, METRIC.ORDERS)
				.map(s => s.labels.status)
				.sort()
		).toEqual([...ALL_STATES].sort());
		expect(series(broker, METRIC.EVENTS_DEAD_LETTERED)).toEqual([
			expect.objectContaining({ labels: { channel: "ns1.payments.succeeded" }, value: 0 })
		]);
		// No payments service on this node: no payments series.
		expect(series(broker, METRIC.PAYMENTS)).toEqual([]);
	});

	it("keeps counting from 0, and leaves a series that already counted as it was", async () => {
		broker.createService({ name: "payments" });
		broker.metrics.increment(METRIC.PAYMENTS, { outcome: "declined" }, 2);
		await broker.start();
		const payments = series(broker, METRIC.PAYMENTS);
		expect(payments.map(s => s.labels.outcome).sort()).toEqual([...PAYMENT_OUTCOMES].sort());
		expect(payments.find(s => s.labels.outcome === "declined")?.value).toBe(2);
		expect(payments.find(s => s.labels.outcome === "succeeded")?.value).toBe(0);
	});
});
