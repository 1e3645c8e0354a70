import { ConfigError, loadConfig } from "../../../config";

describe("config: tracing", () => {
	it("is off by default", () => {
		expect(loadConfig({}).tracing).toBeNull();
	});

	it("reads the OTLP exporter variables as OpenTelemetry defines them", () => {
		const base = { TRACING_ENABLED: "true", SERVICES: "orders" };
		const t = loadConfig({
			...base,
			OTEL_EXPORTER_OTLP_ENDPOINT: "http://jaeger:4318/",
			OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer%20abc, x-tenant=one",
			OTEL_EXPORTER_OTLP_TRACES_HEADERS: "x-tenant=two"
		}).tracing!;
		expect(t.exporter.url).toBe("http://jaeger:4318/v1/traces");
		expect(t.exporter.headers).toEqual({ authorization: "Bearer abc", "x-tenant": "two" });
		expect(t.exporter.timeoutMillis).toBe(10000);
		expect(t.serviceName).toBe("flashmart-orders");
		expect(t.sampleRatio).toBe(1);
		expect(t.batch).toEqual({
			scheduledDelayMillis: 5000,
			exportTimeoutMillis: 30000,
			maxQueueSize: 2048,
			maxExportBatchSize: 512
		});
		// The signal's own endpoint is taken as it is, and wins.
		expect(
			loadConfig({
				...base,
				OTEL_EXPORTER_OTLP_ENDPOINT: "http://a:4318",
				OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://b:4318/custom"
			}).tracing!.exporter.url
		).toBe("http://b:4318/custom");
		expect(loadConfig(base).tracing!.exporter.url).toBe("http://localhost:4318/v1/traces");
		expect(loadConfig({ ...base, OTEL_SERVICE_NAME: "shop" }).tracing!.serviceName).toBe("shop");
	});

	it("stops on a bad value, naming the variable", () => {
		const bad = (env: Record<string, string>, variable: string) => {
			expect(() => loadConfig({ TRACING_ENABLED: "true", ...env })).toThrow(ConfigError);
			try {
				loadConfig({ TRACING_ENABLED: "true", ...env });
			} catch (err) {
				expect((err as ConfigError).variable).toBe(variable);
			}
		};
		bad({ TRACING_SAMPLE_RATIO: "1.5" }, "TRACING_SAMPLE_RATIO");
		bad({ TRACING_TRUSTED_CLIENTS: "not-an-address" }, "TRACING_TRUSTED_CLIENTS");
		bad({ OTEL_EXPORTER_OTLP_ENDPOINT: "jaeger:4318" }, "OTEL_EXPORTER_OTLP_ENDPOINT");
		bad({ OTEL_EXPORTER_OTLP_HEADERS: "no-equals-sign" }, "OTEL_EXPORTER_OTLP_HEADERS");
		bad({ OTEL_EXPORTER_OTLP_TRACES_HEADERS: "a=%zz" }, "OTEL_EXPORTER_OTLP_TRACES_HEADERS");
		bad({ OTEL_EXPORTER_OTLP_COMPRESSION: "brotli" }, "OTEL_EXPORTER_OTLP_COMPRESSION");
	});
});
