/**
 * Grafana dashboards and provisioning, Kibana saved objects: JSON Schema validation (ajv) of their structure, the
 * cross-references JSON Schema cannot express (unique ids, references that resolve, the datasource variable), and
 * the committed dashboards being exactly what scripts/grafana-dashboards.ts generates.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Ajv from "ajv";
import yaml from "js-yaml";
import { METRIC } from "moleculer";
import { renderDashboards } from "../../../scripts/grafana-dashboards";
import {
	DASHBOARDS_DIR,
	KIBANA_DIR,
	MONITORING,
	loadDashboards,
	panelQueries,
	readYaml,
	run,
	substituteGrafanaVariables,
	tool
} from "../../helpers/monitoring";

const ajv = new Ajv({ allErrors: true, strict: false });

const DATASOURCE_REF = {
	type: "object",
	required: ["type", "uid"],
	properties: { type: { const: "prometheus" }, uid: { const: "${datasource}" } }
};

/** The part of Grafana's dashboard model (schemaVersion 39) that provisioning and these dashboards rely on. */
const DASHBOARD_SCHEMA = {
	type: "object",
	required: ["uid", "title", "schemaVersion", "panels", "templating", "time"],
	properties: {
		uid: { type: "string", pattern: "^[a-z0-9-]{1,40}$" },
		title: { type: "string", minLength: 1 },
		schemaVersion: { type: "integer", minimum: 36 },
		time: { type: "object", required: ["from", "to"] },
		templating: {
			type: "object",
			required: ["list"],
			properties: {
				list: {
					type: "array",
					items: { type: "object", required: ["name", "type"] },
					contains: {
						type: "object",
						required: ["name", "type", "query"],
						properties: {
							name: { const: "datasource" },
							type: { const: "datasource" },
							query: { const: "prometheus" }
						}
					}
				}
			}
		},
		panels: {
			type: "array",
			minItems: 1,
			items: {
				type: "object",
				required: ["id", "type", "title", "gridPos"],
				properties: {
					id: { type: "integer", minimum: 1 },
					title: { type: "string", minLength: 1 },
					gridPos: {
						type: "object",
						required: ["h", "w", "x", "y"],
						properties: {
							w: { type: "integer", minimum: 1, maximum: 24 },
							x: { type: "integer", minimum: 0, maximum: 23 }
						}
					}
				},
				if: { properties: { type: { const: "row" } } },
				then: { properties: { type: { const: "row" } } },
				else: {
					required: ["datasource", "targets"],
					properties: {
						type: { enum: ["timeseries", "stat", "gauge", "table", "bargauge"] },
						datasource: DATASOURCE_REF,
						targets: {
							type: "array",
							minItems: 1,
							items: {
								type: "object",
								required: ["refId", "expr", "datasource"],
								properties: {
									refId: { type: "string", pattern: "^[A-Z]$" },
									expr: { type: "string", minLength: 1 },
									datasource: DATASOURCE_REF
								}
							}
						}
					}
				}
			}
		}
	}
};

const SAVED_OBJECT_SCHEMA = {
	type: "object",
	required: ["id", "type", "attributes", "references", "migrationVersion"],
	properties: {
		id: { type: "string", pattern: "^[a-z0-9-]+$" },
		// The version the attributes are written for: Kibana migrates them up from it on import.
		migrationVersion: { type: "object", minProperties: 1 },
		type: { enum: ["index-pattern", "search", "dashboard", "visualization", "lens"] },
		attributes: { type: "object", required: ["title"] },
		references: {
			type: "array",
			items: {
				type: "object",
				required: ["name", "type", "id"],
				properties: { name: { type: "string" }, type: { type: "string" }, id: { type: "string" } }
			}
		}
	}
};

function validate(schema: object, data: unknown, what: string) {
	const check = ajv.compile(schema);
	if (!check(data))
		throw new Error(`${what}: ${ajv.errorsText(check.errors, { separator: "\n" })}`);
}

describe("grafana dashboards", () => {
	const dashboards = loadDashboards();

	it("are the five of the issue, with stable uids", () => {
		expect(dashboards.map(d => [d.file, d.json.uid, d.json.title])).toEqual([
			["flashmart-business.json", "flashmart-business", "FlashMart / Business"],
			["flashmart-mongodb.json", "flashmart-mongodb", "FlashMart / MongoDB"],
			["flashmart-overview.json", "flashmart-overview", "FlashMart / Platform Overview"],
			["flashmart-services.json", "flashmart-services", "FlashMart / Service Health"],
			["flashmart-system.json", "flashmart-system", "FlashMart / System Resources"]
		]);
	});

	it.each(dashboards.map(d => [d.file, d.json]))(
		"%s matches the dashboard schema",
		(file, json) => {
			validate(DASHBOARD_SCHEMA, json, file as string);
		}
	);

	it("have unique panel ids within each dashboard and unique uids", () => {
		for (const { file, json } of dashboards) {
			const ids = (json.panels as any[]).map(p => p.id);
			expect({ file, duplicates: ids.filter((id, i) => ids.indexOf(id) !== i) }).toEqual({
				file,
				duplicates: []
			});
		}
		const uids = dashboards.map(d => d.json.uid);
		expect(new Set(uids).size).toBe(uids.length);
	});

	it("use $__rate_interval or $__range, never a hard-coded window under rate()", () => {
		const hardCoded = panelQueries().filter(q =>
			/\b(rate|increase|irate)\([^)]*\[\d+[smh]\]/.test(q.expr)
		);
		expect(hardCoded).toEqual([]);
	});

	it("have PromQL that promtool parses, every target of every panel (Grafana's variables as Grafana sends them)", async () => {
		// One recording rule per target, in a group named after its panel, so promtool's error names the panel.
		const groups = panelQueries().map((q, i) => ({
			name: `${q.dashboard} / ${q.row} / ${q.panel} #${i}`,
			rules: [{ record: `dashboard:panel:${i}`, expr: substituteGrafanaVariables(q.expr) }]
		}));
		const file = path.join(
			fs.mkdtempSync(path.join(os.tmpdir(), "flashmart-panels-")),
			"panels.rules.yml"
		);
		fs.writeFileSync(file, yaml.dump({ groups }));
		const res = await run(tool("promtool"), ["check", "rules", file]);
		expect({ code: res.code, out: res.stdout + res.stderr }).toEqual({
			code: 0,
			out: expect.stringContaining(`SUCCESS: ${groups.length} rules found`)
		});
	});

	it("refer only to variables the dashboard defines (or Grafana's own)", () => {
		for (const { json } of dashboards) {
			const defined = new Set((json.templating.list as any[]).map(v => v.name));
			for (const p of json.panels as any[])
				for (const t of p.targets ?? [])
					for (const m of String(t.expr).matchAll(/\$\{?(\w+)/g))
						if (!m[1].startsWith("__"))
							expect({ panel: p.title, variable: m[1], defined: defined.has(m[1]) }).toEqual({
								panel: p.title,
								variable: m[1],
								defined: true
							});
		}
	});

	it("plot no Moleculer gauge that its code only ever adds to (it would only grow)", () => {
		// Gauges Moleculer's Metrics middleware increments by a value and never decrements or sets: read from its
		// source, so an upgrade that fixes (or adds) one changes this list.
		const src = fs.readFileSync(
			path.join(
				__dirname,
				"..",
				"..",
				"..",
				"node_modules",
				"moleculer",
				"src",
				"middlewares",
				"metrics.js"
			),
			"utf8"
		);
		const constants = METRIC as unknown as Record<string, string>;
		const used = (verb: string) =>
			new Set(
				[...src.matchAll(new RegExp(`metrics\\.${verb}\\(\\s*METRIC\\.(\\w+)`, "g"))].map(m => m[1])
			);
		const down = new Set([...used("decrement"), ...used("set")]);
		const onlyUp = [...used("increment")]
			.filter(k => !down.has(k) && /\.active$/.test(constants[k] ?? ""))
			.map(k => constants[k].replace(/[.-]/g, "_"));
		expect(onlyUp).toContain("moleculer_transit_requests_active");
		const offenders = panelQueries().filter(q => onlyUp.some(m => q.expr.includes(m)));
		expect(offenders).toEqual([]);
		const awaiting = panelQueries().find(q => q.panel === "Requests awaiting a remote answer");
		expect(awaiting?.expr).toBe('sum by (nodeID) (moleculer_request_active{type="remote"})');
	});

	it("are exactly what scripts/grafana-dashboards.ts generates (npm run dashboards)", () => {
		const generated = renderDashboards();
		expect([...generated.keys()].sort()).toEqual(dashboards.map(d => d.file));
		for (const [file, text] of generated)
			expect({
				file,
				same: fs.readFileSync(path.join(DASHBOARDS_DIR, file), "utf8") === text
			}).toEqual({
				file,
				same: true
			});
	});
});

describe("grafana provisioning", () => {
	const dir = path.join(MONITORING, "grafana", "provisioning");

	it("provisions a Prometheus, an Elasticsearch logs and a Jaeger datasource", () => {
		const { datasources } = readYaml<{ datasources: any[] }>(
			path.join(dir, "datasources", "datasources.yml")
		);
		expect(datasources).toEqual([
			expect.objectContaining({
				uid: "prometheus",
				type: "prometheus",
				url: "http://prometheus:9090",
				isDefault: true
			}),
			expect.objectContaining({
				uid: "elasticsearch-logs",
				type: "elasticsearch",
				url: "http://elasticsearch:9200",
				jsonData: expect.objectContaining({ index: "logs-flashmart-*", timeField: "@timestamp" })
			}),
			expect.objectContaining({ uid: "jaeger", type: "jaeger", url: "http://jaeger:16686" })
		]);
	});

	it("links a log line to its trace and a span to its trace's log lines", () => {
		const { datasources } = readYaml<{ datasources: any[] }>(
			path.join(dir, "datasources", "datasources.yml")
		);
		const [, logs, jaeger] = datasources;
		// `$$` is Grafana's escape for a literal `$` in provisioning files (else it expands ${...} from its environment).
		expect(logs.jsonData.dataLinks).toEqual([
			{ field: "traceId", datasourceUid: "jaeger", url: "$${__value.raw}" }
		]);
		expect(jaeger.jsonData.tracesToLogsV2).toMatchObject({
			datasourceUid: logs.uid,
			customQuery: true,
			query: 'traceId:"$${__trace.traceId}"'
		});
	});

	it("loads the dashboards from one folder", () => {
		const { providers } = readYaml<{ providers: any[] }>(
			path.join(dir, "dashboards", "dashboards.yml")
		);
		expect(providers).toEqual([
			expect.objectContaining({
				type: "file",
				options: expect.objectContaining({ path: expect.any(String) })
			})
		]);
	});
});

describe("kibana saved objects", () => {
	const lines = fs
		.readFileSync(path.join(KIBANA_DIR, "saved-objects.ndjson"), "utf8")
		.split("\n")
		.filter(Boolean);
	const objects = lines.map((line, i) => {
		try {
			return JSON.parse(line);
		} catch (err) {
			throw new Error(`line ${i + 1} is not JSON: ${String(err)}`);
		}
	});
	const byKey = new Map(objects.map(o => [`${o.type}:${o.id}`, o]));

	it("match the saved object schema, with unique ids", () => {
		objects.forEach((o, i) => validate(SAVED_OBJECT_SCHEMA, o, `line ${i + 1}`));
		expect(byKey.size).toBe(objects.length);
	});

	it("define the logs-* data view on @timestamp", () => {
		expect(objects.filter(o => o.type === "index-pattern")).toEqual([
			expect.objectContaining({
				attributes: expect.objectContaining({ title: "logs-*", timeFieldName: "@timestamp" })
			})
		]);
	});

	it("have saved searches for errors and for one request id, and a logs dashboard", () => {
		const searches = objects.filter(o => o.type === "search");
		const queries = searches.map(
			s => JSON.parse(s.attributes.kibanaSavedObjectMeta.searchSourceJSON).query.query
		);
		expect(queries).toEqual(expect.arrayContaining([expect.stringMatching(/^level : \("error"/)]));
		expect(queries).toEqual(expect.arrayContaining([expect.stringMatching(/^requestId : /)]));
		expect(objects.filter(o => o.type === "dashboard")).toHaveLength(1);
	});

	it("have references that resolve, and embedded JSON that parses", () => {
		for (const o of objects) {
			for (const ref of o.references)
				expect({
					from: o.id,
					to: `${ref.type}:${ref.id}`,
					found: byKey.has(`${ref.type}:${ref.id}`)
				}).toEqual({
					from: o.id,
					to: `${ref.type}:${ref.id}`,
					found: true
				});
			const source = JSON.parse(o.attributes.kibanaSavedObjectMeta?.searchSourceJSON ?? "{}");
			if (source.indexRefName)
				expect(o.references.map((r: any) => r.name)).toContain(source.indexRefName);
			if (o.type === "dashboard") {
				const panels = JSON.parse(o.attributes.panelsJSON);
				expect(panels.length).toBeGreaterThan(0);
				for (const p of panels)
					expect(o.references.map((r: any) => r.name)).toContain(p.panelRefName);
			}
		}
	});
});
