/**
 * The gateway's trace context over real HTTP: a `traceparent` is continued only from a trusted peer, every answer
 * names the request's span, and the span gets the route template and the status once answered.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
import { loadConfig } from "../../../../config";
import { attachTracing } from "../../../../adapters/tracing";
import { Tracing } from "../../../../adapters/tracing/tracing";
import { traceHttpRequest } from "../../../../services/api/trace-context";
import type { GatewayRequest } from "../../../../services/api/api.service";

const CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c";
const CLIENT_SPAN = "b7ad6b7169203331";

/** A gateway stand-in: the real hook on a real HTTP server, answering `status` for the route `/api/things/:id`. */
async function gateway(trustedClients: string, status = 200, sampleRatio = "1") {
	const exporter = new InMemorySpanExporter();
	const tracing = new Tracing(
		loadConfig({
			TRACING_ENABLED: "true",
			TRACING_TRUSTED_CLIENTS: trustedClients,
			TRACING_SAMPLE_RATIO: sampleRatio
		}).tracing!,
		{ namespace: "t", nodeID: "gw" },
		exporter
	);
	const broker = { getLogger: () => ({ warn: () => undefined }) };
	attachTracing(broker, tracing);
	const passed: Array<Record<string, unknown> | undefined> = [];
	const server = http.createServer((req, res) => {
		const options: { headers?: Record<string, unknown> } = {};
		traceHttpRequest(broker, req as GatewayRequest, res, options);
		passed.push(options.headers);
		(req as GatewayRequest).$alias = { metricRoute: "/api/things/:id" };
		res.writeHead(status).end();
	});
	await new Promise<void>(resolve => server.listen(0, "127.0.0.1", resolve));
	const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/things/42?x=1`;
	return {
		url,
		passed,
		/** The exported spans, once there are `atLeast` (the span ends when the answer's socket is done with it). */
		async spans(atLeast = 1) {
			const deadline = Date.now() + 5000;
			for (;;) {
				await tracing.flush();
				const got = exporter.getFinishedSpans();
				if (got.length >= atLeast || Date.now() > deadline) return got;
				await new Promise(resolve => setTimeout(resolve, 20));
			}
		},
		close: () => new Promise<void>(resolve => server.close(() => resolve()))
	};
}

const send = (url: string, headers: Record<string, string> = {}) => fetch(url, { headers });

describe("services/api/trace-context", () => {
	it("continues a trusted client's traceparent and tracestate, and answers the gateway's span", async () => {
		const gw = await gateway("loopback");
		const res = await send(gw.url, {
			traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`,
			tracestate: "vendor=abc"
		});
		const [, traceId, spanId, flags] = (res.headers.get("traceparent") ?? "").split("-");
		expect([traceId, flags]).toEqual([CLIENT_TRACE, "01"]);
		expect(spanId).not.toBe(CLIENT_SPAN);
		// The call gets the same context, tracestate included.
		expect(gw.passed[0]).toEqual({
			traceparent: res.headers.get("traceparent"),
			tracestate: "vendor=abc"
		});
		const [span] = await gw.spans();
		expect(span.spanContext().spanId).toBe(spanId);
		expect(span.parentSpanContext?.spanId).toBe(CLIENT_SPAN);
		expect(span.name).toBe("GET /api/things/:id");
		expect(span.attributes).toMatchObject({
			"http.route": "/api/things/:id",
			"http.response.status_code": 200,
			"url.path": "/api/things/42"
		});
		await gw.close();
	});

	it("starts a new trace for a traceparent from a peer it does not trust", async () => {
		const gw = await gateway("10.0.0.0/8");
		const res = await send(gw.url, { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01` });
		const [, traceId] = (res.headers.get("traceparent") ?? "").split("-");
		expect(traceId).toMatch(/^[0-9a-f]{32}$/);
		expect(traceId).not.toBe(CLIENT_TRACE);
		const [span] = await gw.spans();
		expect(span.parentSpanContext).toBeUndefined();
		await gw.close();
	});

	it("starts a new trace for a malformed traceparent, even from a trusted peer", async () => {
		const gw = await gateway("loopback");
		const res = await send(gw.url, { traceparent: `00-${CLIENT_TRACE}-0000000000000000-01` });
		const [, traceId] = (res.headers.get("traceparent") ?? "").split("-");
		expect(traceId).toMatch(/^[0-9a-f]{32}$/);
		expect(traceId).not.toBe(CLIENT_TRACE);
		await gw.close();
	});

	it("keeps a trusted client's decision not to sample, and still answers a traceparent", async () => {
		const gw = await gateway("loopback");
		const res = await send(gw.url, { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-00` });
		expect(res.headers.get("traceparent")).toMatch(
			new RegExp(`^00-${CLIENT_TRACE}-[0-9a-f]{16}-00$`)
		);
		// Recorded nowhere: a request the client sampled, sent after it, is the only span exported.
		await send(gw.url, { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01` });
		const spans = await gw.spans();
		expect(spans.map(s => s.spanContext().traceFlags)).toEqual([1]);
		await gw.close();
	});

	it("samples a new trace once, at the door: an unsampled one answers and passes on flag 00, and records nothing", async () => {
		const gw = await gateway("loopback", 200, "0");
		const res = await send(gw.url);
		const traceparent = res.headers.get("traceparent") ?? "";
		expect(traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
		expect(traceparent).not.toMatch(/^00-0{32}-|-0{16}-/);
		// The action gets the same unsampled context, for the nodes to keep the decision.
		expect(gw.passed[0]).toEqual({ traceparent });
		// A sampled client trace sent after it is the only span exported (ratio 0 samples no new trace).
		await send(gw.url, { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01` });
		const spans = await gw.spans();
		expect(spans.map(s => s.spanContext().traceId)).toEqual([CLIENT_TRACE]);
		await gw.close();
	});

	it("at a ratio, samples a new trace as the span's own sampler does: every answer flagged 01 is exported", async () => {
		const gw = await gateway("loopback", 200, "0.5");
		const answered: string[] = [];
		for (let i = 0; i < 40; i++)
			answered.push((await send(gw.url)).headers.get("traceparent") ?? "");
		const sampled = answered.filter(t => t.endsWith("-01")).map(t => t.split("-")[1]);
		expect(sampled.length).toBeGreaterThan(0);
		expect(sampled.length).toBeLessThan(40);
		const spans = await gw.spans(sampled.length);
		expect(spans.map(s => s.spanContext().traceId).sort()).toEqual([...sampled].sort());
		await gw.close();
	});

	it("marks a 5xx answer's span failed with the status as its error type", async () => {
		const gw = await gateway("", 503);
		await send(gw.url);
		const [span] = await gw.spans();
		expect(span.status.code).toBe(2);
		expect(span.attributes["error.type"]).toBe("503");
		await gw.close();
	});
});
