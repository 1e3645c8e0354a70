/**
 * Distributed tracing (issue 22, docs/tracing.md): a purchase through a multi-process cluster on a real nats-server,
 * exported over OTLP/HTTP to a loopback receiver, is one trace, continued from the client's `traceparent`, whose
 * spans cover the gateway, every service it reaches and every durable event's consumers, with their parents right;
 * and a consumer that only runs after its node was killed and restarted still joins it.
 */
import { type TestCluster, api, startCluster } from "../helpers/flashmart-cluster";
import { ADDRESS, ADMIN, eventually, shop, unique } from "../helpers/shop";
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from "../helpers/otlp-receiver";
import { ancestors, clientTrace, consumed, purchase as tracedPurchase } from "../helpers/tracing";

const SERVICES = ["users", "products", "inventory", "carts", "orders", "payments", "notifications"];

describe("tracing", () => {
	let cluster: TestCluster;
	let receiver: OtlpReceiver;
	let s: ReturnType<typeof shop>;

	beforeAll(async () => {
		receiver = await startOtlpReceiver();
		cluster = await startCluster({
			services: SERVICES,
			env: {
				ADMIN_EMAIL: ADMIN.email,
				ADMIN_PASSWORD: ADMIN.password,
				TRACING_ENABLED: "true",
				TRACING_SAMPLE_RATIO: "1",
				TRACING_TRUSTED_CLIENTS: "loopback",
				OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
				OTEL_BSP_SCHEDULE_DELAY: "200"
			}
		});
		s = shop(cluster);
	}, 120_000);
	afterAll(async () => {
		await cluster?.stop();
		await receiver?.close();
	});

	const purchase = (traceparent: string) => tracedPurchase(s, traceparent);

	it("one purchase is one trace: gateway → carts → orders → inventory → payments, and the event consumers", async () => {
		const client = clientTrace();
		const { added, checkout, paid } = await purchase(client.traceparent);
		expect([added.status, checkout.status, paid.status]).toEqual([200, 201, 200]);

		// Every answer carries the trace it was part of: the client's trace, a span of the gateway's.
		const answered = [added, checkout, paid].map(r => r.headers.get("traceparent") ?? "");
		for (const tp of answered)
			expect(tp).toMatch(new RegExp(`^00-${client.traceId}-[0-9a-f]{16}-01$`));
		// X-Request-Id is what it always was: the gateway's own id, not the trace's.
		expect(added.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);

		const spans = await eventually(async () => {
			const got = receiver.trace(client.traceId);
			// The gateway exports its HTTP spans in batches of its own: all three must be in, too.
			const done =
				got.filter(x => x.kind === "server" && x.attributes["http.request.method"]).length >= 3 &&
				consumed(got, "orders.created", "notifications").length > 0 &&
				consumed(got, "payments.succeeded", "orders").length > 0 &&
				consumed(got, "payments.succeeded", "notifications").length > 0;
			return done ? got : null;
		}, 30_000);
		expect(receiver.refused).toEqual([]);

		// The three HTTP spans continue the client's span, and are what the answers named.
		const http = spans.filter(x => x.kind === "server" && x.attributes["http.request.method"]);
		expect(
			http.map(x => [x.name, x.attributes["http.response.status_code"], x.parentSpanId]).sort()
		).toEqual(
			[
				["POST /api/cart/items", 200, client.spanId],
				["POST /api/orders", 201, client.spanId],
				["POST /api/orders/:id/pay", 200, client.spanId]
			].sort()
		);
		expect(http.map(x => x.spanId).sort()).toEqual(answered.map(tp => tp.split("-")[2]).sort());
		for (const x of http) expect(String(x.resource["service.instance.id"])).toMatch(/^gateway0-/);

		// No orphan: every other span's parent is a span of this trace.
		const ids = new Set(spans.map(x => x.spanId));
		for (const x of spans) {
			if (http.includes(x)) continue;
			expect({ span: x.name, parentKnown: ids.has(x.parentSpanId) }).toEqual({
				span: x.name,
				parentKnown: true
			});
		}

		/** The callee span of `action`, checked to be the child of its caller's client span on another node. */
		const callee = (action: string, under: ReceivedSpan) => {
			const found = spans.filter(
				x => x.kind === "server" && x.name === action && ancestors(x, spans).includes(under)
			);
			expect({ action, found: found.length > 0 }).toEqual({ action, found: true });
			const span = found[0];
			const caller = spans.find(x => x.spanId === span.parentSpanId)!;
			expect([caller.kind, caller.name]).toEqual(["client", `call ${action}`]);
			expect(span.attributes["moleculer.node"]).toBe(span.resource["service.instance.id"]);
			expect(String(span.resource["service.instance.id"])).toMatch(
				new RegExp(`^${action.split(".")[0]}-`)
			);
			expect(caller.attributes["moleculer.target.node"]).toBe(span.attributes["moleculer.node"]);
			return span;
		};
		const [addHttp, checkoutHttp, payHttp] = [
			"POST /api/cart/items",
			"POST /api/orders",
			"POST /api/orders/:id/pay"
		].map(name => http.find(x => x.name === name)!);

		callee("carts.add", addHttp);
		const create = callee("orders.create", checkoutHttp);
		callee("inventory.reserve", create);
		const pay = callee("orders.pay", payHttp);
		const payments = spans.find(
			x =>
				x.kind === "server" && x.name.startsWith("payments.") && ancestors(x, spans).includes(pay)
		);
		expect(payments).toBeDefined();

		// Store operations and the provider's charge, under the action that made them.
		const orderWrites = spans.filter(
			x => x.attributes["db.collection.name"] === "orders" && ancestors(x, spans).includes(create)
		);
		expect(orderWrites.map(x => x.attributes["db.operation.name"])).toContain("insert");
		const charge = spans.find(x => x.name === "payment.charge");
		expect(charge && ancestors(charge, spans)).toContain(payments);

		// Durable events: consumer ← producer ← the span that wrote the event into its outbox.
		for (const [channel, group, writtenUnder] of [
			["orders.created", "notifications", create],
			["payments.succeeded", "orders", payments!],
			["payments.succeeded", "notifications", payments!]
		] as const) {
			const consumer = consumed(spans, channel, group)[0];
			const producer = spans.find(x => x.spanId === consumer.parentSpanId)!;
			expect([producer.kind, producer.name]).toEqual(["producer", `publish ${channel}`]);
			expect(ancestors(producer, spans)).toContain(writtenUnder);
			expect(String(consumer.resource["service.instance.id"])).toMatch(new RegExp(`^${group}-`));
		}

		// The notifications node's log lines written for this trace name it and the span they were written in.
		const lines = cluster.nodes
			.get("notifications")!
			.output()
			.split("\n")
			.filter(l => l.includes(client.traceId))
			.map(l => JSON.parse(l) as { traceId: string; spanId: string });
		expect(lines.length).toBeGreaterThan(0);
		const notificationSpans = new Set(
			spans
				.filter(x => String(x.resource["service.instance.id"]).startsWith("notifications-"))
				.map(x => x.spanId)
		);
		for (const line of lines) {
			expect(line.traceId).toBe(client.traceId);
			expect(notificationSpans.has(line.spanId)).toBe(true);
		}
	}, 90_000);

	it("a request without a traceparent starts a new trace, and the answer names it", async () => {
		const res = await api(s.base, "GET", "/api/products?page=1&pageSize=1");
		expect(res.status).toBe(200);
		const [, traceId, spanId] = (res.headers.get("traceparent") ?? "").split("-");
		expect(traceId).toMatch(/^[0-9a-f]{32}$/);
		const root = await eventually(async () => receiver.spans.find(x => x.spanId === spanId));
		expect(root).toMatchObject({ traceId, parentSpanId: "", kind: "server" });
		expect(root.attributes["http.route"]).toBe("/api/products");
	});

	it("a consumer that runs after its node was killed and restarted still joins the trace", async () => {
		await cluster.nodes.get("notifications")!.kill9();
		const client = clientTrace();
		const { paid } = await purchase(client.traceparent);
		expect(paid.status).toBe(200);
		// The orders consumer ran; the notifications consumers could not.
		await eventually(async () =>
			consumed(receiver.trace(client.traceId), "payments.succeeded", "orders").length > 0 ? 1 : 0
		);
		expect(consumed(receiver.trace(client.traceId), "payments.succeeded", "notifications")).toEqual(
			[]
		);

		const nodeID = `notifications-restarted-${Date.now()}`;
		await cluster.startService("notifications", { NODE_ID: nodeID });
		const spans = await eventually(async () => {
			const got = receiver.trace(client.traceId);
			return consumed(got, "orders.created", "notifications").length > 0 &&
				consumed(got, "payments.succeeded", "notifications").length > 0
				? got
				: null;
		}, 30_000);
		for (const channel of ["orders.created", "payments.succeeded"]) {
			const consumer = consumed(spans, channel, "notifications")[0];
			expect(consumer.resource["service.instance.id"]).toBe(nodeID);
			const producer = spans.find(x => x.spanId === consumer.parentSpanId);
			expect(producer).toMatchObject({ kind: "producer", name: `publish ${channel}` });
			// Published (long) before the consumer's node came back.
			expect(producer!.endNs < consumer.startNs).toBe(true);
		}
	}, 90_000);

	it("an event its node died before publishing is published into the trace after the restart", async () => {
		// This orders node dies the moment it is about to publish an orders.paid event (as in durability.spec.ts).
		await cluster.nodes.get("orders")!.stop();
		const crashing = await cluster.startService("orders", {
			TEST_CRASH_BEFORE_PUBLISH: "orders.paid"
		});
		const client = clientTrace();
		const headers = { traceparent: client.traceparent };
		const { token } = await s.customer();
		const productId = await s.product(5);
		await s.addToCart(token, productId, 1);
		const order = (
			await eventually(async () => {
				const res = await api(s.base, "POST", "/api/orders", {
					token,
					headers: { ...headers, "Idempotency-Key": unique("key") },
					body: { shippingAddress: ADDRESS }
				});
				return res.status === 201 ? res : null;
			})
		).body;
		const paid = await api(s.base, "POST", `/api/orders/${order.id}/pay`, {
			token,
			headers: { ...headers, "Idempotency-Key": unique("pay") },
			body: { paymentToken: "tok_visa" }
		});
		expect([503, 504]).toContain(paid.status);
		expect(await crashing.exited).toBe("SIGKILL");

		const nodeID = `orders-restarted-${Date.now()}`;
		await cluster.startService("orders", { NODE_ID: nodeID });
		const publish = await eventually(async () =>
			receiver
				.trace(client.traceId)
				.find(x => x.kind === "producer" && x.name === "publish orders.paid")
		);
		// Only the context stored with the event can have put the restarted node's publish into this trace: it serves
		// no request of it, and a publish without a stored context starts no span.
		expect(publish.resource["service.instance.id"]).toBe(nodeID);
		expect(publish.parentSpanId).toMatch(/^[0-9a-f]{16}$/);
		const restartedSpans = receiver
			.trace(client.traceId)
			.filter(x => x.resource["service.instance.id"] === nodeID);
		expect(restartedSpans.map(x => x.spanId)).not.toContain(publish.parentSpanId);
	}, 90_000);
});
