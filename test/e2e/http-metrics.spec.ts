/**
 * The gateway's HTTP metrics over real HTTP, against the embedded default (node dist/server.js): requests of each
 * kind, then the Prometheus text of the gateway's /metrics and of its own METRICS_PORT.
 */
import { spawnSync } from "node:child_process";
import { findTool, freePort, stopAll } from "../../scripts/lib/cluster";
import { startEmbedded } from "../helpers/embedded";

interface Sample {
	name: string;
	labels: Record<string, string>;
	value: number;
}

/** The samples of the Prometheus text exposition whose name starts with `prefix`. */
function samples(text: string, prefix: string): Sample[] {
	const out: Sample[] = [];
	for (const line of text.split("\n")) {
		if (!line.startsWith(prefix)) continue;
		const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
		if (!m) continue;
		const labels: Record<string, string> = {};
		for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
			labels[l[1]] = l[2];
		}
		out.push({ name: m[1], labels, value: Number(m[3]) });
	}
	return out;
}

const DURATION_BOUNDS = [
	"0.005",
	"0.01",
	"0.025",
	"0.05",
	"0.1",
	"0.25",
	"0.5",
	"1",
	"2.5",
	"5",
	"10"
];

const count = (all: Sample[], method: string, route: string, status: string) =>
	all.find(
		s =>
			s.name === "http_requests_total" &&
			s.labels.method === method &&
			s.labels.route === route &&
			s.labels.status === status
	)?.value ?? 0;

describe("gateway HTTP metrics", () => {
	let base: string;
	let metricsBase: string;
	let productId: string;
	const unknownId = "NoSuchProduct0000042";

	beforeAll(async () => {
		const metricsPort = await freePort();
		metricsBase = `http://127.0.0.1:${metricsPort}`;
		({ base } = await startEmbedded("embedded-metrics", {
			METRICS_PORT: String(metricsPort)
		}));

		const list = (await (await fetch(`${base}/api/products?pageSize=1`)).json()) as {
			rows: Array<{ id: string }>;
		};
		productId = list.rows[0].id;
		expect((await fetch(`${base}/api/products/${productId}`)).status).toBe(200);
		expect((await fetch(`${base}/api/products/${unknownId}`)).status).toBe(404);
		expect((await fetch(`${base}/api/products/${unknownId}`)).status).toBe(404);
		expect((await fetch(`${base}/api/users/me`)).status).toBe(401);
		expect((await fetch(`${base}/api/no-such-thing/${unknownId}`)).status).toBe(404);
		expect((await fetch(`${base}/api/products.list`)).status).toBe(404);
		expect((await fetch(`${base}/health`)).status).toBe(200);
	});

	afterAll(() => stopAll());

	it("counts requests by operation template and status on the gateway's /metrics", async () => {
		const text = await (await fetch(`${base}/metrics`)).text();
		expect(text).toMatch(/^# TYPE http_requests_total counter$/m);
		const all = samples(text, "http_requests_total");
		expect(count(all, "GET", "/api/products", "200")).toBeGreaterThanOrEqual(1);
		expect(count(all, "GET", "/api/products/:id", "200")).toBe(1);
		expect(count(all, "GET", "/api/products/:id", "404")).toBe(2);
		expect(count(all, "GET", "/api/users/me", "401")).toBe(1);
		// An unknown path and an internal action name alike.
		expect(count(all, "GET", "unmatched", "404")).toBe(2);
		expect(count(all, "GET", "/health", "200")).toBeGreaterThanOrEqual(1);
		expect(count(all, "GET", "/ready", "200")).toBeGreaterThanOrEqual(1);
	});

	it("times requests in a histogram by method and route, without the status", async () => {
		const text = await (await fetch(`${base}/metrics`)).text();
		expect(text).toMatch(/^# TYPE http_request_duration_seconds histogram$/m);
		const buckets = samples(text, "http_request_duration_seconds_bucket").filter(
			s => s.labels.route === "/api/products/:id"
		);
		expect(buckets.map(b => b.labels.le)).toEqual(expect.arrayContaining(["0.005", "10", "+Inf"]));
		expect(buckets.find(b => b.labels.le === "+Inf")?.value).toBe(3);
		for (const b of buckets) expect(b.labels.status).toBeUndefined();
		const unmatched = samples(text, "http_request_duration_seconds_bucket").find(
			s => s.labels.route === "unmatched" && s.labels.le === "+Inf"
		);
		expect(unmatched?.value).toBe(2);
	});

	it("measures each request once: the gateway's entry action is not in Moleculer's request metrics, the actions behind it are", async () => {
		const text = await (await fetch(`${base}/metrics`)).text();
		const actions = (name: string) =>
			samples(text, name)
				.filter(s => s.name === name)
				.map(s => s.labels.action);
		expect(actions("moleculer_request_total")).toContain("products.get");
		expect(actions("moleculer_request_total")).not.toContain("api.rest");
		expect(actions("moleculer_request_time_count")).not.toContain("api.rest");
		expect(actions("moleculer_request_active")).not.toContain("api.rest");
		// The bulkhead's own gauges of it stay: they show the gateway's saturation.
		expect(actions("moleculer_request_bulkhead_inflight")).toContain("api.rest");
	});

	it("prints standard histograms: ascending bounds, +Inf, _sum and _count", async () => {
		const text = await (await fetch(`${base}/metrics`)).text();
		const route = (s: Sample) => s.labels.route === "/api/products/:id";
		const bounds = samples(text, "http_request_duration_seconds_bucket")
			.filter(route)
			.map(b => b.labels.le);
		expect(bounds).toEqual([...DURATION_BOUNDS, "+Inf"]);
		expect(samples(text, "http_request_duration_seconds_count").find(route)?.value).toBe(3);
		expect(samples(text, "http_request_duration_seconds_sum").find(route)?.value).toBeGreaterThan(
			0
		);
	});

	it("is valid Prometheus text for promtool, and our families have no lint problem but Moleculer's nodeID label", async () => {
		const promtool = findTool("promtool");
		for (const url of [`${base}/metrics`, `${metricsBase}/metrics`]) {
			const text = await (await fetch(url)).text();
			const checked = spawnSync(promtool, ["check", "metrics"], { input: text, encoding: "utf8" });
			const report = `${checked.stdout}${checked.stderr}`;
			expect(report).not.toMatch(/error while linting|parse error|text format parsing/i);
			const ours = report
				.split("\n")
				.filter(l => /^(http_|flashmart_)/.test(l))
				.filter(l => !/label names should be written in 'snake_case'/.test(l));
			expect(ours).toEqual([]);
		}
	});

	it("puts no raw id or path in any label, on 5921 and on METRICS_PORT alike", async () => {
		// The gateway's own /metrics was scraped above; the scrape below is the second one counted.
		for (const url of [`${base}/metrics`, `${metricsBase}/metrics`]) {
			const text = await (await fetch(url)).text();
			const http = samples(text, "http_");
			expect(http.length).toBeGreaterThan(0);
			for (const s of http) {
				const values = Object.values(s.labels).join(" ");
				expect(values).not.toContain(productId);
				expect(values).not.toContain(unknownId);
				expect(values).not.toContain("no-such-thing");
				expect(values).not.toContain("products.list");
			}
			const routes = new Set(http.map(s => s.labels.route));
			for (const route of routes) expect(route === "unmatched" || route.startsWith("/")).toBe(true);
			expect(
				count(samples(text, "http_requests_total"), "GET", "/metrics", "200")
			).toBeGreaterThanOrEqual(1);
		}
	});
});
