/**
 * Reading monitoring/ as the tests need it: the alert rules, every PromQL expression of every Grafana panel (with
 * the row it sits in), Grafana's variables replaced so Prometheus can run the expression, and the real tools.
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import yaml from "js-yaml";
import { ROOT, findTool } from "../../scripts/lib/cluster";

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
