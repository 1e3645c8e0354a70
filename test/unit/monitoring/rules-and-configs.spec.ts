/**
 * monitoring/ checked by the real tools: promtool (config, rules, rule unit tests), amtool (the committed and the
 * rendered Alertmanager config, its routing), shellcheck (the scripts); and the conventions the tools do not
 * check: every alert annotated, pointing at an existing runbook section, and unit-tested.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
	ALERTMANAGER_DIR,
	KIBANA_DIR,
	PROMETHEUS_DIR,
	RULES_FILE,
	RULE_TESTS_FILE,
	RUNBOOK,
	allRules,
	anchorOf,
	readYaml,
	run,
	tool
} from "../../helpers/monitoring";

const ALERTMANAGER_YML = path.join(ALERTMANAGER_DIR, "alertmanager.yml");
const ENTRYPOINT = path.join(ALERTMANAGER_DIR, "entrypoint.sh");

function expectOk(res: { code: number; stdout: string; stderr: string }) {
	if (res.code !== 0) throw new Error(`exit ${res.code}\n${res.stdout}\n${res.stderr}`);
}

/** Renders alertmanager.yml through the container's entrypoint, with `true` in place of Alertmanager. */
async function render(url: string | undefined) {
	const out = path.join(
		fs.mkdtempSync(path.join(os.tmpdir(), "flashmart-am-")),
		"alertmanager.yml"
	);
	const env: Record<string, string> = {
		ALERTMANAGER_CONFIG_TEMPLATE: ALERTMANAGER_YML,
		ALERTMANAGER_RENDERED_CONFIG: out,
		ALERTMANAGER_BIN: "true"
	};
	if (url !== undefined) env.ALERTMANAGER_WEBHOOK_URL = url;
	const res = await run("sh", [ENTRYPOINT], { env });
	return { ...res, out };
}

describe("prometheus config and rules", () => {
	it("passes promtool check config (with its rule files)", async () => {
		const res = await run(tool("promtool"), [
			"check",
			"config",
			path.join(PROMETHEUS_DIR, "prometheus.yml")
		]);
		expectOk(res);
		expect(res.stdout).toMatch(/SUCCESS: 1 rule files found/);
	});

	it("passes promtool check rules", async () => {
		expectOk(await run(tool("promtool"), ["check", "rules", RULES_FILE]));
	});

	it("passes its promtool unit tests", async () => {
		const res = await run(tool("promtool"), ["test", "rules", RULE_TESTS_FILE]);
		expectOk(res);
		expect(res.stdout).toMatch(/SUCCESS/);
	});

	it("fails promtool test rules when an alert's threshold changes (the unit tests can fail)", async () => {
		const dir = fs.mkdtempSync(path.join(os.tmpdir(), "flashmart-rules-"));
		fs.mkdirSync(path.join(dir, "rules"));
		fs.mkdirSync(path.join(dir, "tests"));
		fs.writeFileSync(
			path.join(dir, "rules", "flashmart.rules.yml"),
			fs.readFileSync(RULES_FILE, "utf8").replace("> 0.05", "> 0.5")
		);
		fs.copyFileSync(RULE_TESTS_FILE, path.join(dir, "tests", "flashmart.rules.test.yml"));
		const res = await run(tool("promtool"), [
			"test",
			"rules",
			path.join(dir, "tests", "flashmart.rules.test.yml")
		]);
		expect(res.code).not.toBe(0);
		expect(res.stdout + res.stderr).toMatch(/FlashMartHigh5xxRatio/);
	});

	const alerts = allRules().filter(r => r.alert);

	it("has the alerts the issue asks for", () => {
		expect(alerts.map(a => a.alert)).toEqual(
			expect.arrayContaining([
				"FlashMartNodeDown",
				"FlashMartServiceDown",
				"FlashMartNatsDisconnected",
				"FlashMartHigh5xxRatio",
				"FlashMartHighLatencyP95",
				"FlashMartCheckoutErrorBudgetBurnFast",
				"FlashMartCheckoutErrorBudgetBurnSlow",
				"FlashMartCircuitBreakerOpen",
				"FlashMartEventDeadLettered",
				"FlashMartOutboxStuck",
				"FlashMartNodeHeapHigh",
				"FlashMartContainerCpuHigh",
				"FlashMartHostCpuHigh",
				"FlashMartMongoDown",
				"FlashMartMongoSlow",
				"FlashMartDiskSpaceLow",
				"FlashMartLogsDropped",
				"FlashMartLoginFailuresHigh"
			])
		);
	});

	it("gives every alert a severity, summary, description and a runbook section that exists", () => {
		const headings = new Set(
			[...fs.readFileSync(RUNBOOK, "utf8").matchAll(/^#{2,3} (.+)$/gm)].map(m => anchorOf(m[1]))
		);
		for (const a of alerts) {
			expect({ alert: a.alert, severity: a.labels?.severity }).toEqual({
				alert: a.alert,
				severity: expect.stringMatching(/^(critical|warning)$/)
			});
			expect(a.annotations).toEqual({
				summary: expect.any(String),
				description: expect.any(String),
				runbook: `monitoring/RUNBOOK.md#${anchorOf(a.alert!)}`
			});
			expect({ alert: a.alert, inRunbook: headings.has(anchorOf(a.alert!)) }).toEqual({
				alert: a.alert,
				inRunbook: true
			});
		}
	});

	it("has a promtool unit test that shows every alert firing and every recorded series", () => {
		const tests = readYaml<{
			tests: Array<{ alert_rule_test?: any[]; promql_expr_test?: Array<{ expr: string }> }>;
		}>(RULE_TESTS_FILE).tests;
		const firing = new Set(
			tests
				.flatMap(t => t.alert_rule_test ?? [])
				.filter(t => (t.exp_alerts ?? []).length > 0)
				.map(t => t.alertname)
		);
		expect(alerts.map(a => a.alert).filter(a => !firing.has(a))).toEqual([]);
		const queried = tests.flatMap(t => t.promql_expr_test ?? []).map(t => t.expr);
		const records = allRules().filter(r => r.record);
		expect(records.length).toBeGreaterThan(0);
		expect(
			records
				.map(r => r.record!)
				.filter(r => !queried.some(expr => expr.split(/[^\w:]/).includes(r)))
		).toEqual([]);
	});
});

describe("alertmanager config", () => {
	it("passes amtool check-config as committed", async () => {
		const res = await run(tool("amtool"), ["check-config", ALERTMANAGER_YML]);
		expectOk(res);
		expect(res.stdout).toMatch(/SUCCESS/);
	});

	it("is rendered with the webhook URL from the environment, and still passes amtool", async () => {
		const url = "https://hooks.example.test/alerts?team=sre&token=a|b/c";
		const res = await render(url);
		expectOk(res);
		const text = fs.readFileSync(res.out, "utf8");
		expect(text).not.toContain("alertmanager-webhook-url.invalid");
		expect(text.split(`url: "${url}"`).length - 1).toBe(2);
		expectOk(await run(tool("amtool"), ["check-config", res.out]));
	});

	it("refuses to start without a usable webhook URL", async () => {
		for (const url of [undefined, "", "ftp://x", 'http://x/"y', "http://x/ y"]) {
			const res = await render(url);
			expect({ url, code: res.code }).toEqual({ url, code: 1 });
			expect(res.stderr).toMatch(/ALERTMANAGER_WEBHOOK_URL/);
		}
	});

	it("routes critical and warning alerts to their receivers", async () => {
		const route = async (...labels: string[]) =>
			(
				await run(tool("amtool"), [
					"config",
					"routes",
					"test",
					`--config.file=${ALERTMANAGER_YML}`,
					...labels
				])
			).stdout.trim();
		expect(await route("alertname=FlashMartNodeDown", "severity=critical")).toBe(
			"webhook-critical"
		);
		expect(await route("alertname=FlashMartDiskSpaceLow", "severity=warning")).toBe(
			"webhook-warning"
		);
	});

	it("routes the flash sale alerts by their severity: failing checkouts page, slow or refused ones warn", async () => {
		const severity = Object.fromEntries(
			allRules()
				.filter(r => /^FlashMart(Sale|CheckoutOverloaded)/.test(r.alert ?? ""))
				.map(r => [r.alert, r.labels?.severity])
		);
		expect(severity).toEqual({
			FlashMartSaleCheckoutsFailing: "critical",
			FlashMartSaleCheckoutsSlow: "warning",
			FlashMartCheckoutOverloaded: "warning"
		});
		for (const [alert, level] of Object.entries(severity)) {
			const res = await run(tool("amtool"), [
				"config",
				"routes",
				"test",
				`--config.file=${ALERTMANAGER_YML}`,
				`alertname=${alert}`,
				`severity=${level}`
			]);
			expect({ alert, receiver: res.stdout.trim() }).toEqual({
				alert,
				receiver: `webhook-${level}`
			});
		}
	});

	it("lets a node or service down inhibit the latency alerts of the same component", () => {
		const cfg = readYaml<{
			inhibit_rules: Array<{
				source_matchers: string[];
				target_matchers: string[];
				equal?: string[];
			}>;
		}>(ALERTMANAGER_YML);
		const rule = cfg.inhibit_rules.find(r =>
			r.source_matchers.some(m => m.includes("FlashMartNodeDown"))
		);
		expect(rule?.target_matchers.join()).toMatch(/FlashMartHighLatencyP95/);
		expect(rule?.target_matchers.join()).toMatch(/FlashMartActionLatencyHigh/);
		expect(rule?.equal).toEqual(["component"]);
	});
});

describe("monitoring scripts", () => {
	it("are shellcheck-clean", async () => {
		expectOk(
			await run(tool("shellcheck"), [
				path.join(ALERTMANAGER_DIR, "entrypoint.sh"),
				path.join(KIBANA_DIR, "import.sh")
			])
		);
	});
});
