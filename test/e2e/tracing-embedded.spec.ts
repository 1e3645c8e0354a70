/**
 * Tracing in the embedded default (one process, in-process durable events, the embedded S3 server): a purchase under
 * a client's traceparent is one trace whose consumers are children of their publish spans, an image upload traces
 * its object-store write, and a node with tracing off answers no traceparent and exports nothing.
 */
import { startEmbedded } from "../helpers/embedded";
import { api } from "../helpers/flashmart-cluster";
import { type OtlpReceiver, startOtlpReceiver } from "../helpers/otlp-receiver";
import { ADMIN, eventually, shop } from "../helpers/shop";
import { ancestors, clientTrace, consumed, purchase } from "../helpers/tracing";
import { stopAll } from "../../scripts/lib/cluster";

/** A real 1x1 GIF. */
const GIF = Buffer.from("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7", "base64");

describe("tracing, embedded", () => {
	let receiver: OtlpReceiver;
	let base: string;

	beforeAll(async () => {
		receiver = await startOtlpReceiver();
		({ base } = await startEmbedded("tracing-embedded", {
			ADMIN_EMAIL: ADMIN.email,
			ADMIN_PASSWORD: ADMIN.password,
			NODE_ID: "embedded-traced",
			TRACING_ENABLED: "true",
			TRACING_TRUSTED_CLIENTS: "loopback",
			OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
			OTEL_BSP_SCHEDULE_DELAY: "100"
		}));
	}, 60_000);
	afterAll(async () => {
		await stopAll();
		await receiver?.close();
	});

	it("names a HEAD request's span HEAD, though the gateway routes it as GET", async () => {
		const client = clientTrace();
		const res = await fetch(`${base}/api/products?pageSize=1`, {
			method: "HEAD",
			headers: { traceparent: client.traceparent }
		});
		expect(res.status).toBe(200);
		const [span] = await eventually(async () => {
			const http = receiver
				.trace(client.traceId)
				.filter(x => x.kind === "server" && x.attributes["http.request.method"]);
			return http.length > 0 ? http : null;
		});
		expect(span).toMatchObject({
			name: "HEAD /api/products",
			attributes: expect.objectContaining({
				"http.request.method": "HEAD",
				"http.route": "/api/products"
			})
		});
	});

	it("one purchase is one trace, the in-process consumers children of their publish", async () => {
		const client = clientTrace();
		const { paid } = await purchase(shop({ base }), client.traceparent);
		expect(paid.status).toBe(200);
		const spans = await eventually(async () => {
			const got = receiver.trace(client.traceId);
			return consumed(got, "payments.succeeded", "orders").length > 0 &&
				consumed(got, "payments.succeeded", "notifications").length > 0 &&
				consumed(got, "orders.created", "notifications").length > 0
				? got
				: null;
		});
		expect(receiver.refused).toEqual([]);
		expect(new Set(spans.map(x => x.resource["service.instance.id"]))).toEqual(
			new Set(["embedded-traced"])
		);
		const pay = spans.find(x => x.kind === "server" && x.name === "orders.pay")!;
		for (const [channel, group] of [
			["orders.created", "notifications"],
			["payments.succeeded", "orders"],
			["payments.succeeded", "notifications"]
		]) {
			const consumer = consumed(spans, channel, group)[0];
			const producer = spans.find(x => x.spanId === consumer.parentSpanId);
			expect(producer).toMatchObject({ kind: "producer", name: `publish ${channel}` });
		}
		const charge = spans.find(x => x.name === "payment.charge")!;
		expect(ancestors(charge, spans)).toContain(pay);
	});

	it("traces an image upload's write to the object store", async () => {
		const s = shop({ base });
		const productId = await s.product(1);
		const client = clientTrace();
		const form = new FormData();
		form.append("file", new Blob([GIF], { type: "image/gif" }), "dot.gif");
		const res = await fetch(`${base}/api/products/${productId}/images`, {
			method: "POST",
			headers: { Authorization: `Bearer ${await s.admin()}`, traceparent: client.traceparent },
			body: form
		});
		expect(res.status).toBe(201);
		const put = await eventually(async () =>
			receiver.trace(client.traceId).find(x => x.name === "object_store.put")
		);
		const spans = receiver.trace(client.traceId);
		expect(ancestors(put, spans).map(x => x.name)).toContain(`POST /api/products/:id/images`);
	});

	it("with tracing off, answers no traceparent and exports nothing", async () => {
		const { node, base: off } = await startEmbedded("tracing-off", {
			OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
			OTEL_BSP_SCHEDULE_DELAY: "100",
			NODE_ID: "embedded-untraced"
		});
		const client = clientTrace();
		const res = await api(off, "GET", "/api/products?page=1&pageSize=1", {
			headers: { traceparent: client.traceparent }
		});
		expect(res.status).toBe(200);
		expect(res.headers.get("traceparent")).toBeNull();
		// A stopping node exports what it holds before it exits: once it has stopped, any span of it would be here.
		expect(await node.stop()).toBe(0);
		expect(
			receiver.spans.filter(x => x.resource["service.instance.id"] === "embedded-untraced")
		).toEqual([]);
		expect(receiver.trace(client.traceId)).toEqual([]);
	});
});
