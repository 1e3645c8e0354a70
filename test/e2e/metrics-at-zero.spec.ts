/**
 * A fresh embedded node (node dist/server.js) answers /metrics with every known label set of the business counters
 * at 0 before anything happened, and the gateway's request count of each operation at each status it documents, so
 * the first login failure, declined payment or 504 is an increase Prometheus sees.
 */
import { type Proc, stopAll } from "../../scripts/lib/cluster";
import { startEmbedded } from "../helpers/embedded";

describe("business counters on a fresh node", () => {
	let node: Proc;
	let base: string;

	beforeAll(async () => {
		({ node, base } = await startEmbedded("embedded-metrics-at-zero"));
	});
	afterAll(() => stopAll());

	it("shows each known label set at 0 before the first event", async () => {
		expect(node).toBeDefined();
		const text = await (await fetch(`${base}/metrics`)).text();
		for (const line of [
			'flashmart_auth_events_total{event="login_failed"} 0',
			'flashmart_auth_events_total{event="token_rejected"} 0',
			'flashmart_payments_total{outcome="declined"} 0',
			'flashmart_orders_total{status="paid"} 0',
			'flashmart_reservation_failures_total{reason="out_of_stock"} 0',
			// The gateway's: every operation with each status its OpenAPI operation documents.
			'http_requests_total{method="POST",route="/api/auth/login",status="401"} 0',
			'http_requests_total{method="POST",route="/api/orders",status="504"} 0',
			'http_requests_total{method="GET",route="/api/products/:id",status="404"} 0'
		]) {
			expect(text.split("\n")).toContainEqual(expect.stringMatching(lineRe(line)));
		}
	});
});

/** The exposition line, with whatever other labels the node adds (nodeID, namespace). */
function lineRe(line: string): RegExp {
	const m = /^(\w+)\{(.+)\} (\S+)$/.exec(line)!;
	const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
	return new RegExp(`^${m[1]}\\{(.*,)?${esc(m[2])}(,.*)?\\} ${m[3]}$`);
}
