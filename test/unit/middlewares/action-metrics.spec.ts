/**
 * `metrics: false` on an action keeps it out of Moleculer's per-call request metrics, on a real broker with metrics
 * on; every other action, and the opted-out action's own behaviour, stay as they were. The gateway's `rest` action
 * is measured by the HTTP metrics instead (`gateway.spec.ts` reads the gateway's /metrics).
 */
import { ServiceBroker } from "moleculer";
import ActionMetricsOptOut from "../../../middlewares/action-metrics.middleware";

function brokerWith(middlewares: object[]) {
	const broker = new ServiceBroker({
		logger: false,
		metrics: { enabled: true, reporter: [] },
		middlewares: middlewares as never
	});
	broker.createService({
		name: "echo",
		actions: {
			measured: () => "measured",
			quiet: { metrics: false, handler: () => "quiet" } as never,
			failing: {
				metrics: false,
				handler: () => {
					throw new Error("boom");
				}
			} as never
		}
	});
	return broker;
}

/** The `moleculer.request.total` count of one action. */
function requests(broker: ServiceBroker, action: string): number {
	const metric = broker.metrics.getMetric("moleculer.request.total") as unknown as {
		snapshot(): Array<{ labels: { action: string }; value: number }>;
	};
	return metric.snapshot().find(item => item.labels.action === action)?.value ?? 0;
}

describe("ActionMetricsOptOut middleware", () => {
	it("leaves actions with metrics: false out of Moleculer's request metrics and measures the rest", async () => {
		const broker = brokerWith([ActionMetricsOptOut]);
		await broker.start();
		try {
			for (let i = 0; i < 3; i++) {
				expect(await broker.call("echo.measured")).toBe("measured");
				expect(await broker.call("echo.quiet")).toBe("quiet");
			}
			await expect(broker.call("echo.failing")).rejects.toThrow("boom");
			expect(requests(broker, "echo.measured")).toBe(3);
			expect(requests(broker, "echo.quiet")).toBe(0);
			expect(requests(broker, "echo.failing")).toBe(0);
			const time = broker.metrics.getMetric("moleculer.request.time") as unknown as {
				snapshot(): Array<{ labels: { action: string }; count: number }>;
			};
			expect(time.snapshot().map(i => [i.labels.action, i.count])).toEqual([["echo.measured", 3]]);
		} finally {
			await broker.stop();
		}
	});

	it("changes nothing without it: Moleculer measures every action", async () => {
		const broker = brokerWith([]);
		await broker.start();
		try {
			await broker.call("echo.quiet");
			expect(requests(broker, "echo.quiet")).toBe(1);
		} finally {
			await broker.stop();
		}
	});
});
