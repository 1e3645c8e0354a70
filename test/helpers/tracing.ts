/**
 * What the tracing tests share: a client's own trace context, a purchase sent under it, and ways to walk the spans a
 * loopback OTLP receiver got (test/helpers/otlp-receiver.ts).
 */
import { randomBytes } from "node:crypto";
import { api } from "./flashmart-cluster";
import { ADDRESS, shop, unique } from "./shop";
import type { ReceivedSpan } from "./otlp-receiver";

const hex = (bytes: number) => randomBytes(bytes).toString("hex");

/** A client's own span: what a traced front end (or an edge proxy) sends along. */
export function clientTrace() {
	const traceId = hex(16);
	const spanId = hex(8);
	return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` };
}

/** `span`'s ancestors within `spans`, nearest first. */
export function ancestors(span: ReceivedSpan, spans: ReceivedSpan[]): ReceivedSpan[] {
	const byId = new Map(spans.map(s => [s.spanId, s]));
	const out: ReceivedSpan[] = [];
	for (let p = byId.get(span.parentSpanId); p; p = byId.get(p.parentSpanId)) out.push(p);
	return out;
}

/** The consumer spans of `channel` in consumer group `group`. */
export const consumed = (spans: ReceivedSpan[], channel: string, group: string) =>
	spans.filter(
		x =>
			x.kind === "consumer" &&
			x.attributes["messaging.destination.name"] === channel &&
			x.attributes["messaging.consumer.group.name"] === group
	);

/**
 * Add to cart, checkout, pay, each request sent with `traceparent`, by a new customer for a new product. Answers the
 * three answers and the order's id.
 */
export async function purchase(s: ReturnType<typeof shop>, traceparent: string) {
	const { token } = await s.customer();
	const productId = await s.product(5, 1500);
	const headers = { traceparent };
	const added = await api(s.base, "POST", "/api/cart/items", {
		token,
		headers,
		body: { productId, quantity: 2 }
	});
	const checkout = await api(s.base, "POST", "/api/orders", {
		token,
		headers: { ...headers, "Idempotency-Key": unique("key") },
		body: { shippingAddress: ADDRESS }
	});
	expect(checkout.status).toBe(201);
	const paid = await api(s.base, "POST", `/api/orders/${checkout.body.id}/pay`, {
		token,
		headers: { ...headers, "Idempotency-Key": unique("pay") },
		body: { paymentToken: "tok_visa" }
	});
	return { added, checkout, paid, orderId: checkout.body.id as string };
}
