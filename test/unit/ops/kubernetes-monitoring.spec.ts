/**
 * The monitoring of deploy/kubernetes comes from monitoring/, never hand-copied: the committed PrometheusRule and
 * dashboard copies are what `npm run kubernetes:monitoring` makes of today's sources, and what each overlay renders
 * carries the same rules and the same dashboards.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { load } from "js-yaml";

import { OVERLAYS, find, render } from "../../../scripts/lib/kubernetes";
import { ROOT } from "../../helpers/compose";

const OUT_DIR = path.join(ROOT, "deploy", "kubernetes", "base", "monitoring");

const RULES = path.join(ROOT, "monitoring", "prometheus", "rules", "flashmart.rules.yml");
const DASHBOARDS = path.join(ROOT, "monitoring", "grafana", "dashboards");

describe("npm run kubernetes:monitoring", () => {
	// prettier (which formats the output) is ESM inside: the built script runs in its own process (pretest builds).
	const run = (...args: string[]) =>
		spawnSync(
			process.execPath,
			[path.join(ROOT, "dist", "scripts", "kubernetes-monitoring.js"), ...args],
			{
				encoding: "utf8"
			}
		);

	it("has written exactly what it would write now (run it after changing monitoring/)", () => {
		const res = run("--check");
		expect(res.stderr).toBe("");
		expect(JSON.parse(res.stdout)).toEqual({ files: 6, stale: [] });
		expect(res.status).toBe(0);
	});

	it("notices a copy that differs from its source", () => {
		const copy = path.join(OUT_DIR, "dashboards", "flashmart-overview.json");
		const before = fs.readFileSync(copy, "utf8");
		try {
			fs.writeFileSync(copy, before.replace(/"title":\s*"[^"]*"/, '"title": "edited by hand"'));
			const res = run("--check");
			expect(JSON.parse(res.stdout).stale).toEqual(["dashboards/flashmart-overview.json"]);
			expect(res.status).toBe(1);
		} finally {
			fs.writeFileSync(copy, before);
		}
	});
});

describe.each(OVERLAYS)("overlays/%s monitoring", overlay => {
	const objs = render(overlay);

	it("renders the alert and recording rules of monitoring/prometheus/rules as one PrometheusRule", () => {
		const source = load(fs.readFileSync(RULES, "utf8")) as { groups: unknown[] };
		expect(find(objs, "PrometheusRule", "flashmart")?.spec.groups).toEqual(source.groups);
	});

	it("renders every dashboard of monitoring/grafana/dashboards in the Grafana sidecar's ConfigMap", () => {
		const cm = find(objs, "ConfigMap", "flashmart-grafana-dashboards")!;
		expect(cm.metadata.labels).toMatchObject({ grafana_dashboard: "1" });
		const files = fs.readdirSync(DASHBOARDS).filter(f => f.endsWith(".json"));
		expect(Object.keys(cm.data).sort()).toEqual(files.sort());
		for (const f of files)
			expect(JSON.parse(cm.data[f])).toEqual(
				JSON.parse(fs.readFileSync(path.join(DASHBOARDS, f), "utf8"))
			);
	});

	it("scrapes every FlashMart node and exporter under the job names the rules use", () => {
		const rules = fs.readFileSync(RULES, "utf8");
		const jobs = objs
			.filter(o => o.kind === "PodMonitor")
			.flatMap(p =>
				p.spec.podMetricsEndpoints.flatMap((e: any) =>
					e.relabelings.filter((r: any) => r.targetLabel === "job").map((r: any) => r.replacement)
				)
			);
		for (const job of ["flashmart", "nats", "mongodb", "redis", "minio"]) {
			expect(jobs).toContain(job);
			expect(rules).toContain(job);
		}
	});
});
