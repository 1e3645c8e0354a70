import type { AddressInfo } from "node:net";
import { MetricReporters, ServiceBroker } from "moleculer";
import {
	FlashMartPrometheusReporter,
	TARGET,
	probe
} from "../../../../adapters/patches/prometheus-reporter.patch";
import { outOfRange } from "../../../../adapters/patches/target";

/** A broker with one bucket histogram (no quantiles) observed twice, reported by `reporter`. */
async function withHistogram(reporter: object): Promise<{ text: string }> {
	const broker = new ServiceBroker({
		logger: false,
		metrics: { enabled: true, reporter: [reporter as never] }
	});
	broker.metrics.register({ name: "test.latency", type: "histogram", buckets: [0.1, 1] } as never);
	broker.metrics.observe("test.latency", 0.05);
	broker.metrics.observe("test.latency", 0.5);
	await broker.start();
	try {
		return {
			text: (reporter as { generatePrometheusResponse(): string }).generatePrometheusResponse()
		};
	} finally {
		await broker.stop();
	}
}

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

describe("prometheus-reporter: the Moleculer it was written against", () => {
	it("targets the installed Moleculer", () => {
		expect(TARGET.package).toBe("moleculer");
		expect(outOfRange(TARGET)).toBeNull();
	});

	it("finds the reporter's methods and a generator that asks matchMetricName of every stored metric", () => {
		expect(probe()).toBeNull();
	});

	it("is still needed: Moleculer's own reporter prints a bucket histogram without _sum and _count", async () => {
		// When this fails Moleculer prints them itself, and this reporter would print them a second time.
		const { text } = await withHistogram(
			new MetricReporters.Prometheus({ port: 0, defaultLabels: () => ({}) })
		);
		expect(text).toMatch(/^test_latency_bucket\{le="\+Inf"\} 2$/m);
		expect(text).not.toMatch(/^test_latency_(sum|count)/m);
	});

	it("prints them, once each, bounds ascending", async () => {
		const { text } = await withHistogram(
			new FlashMartPrometheusReporter({ port: 0, defaultLabels: () => ({}) })
		);
		const lines = text.split("\n").filter(l => l.startsWith("test_latency"));
		expect(lines).toEqual([
			'test_latency_bucket{le="0.1"} 1',
			'test_latency_bucket{le="1"} 2',
			'test_latency_bucket{le="+Inf"} 2',
			"test_latency_sum 0.55",
			"test_latency_count 2"
		]);
	});
});

describe("prometheus-reporter outside its range", () => {
	afterEach(() => jest.restoreAllMocks());

	it("warns and reports as Moleculer's own reporter", async () => {
		const warn = jest.spyOn(process, "emitWarning").mockImplementation(() => undefined);
		let Reporter: typeof FlashMartPrometheusReporter | undefined;
		jest.isolateModules(() => {
			jest.doMock("../../../../adapters/patches/target", () => ({
				...jest.requireActual("../../../../adapters/patches/target"),
				outOfRange: () => "moleculer 0.16.0 is outside ~0.15.2"
			}));
			Reporter = (
				require("../../../../adapters/patches/prometheus-reporter.patch") as typeof import("../../../../adapters/patches/prometheus-reporter.patch")
			).FlashMartPrometheusReporter;
		});
		const { text } = await withHistogram(new Reporter!({ port: 0, defaultLabels: () => ({}) }));
		expect(text).toMatch(/^test_latency_bucket\{le="\+Inf"\} 2$/m);
		expect(text).not.toMatch(/^test_latency_(sum|count)/m);
		expect(warn).toHaveBeenCalledWith(
			expect.stringContaining("outside ~0.15.2"),
			expect.objectContaining({ code: "FLASHMART_PATCH_SKIPPED" })
		);
	});
});
