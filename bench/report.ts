/** The tables of a run's results (stdout, bench/results/latest.md); their shape is in bench/types.ts. */
import type {
	BenchReport,
	FlashSaleResult,
	HoldsResult,
	Measurement,
	ObservabilityOverhead,
	RowResult
} from "./types";

/** One line saying what observability costs. */
export function observabilityLine(o: ObservabilityOverhead): string {
	const cost = Math.round((1 - o.ratio) * 1000) / 10;
	return (
		`observability overhead (${o.scenario}, LOG_LEVEL=${o.logLevel}): on/off = ${o.ratio} ` +
		`(${o.onRequestsPerSec.toFixed(0)} vs ${o.offRequestsPerSec.toFixed(0)} req/s, ` +
		`${cost >= 0 ? `${cost} % less` : `${-cost} % more`} throughput with metrics + log shipping; ` +
		`${o.linesShipped} log lines shipped)`
	);
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

/** A plain-text table for the terminal. */
export function textTable(report: BenchReport): string {
	const all = [HEADER, ...rows(report)];
	const widths = HEADER.map((_, i) => Math.max(...all.map(r => r[i].length)));
	const line = (r: string[]) =>
		r
			.map((c, i) => (NUMERIC.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i])))
			.join("  ")
			.trimEnd();
	const rule = widths.map(w => "-".repeat(w)).join("  ");
	return [line(HEADER), rule, ...all.slice(1).map(line)].join("\n");
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

/** The holds levels as a plain-text table (every column but none right-aligned). */
export function holdsTable(h: HoldsResult): string {
	const all = [HOLDS_HEADER, ...holdsRows(h)];
	const widths = HOLDS_HEADER.map((_, i) => Math.max(...all.map(r => r[i].length)));
	const line = (r: string[]) => r.map((c, i) => c.padStart(widths[i])).join("  ");
	return [
		`reserve + commit on one product (${h.store}), by open holds on it:`,
		line(HOLDS_HEADER),
		widths.map(w => "-".repeat(w)).join("  "),
		...all.slice(1).map(line)
	].join("\n");
}

/** The holds levels as a markdown table. */
export function holdsMarkdown(h: HoldsResult): string[] {
	return [
		`| ${HOLDS_HEADER.join(" | ")} |`,
		`|${HOLDS_HEADER.map(() => " ---: ").join("|")}|`,
		...holdsRows(h).map(r => `| ${r.join(" | ")} |`)
	];
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

/** The run as a markdown document: what was run, on what, and the table. */
export function markdown(report: BenchReport): string {
	const escape = (c: string) => c.replace(/\|/g, "\\|");
	const out = [
		"# FlashMart benchmark",
		"",
		`${report.date} · Node ${report.node} · ${report.platform} · ${report.cpus} CPU ` +
			`(${report.cpuModel}) · ${report.connections} connections (flows: ${report.virtualUsers} virtual users) · ` +
			`${report.duration} s measured after ${report.warmup} s warm-up · services: ${report.services.join(", ")}`,
		"",
		"`ratio` = req/s of the row / req/s of the baseline (a bare moleculer-web gateway calling an " +
			"echo action over the same NATS, measured in the same run). Latency is over every response.",
		"",
		"A **flow** runs a sequence of requests per iteration with one virtual user per connection (closed loop). " +
			"Its first line pools every step: req/s = steps/s, and its ratio is steps/s / baseline req/s. The numbered " +
			"lines are its steps; the `=` line is whole iterations (iterations/s, latency of all steps back to back).",
		"",
		`| ${HEADER.join(" | ")} |`,
		`|${HEADER.map((_, i) => (NUMERIC.has(i) ? " ---: " : " --- ")).join("|")}|`,
		...rows(report).map(r => `| ${r.map(escape).join(" | ")} |`)
	];
	if (report.observability) out.push("", `**${observabilityLine(report.observability)}**`);
	if (report.holds) {
		out.push(
			"",
			`Reserve + commit on one product (\`--holds\`, in-process inventory, ${report.holds.store}), ` +
				"by open holds on it:",
			"",
			...holdsMarkdown(report.holds)
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
