/**
 * Reading monitoring/ as the tests need it: the alert rules, every PromQL expression of every Grafana panel (with
 * the row it sits in), Grafana's variables replaced so Prometheus can run the expression; and running the real
 * tools: Prometheus on the project's rules (with short `for:`, testRules), Alertmanager on its own config through its
 * entrypoint, a webhook receiver, and a stand-in for the NATS exporter.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import yaml from "js-yaml";
import { ROOT, findTool, freePort, sleep, tempDir, waitForStatus } from "../../scripts/lib/cluster";

export const MONITORING = path.join(ROOT, "monitoring");
export const PROMETHEUS_DIR = path.join(MONITORING, "prometheus");
export const RULES_FILE = path.join(PROMETHEUS_DIR, "rules", "flashmart.rules.yml");
export const RULE_TESTS_FILE = path.join(PROMETHEUS_DIR, "tests", "flashmart.rules.test.yml");
export const ALERTMANAGER_DIR = path.join(MONITORING, "alertmanager");
export const DASHBOARDS_DIR = path.join(MONITORING, "grafana", "dashboards");
export const KIBANA_DIR = path.join(MONITORING, "kibana");
export const RUNBOOK = path.join(MONITORING, "RUNBOOK.md");

export interface Rule {
	alert?: string;
	record?: string;
	expr: string;
	for?: string;
	labels?: Record<string, string>;
	annotations?: Record<string, string>;
}
export interface RuleFile {
	groups: Array<{ name: string; interval?: string; rules: Rule[] }>;
}

export const readYaml = <T>(file: string): T => yaml.load(fs.readFileSync(file, "utf8")) as T;

export function loadRules(file = RULES_FILE): RuleFile {
	return readYaml<RuleFile>(file);
}

export function allRules(file = RULES_FILE): Rule[] {
	return loadRules(file).groups.flatMap(g => g.rules);
}

export interface PanelQuery {
	dashboard: string;
	row: string;
	panel: string;
	expr: string;
}

export function loadDashboards(): Array<{ file: string; json: any }> {
	return fs
		.readdirSync(DASHBOARDS_DIR)
		.filter(f => f.endsWith(".json"))
		.sort()
		.map(file => ({
			file,
			json: JSON.parse(fs.readFileSync(path.join(DASHBOARDS_DIR, file), "utf8"))
		}));
}

/** Every target expression of every panel, with its dashboard uid and the title of the row above it. */
export function panelQueries(): PanelQuery[] {
	const out: PanelQuery[] = [];
	for (const { json } of loadDashboards()) {
		let row = "";
		for (const panel of json.panels as any[]) {
			if (panel.type === "row") {
				row = panel.title;
				continue;
			}
			for (const t of panel.targets ?? [])
				out.push({ dashboard: json.uid, row, panel: panel.title, expr: t.expr });
		}
	}
	return out;
}

/**
 * Grafana's variables as Grafana would send them with the defaults of the dashboards (All for query variables),
 * given how long the data has been scraped (`$__range`).
 */
export function substituteGrafanaVariables(expr: string, range = "10m"): string {
	return expr
		.replace(/\$__rate_interval|\$\{__rate_interval\}/g, "1m")
		.replace(/\$__interval|\$\{__interval\}/g, "15s")
		.replace(/\$__range|\$\{__range\}/g, range)
		.replace(/\$\{?(service|component|instance|nodeID)\}?/g, ".*");
}

export const tool = (name: string) =>
	findTool(name, [`/usr/bin/${name}`, `/usr/sbin/${name}`, `/usr/local/bin/${name}`]);

/** Runs a tool; resolves with its exit code and output (never rejects on a non-zero exit). */
export function run(
	cmd: string,
	args: string[],
	opts: { env?: Record<string, string>; cwd?: string } = {}
): Promise<{ code: number; stdout: string; stderr: string }> {
	return new Promise(resolve => {
		execFile(
			cmd,
			args,
			{ cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, timeout: 60_000 },
			(err, stdout, stderr) => {
				const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
				resolve({ code, stdout: String(stdout), stderr: String(stderr) });
			}
		);
	});
}

/** GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to dashes. */
export const anchorOf = (heading: string) =>
	heading
		.trim()
		.toLowerCase()
		.replace(/[^\w\- ]/g, "")
		.replace(/ /g, "-");

// ---------------------------------------------------------------------------------------------------------------
// The real Prometheus and Alertmanager, started on free loopback ports with the project's own files.

export interface Sample {
	metric: Record<string, string>;
	value: [number, string];
}
export interface QueryResult {
	status: "success" | "error";
	error?: string;
	data?: { resultType: string; result: Sample[] | [number, string] };
}

export interface ToolProc {
	child: ChildProcess;
	output(): string;
	stop(): Promise<void>;
}

const tools = new Set<ChildProcess>();
process.on("exit", () => tools.forEach(c => c.kill("SIGKILL")));

/** Starts a tool (prometheus, alertmanager, a shell script), keeping the tail of its output for error messages. */
export function startTool(bin: string, args: string[], env: Record<string, string> = {}): ToolProc {
	let out = "";
	const child = spawn(bin, args, {
		env: { ...process.env, ...env },
		stdio: ["ignore", "pipe", "pipe"]
	});
	child.stdout?.on("data", d => (out = (out + d).slice(-20000)));
	child.stderr?.on("data", d => (out = (out + d).slice(-20000)));
	tools.add(child);
	child.once("exit", () => tools.delete(child));
	return {
		child,
		output: () => out,
		stop: () =>
			child.exitCode === null && child.signalCode === null
				? new Promise<void>(resolve => child.once("exit", () => resolve()).kill("SIGTERM"))
				: Promise.resolve()
	};
}

/** Stops every tool startTool started. */
export async function stopTools(): Promise<void> {
	await Promise.all(
		[...tools].map(
			c => new Promise<void>(resolve => c.once("exit", () => resolve()).kill("SIGTERM"))
		)
	);
}

export interface Notification {
	/** Date.now() when it arrived. */
	at: number;
	body: any;
}
export interface Webhook {
	url: string;
	/** Every notification Alertmanager posted, in arrival order. */
	received: Notification[];
	/** The first notification with a firing alert named `alertname` whose labels include `labels`. */
	firing(alertname: string, labels?: Record<string, string>): Notification | undefined;
	close(): void;
}

/** A loopback webhook receiver that keeps every Alertmanager notification and when it came. */
export async function startWebhook(): Promise<Webhook> {
	const received: Notification[] = [];
	const server = http.createServer((req, res) => {
		let body = "";
		req.on("data", d => (body += d));
		req.on("end", () => {
			let parsed: unknown;
			try {
				parsed = JSON.parse(body);
			} catch {
				parsed = { unparsable: body };
			}
			received.push({ at: Date.now(), body: parsed });
			res.writeHead(200).end();
		});
	});
	await new Promise<void>(resolve => server.listen(0, "127.0.0.1", resolve));
	const { port } = server.address() as AddressInfo;
	return {
		url: `http://127.0.0.1:${port}/alerts`,
		received,
		firing: (alertname, labels = {}) =>
			received.find(n =>
				(n.body.alerts ?? []).some(
					(a: any) =>
						a.status === "firing" &&
						a.labels.alertname === alertname &&
						Object.entries(labels).every(([k, v]) => a.labels[k] === v)
				)
			),
		close: () => {
			server.closeAllConnections();
			server.close();
		}
	};
}

export async function promQuery(base: string, query: string): Promise<QueryResult> {
	const res = await fetch(`${base}/api/v1/query`, {
		method: "POST",
		headers: { "Content-Type": "application/x-www-form-urlencoded" },
		body: new URLSearchParams({ query })
	});
	return (await res.json()) as QueryResult;
}

/** The samples of an instant vector query (empty for an error or another result type). */
export async function promVector(base: string, query: string): Promise<Sample[]> {
	const r = await promQuery(base, query);
	return r.status === "success" && r.data?.resultType === "vector"
		? (r.data.result as Sample[])
		: [];
}

/** Whether a result holds at least one real number (NaN from a 0/0 or a quantile without data is no data). */
export function hasData(r: QueryResult): boolean {
	if (r.status !== "success" || !r.data) return false;
	if (r.data.resultType === "scalar")
		return Number.isFinite(Number((r.data.result as [number, string])[1]));
	return (r.data.result as Sample[]).some(s => Number.isFinite(Number(s.value[1])));
}

/** Polls `probe` every 250 ms until it answers something other than undefined. */
export async function until<T>(
	what: string,
	timeoutMs: number,
	probe: () => Promise<T | undefined> | T | undefined
): Promise<T> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const value = await probe();
		if (value !== undefined) return value;
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await sleep(250);
	}
}

export interface TestRuleOptions {
	/** Every `for:` becomes this (e.g. "2s")... */
	for: string;
	/** ...except these alerts', kept as written (say why where you list one). */
	keepFor?: string[];
	/** Exact text replacements in one alert's expression, e.g. a 300 s threshold; each must match exactly once. */
	exprs?: Record<string, Array<[from: string, to: string]>>;
}

/**
 * The project's rule file as a test Prometheus runs it: the same groups, rules, labels and annotations, with long
 * `for:` durations (and the few thresholds named in `exprs`) shortened so an alert fires within a test's minutes.
 * Nothing else changes; a replacement that does not match, or names an alert the file lacks, throws, so a test never
 * silently runs a rule other than the one it names.
 */
export function testRules(opts: TestRuleOptions, file = RULES_FILE): RuleFile {
	const rules = loadRules(file);
	const alerts = new Set(rules.groups.flatMap(g => g.rules.map(r => r.alert)).filter(Boolean));
	for (const name of [...(opts.keepFor ?? []), ...Object.keys(opts.exprs ?? {})])
		if (!alerts.has(name)) throw new Error(`testRules: ${file} has no alert ${name}`);
	for (const g of rules.groups)
		for (const r of g.rules) {
			if (r.for && !opts.keepFor?.includes(r.alert ?? "")) r.for = opts.for;
			for (const [from, to] of opts.exprs?.[r.alert ?? ""] ?? []) {
				const times = r.expr.split(from).length - 1;
				if (times !== 1)
					throw new Error(`testRules: "${from}" occurs ${times} times in ${r.alert}'s expression`);
				r.expr = r.expr.replace(from, to);
			}
		}
	return rules;
}

export interface Alertmanager {
	url: string;
	port: number;
	proc: ToolProc;
}

/** Alertmanager through the container's entrypoint: the production config, the webhook URL from the environment. */
export async function startAlertmanager(webhookUrl: string): Promise<Alertmanager> {
	const port = await freePort();
	const dir = tempDir("alertmanager");
	const proc = startTool(
		"sh",
		[
			path.join(ALERTMANAGER_DIR, "entrypoint.sh"),
			`--storage.path=${dir}`,
			`--web.listen-address=127.0.0.1:${port}`,
			// No HA gossip: one instance, and nothing listening beyond loopback.
			"--cluster.listen-address="
		],
		{
			ALERTMANAGER_WEBHOOK_URL: webhookUrl,
			ALERTMANAGER_CONFIG_TEMPLATE: path.join(ALERTMANAGER_DIR, "alertmanager.yml"),
			ALERTMANAGER_RENDERED_CONFIG: path.join(dir, "alertmanager.yml"),
			ALERTMANAGER_BIN: tool("prometheus-alertmanager")
		}
	);
	const url = `http://127.0.0.1:${port}`;
	await waitForStatus(`${url}/-/ready`, { timeoutMs: 20000 }).catch(err => {
		throw new Error(`${err}\n${proc.output()}`);
	});
	return { url, port, proc };
}

export interface ScrapeJob {
	job_name: string;
	static_configs: Array<{ targets: string[]; labels?: Record<string, string> }>;
}

/** Prometheus with `rules` (see testRules), 1 s scrapes and evaluations, notifying `alertmanagerPort`. */
export async function startPrometheus(opts: {
	rules: RuleFile;
	jobs: ScrapeJob[];
	alertmanagerPort: number;
}): Promise<{ url: string; proc: ToolProc }> {
	const dir = tempDir("prometheus");
	fs.writeFileSync(path.join(dir, "rules.yml"), yaml.dump(opts.rules));
	const config = {
		global: { scrape_interval: "1s", evaluation_interval: "1s" },
		rule_files: ["rules.yml"],
		alerting: {
			alertmanagers: [{ static_configs: [{ targets: [`127.0.0.1:${opts.alertmanagerPort}`] }] }]
		},
		scrape_configs: opts.jobs
	};
	fs.writeFileSync(path.join(dir, "prometheus.yml"), yaml.dump(config));
	const port = await freePort();
	const proc = startTool(tool("prometheus"), [
		`--config.file=${path.join(dir, "prometheus.yml")}`,
		`--storage.tsdb.path=${path.join(dir, "data")}`,
		`--web.listen-address=127.0.0.1:${port}`
	]);
	const url = `http://127.0.0.1:${port}`;
	await waitForStatus(`${url}/-/ready`, { timeoutMs: 20000 }).catch(err => {
		throw new Error(`${err}\n${proc.output()}`);
	});
	return { url, proc };
}

/**
 * A stand-in for prometheus-nats-exporter (not packaged for Debian): on each scrape it reads the nats-server's
 * /varz and answers the `gnatsd_varz_*` gauges FlashMartNatsDown reads. As the exporter does when the server does not
 * answer, it then answers 200 without those series (its own `up` stays 1), so the rule's `absent()` sees the outage.
 */
export async function startNatsExporterStandIn(
	natsMonitorPort: number
): Promise<{ target: string; close(): void }> {
	const server = http.createServer(async (_req, res) => {
		let body = "";
		try {
			const varz = (await (
				await fetch(`http://127.0.0.1:${natsMonitorPort}/varz`, {
					signal: AbortSignal.timeout(500)
				})
			).json()) as Record<string, unknown>;
			const labels = `server_id="${String(varz.server_id)}"`;
			body = ["connections", "subscriptions", "in_msgs", "out_msgs"]
				.map(k => `gnatsd_varz_${k}{${labels}} ${Number(varz[k] ?? 0)}`)
				.join("\n");
		} catch {
			// nats-server down: no gnatsd series, as the exporter
		}
		res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4" }).end(`${body}\n`);
	});
	await new Promise<void>(resolve => server.listen(0, "127.0.0.1", resolve));
	const { port } = server.address() as AddressInfo;
	return {
		target: `127.0.0.1:${port}`,
		close: () => {
			server.closeAllConnections();
			server.close();
		}
	};
}
