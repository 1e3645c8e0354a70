/**
 * monitoring/ against the real thing: a real Prometheus (free port, temp storage, 1 s scrapes) scraping a running
 * multi-process FlashMart cluster under load, with the production alert rules (a copy with short `for:`) and a
 * real Alertmanager started through its production entrypoint and config, notifying a loopback webhook.
 *
 * - Every PromQL expression of every dashboard panel and every rule parses in Prometheus; every panel of the rows
 *   fed by FlashMart itself returns data, except the few listed in ALLOWED_EMPTY (each with its reason). Rows fed
 *   by exporters that do not run on a test machine (no Docker) are listed in EXPORTER_ROWS.
 * - The queries operators already use return data.
 * - Killing a backend node makes FlashMartServiceDown fire and reach the webhook; Alertmanager's inhibition holds
 *   back the node-down and latency alerts of the same component.
 */
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import yaml from "js-yaml";
import { type TestCluster, api, startCluster } from "../helpers/flashmart-cluster";
import { type EsStandIn, SHIPPER_ENV, startEsStandIn } from "../helpers/es-stand-in";
import {
	ALERTMANAGER_DIR,
	type PanelQuery,
	allRules,
	loadRules,
	panelQueries,
	substituteGrafanaVariables,
	tool
} from "../helpers/monitoring";
import { freePort, sleep, stopAll, tempDir, waitForStatus } from "../../scripts/lib/cluster";

/** Dashboard rows whose data comes from exporters (no Docker here, so none runs): their queries only must parse. */
const EXPORTER_ROWS: Record<string, string[]> = {
	"flashmart-services": ["NATS server (nats-exporter)"],
	"flashmart-mongodb": ["MongoDB (mongodb-exporter)"],
	"flashmart-system": [
		"Host (node-exporter)",
		"Containers (cAdvisor)",
		"Object store (MinIO) and log store (Elasticsearch)"
	]
};

/** Panels of FlashMart's own rows that may be empty in this run, and why. Keep it short. */
const ALLOWED_EMPTY: Record<string, string> = {
	"Timeouts/s by action":
		"no call times out in a healthy run; the series appears with the first timeout",
	"Breakers opened by caller, action and target node": "no circuit breaker opens in a healthy run"
};

/** The queries operators already type, verbatim. */
const OPERATOR_QUERIES = [
	"rate(http_requests_total[5m])",
	'sum(rate(http_requests_total{status=~"5.."}[5m])) / sum(rate(http_requests_total[5m]))',
	"histogram_quantile(0.95, rate(http_request_duration_seconds_bucket[5m]))"
];

/** Moleculer service → compose service, as `component` is labelled in production (DNS name of the container). */
const COMPONENT: Record<string, string> = {
	api: "gateway",
	users: "users",
	products: "catalog",
	inventory: "commerce",
	carts: "commerce",
	orders: "commerce",
	payments: "payments",
	notifications: "payments"
};
const SERVICES = ["users", "products", "inventory", "carts", "orders", "payments", "notifications"];
const ADMIN = { email: "monitoring-admin@flashmart.test", password: "monitoring-admin-pw" };
const ADDRESS = {
	name: "Grace Hopper",
	line1: "1 Harbor Rd",
	city: "Arlington",
	postalCode: "22201",
	country: "us"
};

interface Sample {
	metric: Record<string, string>;
	value: [number, string];
}
interface QueryResult {
	status: "success" | "error";
	error?: string;
	data?: { resultType: string; result: Sample[] | [number, string] };
}

const children: ChildProcess[] = [];
process.on("exit", () => children.forEach(c => c.kill("SIGKILL")));

function startTool(
	bin: string,
	args: string[],
	env: Record<string, string> = {}
): { output: () => string } {
	let out = "";
	const child = spawn(bin, args, {
		env: { ...process.env, ...env },
		stdio: ["ignore", "pipe", "pipe"]
	});
	child.stdout?.on("data", d => (out = (out + d).slice(-20000)));
	child.stderr?.on("data", d => (out = (out + d).slice(-20000)));
	children.push(child);
	return { output: () => out };
}

/** A loopback webhook receiver that keeps every Alertmanager notification. */
async function startWebhook(): Promise<{ url: string; notifications: any[]; close(): void }> {
	const notifications: any[] = [];
	const server = http.createServer((req, res) => {
		let body = "";
		req.on("data", d => (body += d));
		req.on("end", () => {
			try {
				notifications.push(JSON.parse(body));
			} catch {
				notifications.push({ unparsable: body });
			}
			res.writeHead(200).end();
		});
	});
	await new Promise<void>(resolve => server.listen(0, "127.0.0.1", resolve));
	const { port } = server.address() as AddressInfo;
	return {
		url: `http://127.0.0.1:${port}/alerts`,
		notifications,
		close: () => {
			server.closeAllConnections();
			server.close();
		}
	};
}

async function promQuery(base: string, query: string): Promise<QueryResult> {
	const res = await fetch(`${base}/api/v1/query`, {
		method: "POST",
		headers: { "Content-Type": "application/x-www-form-urlencoded" },
		body: new URLSearchParams({ query })
	});
	return (await res.json()) as QueryResult;
}

/** Whether a result holds at least one real number (NaN from a 0/0 or a quantile without data is no data). */
function hasData(r: QueryResult): boolean {
	if (r.status !== "success" || !r.data) return false;
	if (r.data.resultType === "scalar")
		return Number.isFinite(Number((r.data.result as [number, string])[1]));
	return (r.data.result as Sample[]).some(s => Number.isFinite(Number(s.value[1])));
}

async function until<T>(
	what: string,
	timeoutMs: number,
	probe: () => Promise<T | undefined>
): Promise<T> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const value = await probe();
		if (value !== undefined) return value;
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await sleep(250);
	}
}

describe("monitoring against a live cluster", () => {
	let cluster: TestCluster;
	let es: EsStandIn;
	let webhook: Awaited<ReturnType<typeof startWebhook>>;
	let prom: string;
	let am: string;
	let promProc: { output: () => string };
	const metricPorts: Record<string, number> = {};

	beforeAll(async () => {
		es = await startEsStandIn();
		webhook = await startWebhook();
		for (const name of [...SERVICES, "api"]) metricPorts[name] = await freePort();
		cluster = await startCluster({
			services: SERVICES,
			env: {
				// Production: process/OS metrics on (Moleculer leaves them out under NODE_ENV=test), JSON logs.
				NODE_ENV: "production",
				LOG_LEVEL: "info",
				ADMIN_EMAIL: ADMIN.email,
				ADMIN_PASSWORD: ADMIN.password,
				ELASTICSEARCH_URL: es.url,
				...SHIPPER_ENV,
				LOG_SHIP_FLUSH_INTERVAL: "500",
				// Paid orders publish their events soon after the answer.
				OUTBOX_RELAY_INTERVAL: "250"
			},
			envFor: Object.fromEntries(
				Object.entries(metricPorts).map(([name, port]) => [name, { METRICS_PORT: String(port) }])
			)
		});

		// Alertmanager through the container's entrypoint: the production config, the URL from the environment.
		const amPort = await freePort();
		const amDir = tempDir("alertmanager");
		const amProc = startTool(
			"sh",
			[
				path.join(ALERTMANAGER_DIR, "entrypoint.sh"),
				`--storage.path=${amDir}`,
				`--web.listen-address=127.0.0.1:${amPort}`,
				// No HA gossip: one instance, and nothing listening beyond loopback.
				"--cluster.listen-address="
			],
			{
				ALERTMANAGER_WEBHOOK_URL: webhook.url,
				ALERTMANAGER_CONFIG_TEMPLATE: path.join(ALERTMANAGER_DIR, "alertmanager.yml"),
				ALERTMANAGER_RENDERED_CONFIG: path.join(amDir, "alertmanager.yml"),
				ALERTMANAGER_BIN: tool("prometheus-alertmanager")
			}
		);
		am = `http://127.0.0.1:${amPort}`;

		// Prometheus: the production rules with every `for:` cut to 2 s, static loopback targets labelled as the
		// production DNS discovery labels them.
		const promDir = tempDir("prometheus");
		const rules = loadRules();
		for (const g of rules.groups) for (const r of g.rules) if (r.for) r.for = "2s";
		fs.writeFileSync(path.join(promDir, "rules.yml"), yaml.dump(rules));
		const config = {
			global: { scrape_interval: "1s", evaluation_interval: "1s" },
			rule_files: ["rules.yml"],
			alerting: { alertmanagers: [{ static_configs: [{ targets: [`127.0.0.1:${amPort}`] }] }] },
			scrape_configs: [
				{
					job_name: "flashmart",
					static_configs: Object.entries(metricPorts).map(([name, port]) => ({
						targets: [`127.0.0.1:${port}`],
						labels: { component: COMPONENT[name] }
					}))
				}
			]
		};
		fs.writeFileSync(path.join(promDir, "prometheus.yml"), yaml.dump(config));
		const promPort = await freePort();
		promProc = startTool(tool("prometheus"), [
			`--config.file=${path.join(promDir, "prometheus.yml")}`,
			`--storage.tsdb.path=${path.join(promDir, "data")}`,
			`--web.listen-address=127.0.0.1:${promPort}`
		]);
		prom = `http://127.0.0.1:${promPort}`;
		await waitForStatus(`${prom}/-/ready`, { timeoutMs: 20000 }).catch(err => {
			throw new Error(`${err}\n${promProc.output()}`);
		});
		await waitForStatus(`${am}/-/ready`, { timeoutMs: 20000 }).catch(err => {
			throw new Error(`${err}\n${amProc.output()}`);
		});
		await until("every node scraped", 20000, async () => {
			const r = await promQuery(prom, 'count(up{job="flashmart"} == 1)');
			const n = Number((r.data?.result as Sample[])?.[0]?.value[1] ?? 0);
			return n === Object.keys(metricPorts).length ? true : undefined;
		});
	}, 90_000);

	afterAll(async () => {
		await Promise.all(
			children.map(c =>
				c.exitCode === null && c.signalCode === null
					? new Promise(resolve => c.once("exit", resolve).kill("SIGTERM"))
					: undefined
			)
		);
		webhook?.close();
		// Every node and nats-server the cluster library started, even when startCluster itself failed half-way.
		await stopAll();
		await es?.close();
	});

	/**
	 * Shop traffic: registrations, a failed login, browsing, 404s, carts, checkouts, a replay, a stock-out (and a
	 * low-stock event), payments accepted and declined.
	 */
	async function driveLoad(stopAfterMs: number): Promise<void> {
		const base = cluster.base;
		const admin = (await api(base, "POST", "/api/auth/login", { body: ADMIN })).body.accessToken;
		const product = async (stock: number) =>
			(
				await api(base, "POST", "/api/products", {
					token: admin,
					body: {
						sku: `MON-${Date.now()}-${stock}`,
						name: "Monitored",
						price: 1250,
						category: "monitoring",
						stock
					}
				})
			).body.id as string;
		const plenty = await product(100000);
		const scarce = await product(1);
		const customers: string[] = [];
		for (let i = 0; i < 3; i++) {
			const res = await api(base, "POST", "/api/auth/register", {
				body: {
					email: `mon-${process.pid}-${Date.now()}-${i}@example.com`,
					password: "monitor-password",
					name: "M"
				}
			});
			expect(res.status).toBe(201);
			customers.push(res.body.accessToken);
		}
		expect(
			(
				await api(base, "POST", "/api/auth/login", {
					body: { email: ADMIN.email, password: "wrong-password" }
				})
			).status
		).toBe(401);
		const checkout = (token: string, key: string) =>
			api(base, "POST", "/api/orders", {
				token,
				body: { shippingAddress: ADDRESS },
				headers: { "Idempotency-Key": key }
			});

		// Two buyers for the last unit: one order, one stock-out.
		for (const token of customers.slice(0, 2))
			expect(
				(
					await api(base, "POST", "/api/cart/items", {
						token,
						body: { productId: scarce, quantity: 1 }
					})
				).status
			).toBe(200);
		const answers = [
			(await checkout(customers[0], "scarce-0")).status,
			(await checkout(customers[1], "scarce-1")).status
		];
		expect(answers).toEqual([201, 409]);

		// The loop's buyers: the one who lost the race still has the scarce product in the cart.
		const buyers = [customers[0], customers[2]];
		const deadline = Date.now() + stopAfterMs;
		for (let i = 0; Date.now() < deadline; i++) {
			const token = buyers[i % buyers.length];
			await api(base, "GET", "/api/products?pageSize=5");
			await api(base, "GET", `/api/products/${plenty}`);
			await api(base, "GET", "/api/products/no-such-product");
			await api(base, "GET", "/api/no-such-route");
			await api(base, "POST", "/api/cart/items", {
				token,
				body: { productId: plenty, quantity: 1 }
			});
			const key = `load-${i}`;
			const order = await checkout(token, key);
			expect(order.status).toBe(201);
			if (i % 3 === 0) expect((await checkout(token, key)).status).toBe(201);
			// Most payments succeed; every fourth card is declined (402).
			const declined = i % 4 === 3;
			const paid = await api(base, "POST", `/api/orders/${order.body.id}/pay`, {
				token,
				body: { paymentToken: declined ? "tok_chargeDeclined" : "tok_visa" },
				headers: { "Idempotency-Key": `pay-${i}` }
			});
			expect(paid.status).toBe(declined ? 402 : 200);
			await sleep(50);
		}
	}

	it("evaluates every dashboard panel and every rule in Prometheus: all parse, FlashMart's rows have data", async () => {
		// 12 s of traffic at 1 s scrapes: every counter has a dozen samples, so rate() over 1m has data.
		await driveLoad(12_000);
		// One more scrape and rule evaluation after the last request.
		await sleep(2500);

		// A panel has data when any of its targets has (a panel of sent and received packets is fine with one).
		const parseErrors: string[] = [];
		const withData = new Set<string>();
		const panels = new Map<string, PanelQuery>();
		for (const q of panelQueries()) {
			const key = `${q.dashboard} / ${q.row} / ${q.panel}`;
			panels.set(key, q);
			const result = await promQuery(prom, substituteGrafanaVariables(q.expr));
			if (result.status !== "success") parseErrors.push(`${key}: ${result.error}\n  ${q.expr}`);
			else if (hasData(result)) withData.add(key);
		}
		const withoutData = [...panels].filter(([key]) => !withData.has(key)).map(([, q]) => q);
		const empty = withoutData.filter(
			q => !EXPORTER_ROWS[q.dashboard]?.includes(q.row) && !(q.panel in ALLOWED_EMPTY)
		);
		const emptyAllowed = withoutData.map(q => q.panel).filter(p => p in ALLOWED_EMPTY);
		for (const rule of allRules()) {
			const result = await promQuery(prom, rule.expr);
			if (result.status !== "success")
				parseErrors.push(`rule ${rule.alert ?? rule.record}: ${result.error}\n  ${rule.expr}`);
		}
		expect(parseErrors).toEqual([]);
		expect(empty.map(q => `${q.dashboard} / ${q.row} / ${q.panel}`)).toEqual([]);
		// An allowed-empty panel that has data now should leave the list.
		const stale = Object.keys(ALLOWED_EMPTY).filter(
			p => !emptyAllowed.includes(p) && panelQueries().some(q => q.panel === p)
		);
		if (stale.length)
			console.warn(`ALLOWED_EMPTY panels that have data now (remove them): ${stale.join(", ")}`);

		for (const query of OPERATOR_QUERIES.filter(q => !q.includes("5.."))) {
			expect({ query, data: hasData(await promQuery(prom, query)) }).toEqual({ query, data: true });
		}
	}, 60_000);

	it("fires FlashMartServiceDown when a backend node dies, and the webhook gets it through Alertmanager", async () => {
		await cluster.nodes.get("users")!.kill9();
		// Logins need the users service: they answer 503/504 now, which the operators' 5xx ratio must show.
		const logins = Array.from({ length: 4 }, () =>
			api(cluster.base, "POST", "/api/auth/login", { body: ADMIN }).then(r => r.status)
		);
		const statuses = await Promise.all(logins);
		expect(statuses.every(s => s === 503 || s === 504)).toBe(true);
		const ratioQuery = OPERATOR_QUERIES.find(q => q.includes("5.."))!;
		// A series' first sample is not an increase to rate(): the 5xx have to keep coming while Prometheus scrapes.
		await until("a 5xx ratio above 0", 20000, async () => {
			void api(cluster.base, "POST", "/api/auth/login", { body: ADMIN });
			const r = await promQuery(prom, ratioQuery);
			return hasData(r) && Number((r.data!.result as Sample[])[0].value[1]) > 0 ? true : undefined;
		});

		const notification = await until("FlashMartServiceDown at the webhook", 45000, async () =>
			webhook.notifications.find(n =>
				(n.alerts ?? []).some(
					(a: any) =>
						a.status === "firing" &&
						a.labels.alertname === "FlashMartServiceDown" &&
						a.labels.component === "users"
				)
			)
		);
		expect(notification).toMatchObject({
			receiver: "webhook-critical",
			status: "firing",
			groupLabels: { alertname: "FlashMartServiceDown", component: "users" }
		});
		const alert = notification.alerts.find(
			(a: any) => a.labels.alertname === "FlashMartServiceDown"
		);
		expect(alert.annotations).toMatchObject({
			summary: "Every node of users is down",
			runbook: "monitoring/RUNBOOK.md#flashmartservicedown"
		});

		// Inhibition, in the real Alertmanager: the node-down of the same component is held back...
		const amAlerts = async (...matchers: string[]) =>
			(await (
				await fetch(
					`${am}/api/v2/alerts?${matchers.map(m => `filter=${encodeURIComponent(m)}`).join("&")}`
				)
			).json()) as any[];
		const nodeDown = await until("FlashMartNodeDown inhibited", 15000, async () => {
			const found = (await amAlerts('alertname="FlashMartNodeDown"')).find(
				a => a.labels.component === "users"
			);
			return found?.status.inhibitedBy.length ? found : undefined;
		});
		expect(nodeDown.status.state).toBe("suppressed");
		// ...and so is a latency alert of that component, while one of another component is not.
		const latency = (component: string) => ({
			labels: {
				alertname: "FlashMartActionLatencyHigh",
				severity: "warning",
				component,
				// Not a real action: on a loaded machine the real rule may fire for real actions too.
				action: "monitoring.synthetic"
			},
			annotations: { summary: "test" },
			startsAt: new Date().toISOString(),
			endsAt: new Date(Date.now() + 300_000).toISOString()
		});
		const posted = await fetch(`${am}/api/v2/alerts`, {
			method: "POST",
			headers: { "Content-Type": "application/json" },
			body: JSON.stringify([latency("users"), latency("catalog")])
		});
		expect(posted.status).toBe(200);
		const states = await until("both latency alerts in Alertmanager", 10000, async () => {
			const all = await amAlerts(
				'alertname="FlashMartActionLatencyHigh"',
				'action="monitoring.synthetic"'
			);
			return all.length === 2
				? Object.fromEntries(all.map(a => [a.labels.component, a.status.state]))
				: undefined;
		});
		expect(states).toEqual({ users: "suppressed", catalog: "active" });
		// No notification for the node that the service alert already covers.
		expect(
			webhook.notifications.some(n =>
				(n.alerts ?? []).some(
					(a: any) => a.labels.alertname === "FlashMartNodeDown" && a.labels.component === "users"
				)
			)
		).toBe(false);
	}, 90_000);
});
