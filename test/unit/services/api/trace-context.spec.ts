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
async function gateway(trustedClients: string, status = 200) {
	const exporter = new InMemorySpanExporter();
	const tracing = new Tracing(
		loadConfig({ TRACING_ENABLED: "true", TRACING_TRUSTED_CLIENTS: trustedClients }).tracing!,
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

	it("marks a 5xx answer's span failed with the status as its error type", async () => {
		const gw = await gateway("", 503);
		await send(gw.url);
		const [span] = await gw.spans();
		expect(span.status.code).toBe(2);
		expect(span.attributes["error.type"]).toBe("503");
		await gw.close();
	});
});
