import type { AddressInfo } from "node:net";
import { ServiceBroker } from "moleculer";
import { FlashMartPrometheusReporter } from "../../../../adapters/patches/prometheus-reporter.patch";

describe("FlashMartPrometheusReporter: Moleculer's own metrics", () => {
	const reporter = new FlashMartPrometheusReporter({ port: 0, path: "/metrics" });
	const broker = new ServiceBroker({
		logger: false,
		metrics: { enabled: true, reporter: [reporter as never] }
	});
	broker.createService({ name: "echo", actions: { hello: () => "hi" } });

	beforeAll(() => broker.start());
	afterAll(() => broker.stop());

	it("keeps the request time as a bucket histogram with _sum and _count, without quantiles or rates", async () => {
		for (let i = 0; i < 5; i++) await broker.call("echo.hello");
		const registry = broker.metrics as unknown as {
			getMetric(name: string): { quantiles?: unknown; rate?: unknown; buckets?: number[] };
		};
		const time = registry.getMetric("moleculer.request.time");
		expect(time.quantiles).toBeFalsy();
		expect(time.rate).toBeFalsy();
		expect(time.buckets?.length).toBeGreaterThan(0);
		expect(registry.getMetric("moleculer.request.total").rate).toBeFalsy();

		const { port } = (
			reporter as unknown as { server: { address(): AddressInfo } }
		).server.address();
		const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
		expect(text).toMatch(/^moleculer_request_time_bucket\{.*action="echo.hello".*le="\+Inf"\} 5$/m);
		expect(text).toMatch(/^moleculer_request_time_count\{.*action="echo.hello".*\} 5$/m);
		expect(text).toMatch(/^moleculer_request_time_sum\{.*action="echo.hello".*\} /m);
		expect(text).toMatch(/^moleculer_request_total\{.*action="echo.hello".*\} 5$/m);
		expect(text).not.toMatch(/moleculer_request_time\{.*quantile=/);
	});
});
