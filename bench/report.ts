/** The tables of a run's results (stdout, bench/results/latest.md); their shape is in bench/types.ts. */
import type {
	BenchReport,
	FlashSaleResult,
	HoldsResult,
	Measurement,
	ObservabilityFigure,
	ObservabilityOverhead,
	ObservabilityVariant,
	RowResult
} from "./types";

/** One line saying what metrics and log shipping cost (all that results from before tracing have). */
function observabilityLine(o: ObservabilityOverhead): string {
	const cost = Math.round((1 - o.ratio) * 1000) / 10;
	return (
		`observability overhead (${o.scenario}, LOG_LEVEL=${o.logLevel}): on/off = ${o.ratio} ` +
		`(${o.onRequestsPerSec.toFixed(0)} vs ${o.offRequestsPerSec.toFixed(0)} req/s, ` +
		`${cost >= 0 ? `${cost} % less` : `${-cost} % more`} throughput with metrics + log shipping; ` +
		`${o.linesShipped} log lines shipped)`
	);
}

/** A variant's figure for one scenario next to "off"'s and, with tracing, next to metrics + logs alone. */
export interface VariantOverhead {
	variant: ObservabilityVariant;
	figure: ObservabilityFigure;
	/** perSecond over "off"'s (3 decimals): 0.9 is 10 % less throughput. */
	ratio: number;
	/** p99 over "off"'s (3 decimals). */
	p99Ratio: number;
	/** With tracing: perSecond over that of metrics + logs without tracing, i.e. what tracing itself costs. */
	ratioToUntraced: number | null;
	/**
	 * With tracing: the median of the rounds' own ratios to metrics + logs alone (round i of one over round i of the
	 * other, measured minutes apart at most), so that a drift of the machine over the run cancels out.
	 */
	pairedRatioToUntraced: number | null;
	/** With tracing: CPU ms per request (or iteration) over that of metrics + logs alone (1.08 is 8 % more CPU). */
	cpuRatioToUntraced: number | null;
}

const ratioOf = (a: number, b: number) => (b > 0 ? Math.round((a / b) * 1000) / 1000 : 0);

/** The middle value of a sorted copy (of an even count, the upper middle: always one of the values), or undefined. */
export const median = (values: number[]): number | undefined =>
	[...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/**
 * The median of a[i] / b[i] over the rounds both measured, or null. Round i of one variant ran beside round i of the
 * other, so a round that measured nothing (null) drops its pair instead of shifting the pairs after it.
 */
function pairedRatio(a: Array<number | null>, b: Array<number | null>): number | null {
	const ratios = a.flatMap((v, i) => {
		const w = b[i];
		const r = v !== null && w !== null && w !== undefined ? v / w : NaN;
		return Number.isFinite(r) && r > 0 ? [r] : [];
	});
	const m = median(ratios);
	return m === undefined ? null : Math.round(m * 1000) / 1000;
}

/** Every variant but "off", for each scenario "off" measured. */
export function variantOverheads(o: ObservabilityOverhead): VariantOverhead[] {
	const [off, ...others] = o.variants ?? [];
	const untraced = others.find(v => v.metricsAndLogs && v.sampleRatio === null);
	const out: VariantOverhead[] = [];
	for (const base of off?.figures ?? []) {
		const fig = (v: ObservabilityVariant | undefined) =>
			v?.figures.find(f => f.scenario === base.scenario);
		for (const variant of others) {
			const figure = fig(variant);
			if (!figure) continue;
			const reference = variant.sampleRatio !== null ? fig(untraced) : undefined;
			out.push({
				variant,
				figure,
				ratio: ratioOf(figure.perSecond, base.perSecond),
				p99Ratio: ratioOf(figure.p99, base.p99),
				ratioToUntraced: reference ? ratioOf(figure.perSecond, reference.perSecond) : null,
				pairedRatioToUntraced: reference ? pairedRatio(figure.rounds, reference.rounds) : null,
				cpuRatioToUntraced:
					reference?.cpuMsPerUnit && figure.cpuMsPerUnit
						? ratioOf(figure.cpuMsPerUnit, reference.cpuMsPerUnit)
						: null
			});
		}
	}
	return out;
}

/** "-12.3 %" for a ratio of 0.877. */
export const percentChange = (ratio: number) => {
	const pct = Math.round((ratio - 1) * 1000) / 10;
	return `${pct > 0 ? "+" : ""}${pct.toFixed(1)} %`;
};

const OBSERVABILITY_HEADER = [
	"variant",
	"scenario",
	"rate",
	"vs off",
	"p99 ms",
	"p99 vs off",
	"tracing's own cost",
	"CPU ms each",
	"tracing's own CPU",
	"shipped"
];

/** A figure's CPU ms per request or iteration, "-" when it has none (results from before it was measured). */
const cpuEach = (f: ObservabilityFigure) =>
	f.cpuMsPerUnit === undefined ? "-" : f.cpuMsPerUnit.toFixed(f.cpuMsPerUnit < 10 ? 3 : 1);

/** The observability table: "off" once per scenario, then every other variant against it. */
function observabilityRows(o: ObservabilityOverhead): string[][] {
	const rate = (f: ObservabilityFigure) =>
		`${f.perSecond.toFixed(f.perSecond < 1000 ? 1 : 0)} ${f.unit}`;
	const shipped = (v: ObservabilityVariant) =>
		[
			v.linesShipped !== undefined ? `${v.linesShipped} log lines` : "",
			v.spansReceived !== undefined ? `${v.spansReceived} spans` : "",
			v.exportsRefused ? `${v.exportsRefused} exports REFUSED` : ""
		]
			.filter(Boolean)
			.join(", ") || "-";
	const off = o.variants?.[0];
	const out: string[][] = [];
	for (const f of off?.figures ?? []) {
		out.push([
			off!.label,
			f.scenario,
			rate(f),
			"-",
			f.p99.toFixed(1),
			"-",
			"-",
			cpuEach(f),
			"-",
			shipped(off!)
		]);
		for (const x of variantOverheads(o).filter(x => x.figure.scenario === f.scenario)) {
			out.push([
				x.variant.label,
				f.scenario,
				rate(x.figure),
				`${x.ratio.toFixed(3)} (${percentChange(x.ratio)})`,
				x.figure.p99.toFixed(1),
				percentChange(x.p99Ratio),
				x.ratioToUntraced === null
					? "-"
					: `${percentChange(x.ratioToUntraced)}${x.pairedRatioToUntraced === null ? "" : ` (paired ${percentChange(x.pairedRatioToUntraced)})`}`,
				cpuEach(x.figure),
				x.cpuRatioToUntraced === null ? "-" : percentChange(x.cpuRatioToUntraced),
				shipped(x.variant)
			]);
		}
	}
	return out;
}

const OBSERVABILITY_NOTE =
	"Medians of rounds measured in turns on clusters up at once. rate: req/s of the product read, whole " +
	"purchases/s of the flow; p99: of each request, of a whole purchase. vs off: the variant's rate over the " +
	"rate with everything off. tracing's own cost: the rate with tracing over the rate with metrics + logs alone " +
	"(paired: the median of each round's own ratio). CPU ms each: the CPU time FlashMart's nodes spent (/proc) per " +
	"request or whole purchase of the measured windows (median of rounds), without the load generator, the sinks " +
	"and nats-server; tracing's own CPU: that with tracing over that with metrics + logs alone.";

/** What observability costs, as lines of plain text. */
export function observabilityText(o: ObservabilityOverhead): string {
	if (!o.variants) return observabilityLine(o);
	const note = `observability overhead (LOG_LEVEL=${o.logLevel}): ${OBSERVABILITY_NOTE}`;
	return `${note}\n${aligned(OBSERVABILITY_HEADER, observabilityRows(o), new Set([2, 3, 4, 5, 6, 7, 8]))}`;
}

/** What observability costs, as markdown. */
export function observabilityMarkdown(o: ObservabilityOverhead): string {
	if (!o.variants) return `**${observabilityLine(o)}**`;
	return [
		`LOG_LEVEL=${o.logLevel} on every cluster. ${OBSERVABILITY_NOTE}`,
		"",
		markdownTable(OBSERVABILITY_HEADER, observabilityRows(o), new Set([2, 3, 4, 5, 6, 7, 8]))
	].join("\n");
}

const HEADER = [
	"scenario",
	"req/s",
	"p50 ms",
	"p95 ms",
	"p99 ms",
	"errors",
	"non-2xx",
	"ratio",
	"note"
];
/** Columns right-aligned in the text table. */
const NUMERIC = new Set([1, 2, 3, 4, 5, 6, 7]);

/** A row's note in the tables: why it was skipped, the first line of why it failed, a flow's rates. */
function note(row: RowResult): string {
	const reason = (row.reason ?? "").split("\n")[0];
	if (row.status === "skipped") return `skipped (${reason})`;
	const short = reason.length > 80 ? `${reason.slice(0, 79)}…` : reason;
	if (row.status === "failed") return `failed: ${short}`;
	if (row.flashSale) {
		const fs = row.flashSale;
		const parts = [
			`flash sale, ${row.flow?.virtualUsers ?? "?"} in flight: ${fs.sustainedPerSec.toFixed(0)} checkouts/s ` +
				`sustained, best ${fs.bestWindow.toFixed(0)}, last ${fs.lastWindow.toFixed(0)} (${fs.lastToBest}x)`,
			`admitted p99 ${fs.admittedLatencyMs.p99.toFixed(0)} ms`,
			`${fs.serverErrors} 5xx (${fs.overloaded} overloaded)`
		];
		if (row.check) parts.push(row.check.ok ? firstWords(row.check.summary) : "CHECK FAILED");
		return parts.join("; ");
	}
	if (row.flow) {
		const f = row.flow;
		const parts = [
			`flow, ${f.virtualUsers} VUs: ${f.iterationsPerSec.toFixed(1)} ${row.unit ?? "iterations"}/s`,
			"req/s = steps/s, ratio on steps/s"
		];
		if (row.check) parts.push(row.check.ok ? firstWords(row.check.summary) : "CHECK FAILED");
		return parts.join("; ");
	}
	return row.note ?? "";
}

/** "0 oversell: ..." → "0 oversell". */
const firstWords = (summary: string) => summary.split(":")[0];

function cells(name: string, m: Measurement | undefined, ratio: string, text: string): string[] {
	if (!m) return [name, "-", "-", "-", "-", "-", "-", ratio, text];
	return [
		name,
		m.requestsPerSec.toFixed(0),
		m.latencyMs.p50.toFixed(2),
		m.latencyMs.p95.toFixed(2),
		m.latencyMs.p99.toFixed(2),
		String(m.errors),
		String(m.non2xx),
		ratio,
		text
	];
}

/** One line per row; a measured flow adds one per step, then one for its whole iterations. */
function rowLines(row: RowResult): string[][] {
	const ratio = row.ratio === null ? "-" : row.ratio.toFixed(2);
	const lines = [cells(row.name, row.measurement, ratio, note(row))];
	if (row.flow) {
		row.flow.steps.forEach((step, i) => {
			lines.push(cells(`  ${i + 1}. ${step.name} ${step.method} ${step.path}`, step, "-", ""));
		});
		const f = row.flow;
		lines.push([
			`  = whole ${singular(row.unit)} (${f.completed} ok of ${f.iterations})`,
			f.iterationsPerSec.toFixed(1),
			f.iterationLatencyMs.p50.toFixed(2),
			f.iterationLatencyMs.p95.toFixed(2),
			f.iterationLatencyMs.p99.toFixed(2),
			"",
			"",
			"-",
			`${row.unit ?? "iterations"}/s; latency of all steps back to back`
		]);
	}
	return lines;
}

const singular = (unit = "iterations") => unit.replace(/s$/, "");

function rows(report: BenchReport): string[][] {
	return [report.baseline, ...report.scenarios].flatMap(rowLines);
}

/** Columns padded to their widest cell, `numeric` ones right-aligned. */
function aligned(header: string[], body: string[][], numeric: Set<number>): string {
	const all = [header, ...body];
	const widths = header.map((_, i) => Math.max(...all.map(r => r[i].length)));
	const line = (r: string[]) =>
		r
			.map((c, i) => (numeric.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i])))
			.join("  ")
			.trimEnd();
	const rule = widths.map(w => "-".repeat(w)).join("  ");
	return [line(header), rule, ...body.map(line)].join("\n");
}

function markdownTable(header: string[], body: string[][], numeric: Set<number>): string {
	const escape = (c: string) => c.replace(/\|/g, "\\|");
	return [
		`| ${header.join(" | ")} |`,
		`|${header.map((_, i) => (numeric.has(i) ? " ---: " : " --- ")).join("|")}|`,
		...body.map(r => `| ${r.map(escape).join(" | ")} |`)
	].join("\n");
}

/** A plain-text table for the terminal. */
export function textTable(report: BenchReport): string {
	return aligned(HEADER, rows(report), NUMERIC);
}

const HOLDS_HEADER = [
	"open holds",
	"pairs",
	"pairs/s",
	"p50 ms",
	"p95 ms",
	"p99 ms",
	"mean ms",
	"p50 / 0 holds",
	"mean / 0 holds",
	"control p50 ms",
	"corrected p50 / mean",
	"opening s"
];

/** `--holds`: one line per level of open holds, figures of one reserve + commit pair. */
function holdsRows(h: HoldsResult): string[][] {
	const ratio = (r: number | undefined) => (r === undefined ? "-" : `${r.toFixed(2)}x`);
	return h.levels.map(l => [
		l.requested === undefined ? String(l.holds) : `${l.holds} (of ${l.requested})`,
		String(l.pairs),
		l.pairsPerSec.toFixed(0),
		l.latencyMs.p50.toFixed(3),
		l.latencyMs.p95.toFixed(3),
		l.latencyMs.p99.toFixed(3),
		l.latencyMs.mean.toFixed(3),
		ratio(l.ratioP50),
		ratio(l.ratioMean),
		l.controlLatencyMs ? l.controlLatencyMs.p50.toFixed(3) : "-",
		l.correctedP50 === undefined ? "-" : `${ratio(l.correctedP50)} / ${ratio(l.correctedMean)}`,
		l.openSeconds.toFixed(1)
	]);
}

/** The holds levels as a plain-text table. */
export function holdsTable(h: HoldsResult): string {
	const numeric = new Set(HOLDS_HEADER.map((_, i) => i));
	return `reserve + commit on one product (${h.store}), by open holds on it:\n${aligned(HOLDS_HEADER, holdsRows(h), numeric)}`;
}

/** The holds levels as a markdown table. */
export function holdsMarkdown(h: HoldsResult): string {
	return markdownTable(HOLDS_HEADER, holdsRows(h), new Set(HOLDS_HEADER.map((_, i) => i)));
}

/** The flash sale's figures, in lines of text (findings) or markdown (the report's section). */
export function flashSaleLines(fs: FlashSaleResult, md = false): string[] {
	const b = (t: string) => (md ? `**${t}**` : t);
	const rejects = Object.entries(fs.rejects)
		.sort((x, y) => y[1] - x[1])
		.map(([what, n]) => `${what}: ${n}`)
		.join(", ");
	return [
		`${fs.buyers} buyers registered in ${fs.registrationSeconds} s (before the sale started); ` +
			(fs.warmup
				? `then ${fs.warmup.seconds} s of warm-up on another product (${fs.warmup.checkouts} checkouts); `
				: "") +
			`${fs.units} units, limit ${fs.perCustomerLimit} per buyer`,
		`${b(`${fs.sustainedPerSec.toFixed(0)} checkouts/s sustained`)} (${fs.admitted} admitted over ` +
			`${fs.sellOutSeconds} s to the last unit; ${fs.runSeconds} s to the last answer)`,
		`per ${fs.windowUnits} units: best ${fs.bestWindow.toFixed(0)}/s, last ${fs.lastWindow.toFixed(0)}/s, ` +
			`${b(`last / best ${fs.lastToBest}`)}; every window: ` +
			fs.windows.map(w => w.checkoutsPerSec.toFixed(0)).join(" "),
		`admitted (201) checkouts: p50 ${fs.admittedLatencyMs.p50.toFixed(1)} ms, p95 ` +
			`${fs.admittedLatencyMs.p95.toFixed(1)} ms, ${b(`p99 ${fs.admittedLatencyMs.p99.toFixed(1)} ms`)}, ` +
			`max ${fs.admittedLatencyMs.max.toFixed(0)} ms`,
		`sold ${fs.admittedUnits} units (${fs.admitted} 201s), oversold ${fs.oversold}, buyers over the limit ` +
			`${fs.overLimitBuyers}; unitsLeft ${fs.unitsLeft}; inventory ${JSON.stringify(fs.inventory)}`,
		`rejects: ${rejects || "none"}; ${fs.serverErrors} 5xx (${fs.overloaded} of them 503/429 with ` +
			`Retry-After), ${fs.noAnswer} without an answer`
	];
}

/** "201: 120, 503: 2" */
export function statusBreakdown(m: Measurement): string {
	return Object.entries(m.statusCodes)
		.map(([code, n]) => `${code}: ${n}`)
		.join(", ");
}

/**
 * What deserves a line under the table, for each row: non-2xx answers with their statuses, requests without an
 * answer, a flow's check, the nodes' warn/error log lines. Plain text; `markdown` formats the same facts.
 */
export function findings(row: RowResult): string[] {
	const out: string[] = [];
	const answers = (label: string, m: Measurement) => {
		if (m.non2xx > 0) out.push(`${label} had non-2xx answers (${statusBreakdown(m)})`);
		if (m.errors > 0)
			out.push(`${label}: ${m.errors} request(s) without an answer (${m.timeouts} timeouts)`);
	};
	// A flash sale's non-2xx answers are its rejects, listed with its figures.
	if (row.flashSale)
		for (const line of flashSaleLines(row.flashSale)) out.push(`${row.name}: ${line}`);
	else if (row.flow) row.flow.steps.forEach(s => answers(`${row.name} / ${s.name}`, s));
	else if (row.measurement) answers(row.name, row.measurement);
	if (row.check) {
		out.push(`${row.name}: ${row.check.summary}`);
		for (const d of row.check.details) out.push(`  ${d}`);
	}
	if (row.logs && row.logs.length > 0) {
		const total = row.logs.reduce((n, g) => n + g.count, 0);
		out.push(`${row.name}: ${total} warn/error log line(s) on FlashMart's nodes:`);
		for (const g of row.logs.slice(0, 8)) {
			out.push(`  ${g.count} x [${g.node}] ${g.level}: ${g.message}`);
		}
		if (row.logs.length > 8) out.push(`  ... ${row.logs.length - 8} more kinds (latest.json)`);
	}
	return out;
}

/** Nodes' services as `--groups` ran them: "api; users; products + media; ...". */
export function groupsText(groups: string[][]): string {
	return groups.map(g => g.join(" + ")).join("; ");
}

/**
 * The run as a markdown document: what was run, on what, and the table; then what observability costs, unless the
 * caller shows that itself (`observability: false`).
 */
export function markdown(report: BenchReport, { observability = true } = {}): string {
	const out = [
		"# FlashMart benchmark",
		"",
		`${report.date} · Node ${report.node} · ${report.platform} · ${report.cpus} CPU ` +
			`(${report.cpuModel}) · ${report.connections} connections (flows: ${report.virtualUsers} virtual users) · ` +
			`${report.duration} s measured after ${report.warmup} s warm-up · services: ${report.services.join(", ")}` +
			(report.groups
				? ` · one node per service group (\`--groups\`): ${groupsText(report.groups)}`
				: ""),
		"",
		"`ratio` = req/s of the row / req/s of the baseline (a bare moleculer-web gateway calling an " +
			"echo action over the same NATS, measured in the same run). Latency is over every response.",
		"",
		"A **flow** runs a sequence of requests per iteration with one virtual user per connection (closed loop). " +
			"Its first line pools every step: req/s = steps/s, and its ratio is steps/s / baseline req/s. The numbered " +
			"lines are its steps; the `=` line is whole iterations (iterations/s, latency of all steps back to back).",
		"",
		markdownTable(HEADER, rows(report), NUMERIC)
	];
	if (report.observability && observability) {
		out.push("", observabilityMarkdown(report.observability));
	}
	if (report.holds) {
		out.push(
			"",
			`Reserve + commit on one product (\`--holds\`, in-process inventory, ${report.holds.store}), ` +
				"by open holds on it:",
			"",
			holdsMarkdown(report.holds)
		);
	}
	const notes = [report.baseline, ...report.scenarios].flatMap(findings);
	if (notes.length > 0) {
		out.push("", "## Findings", "", "```", ...notes, "```");
	}
	if (report.profiles.length > 0) {
		out.push(
			"",
			"Profiled run (`--profile`): these nodes ran under `--cpu-prof` (slower rows).",
			...report.profiles.map(p => `- \`${p}\``)
		);
	}
	return `${out.join("\n")}\n`;
}
