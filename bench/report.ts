/** The benchmark's results: their shape (latest.json) and their tables (stdout, latest.md). */
import type { Measurement } from "./measure";
import type { HttpMethod } from "./scenarios";

export interface RowResult {
	name: string;
	method: HttpMethod;
	path: string;
	status: "measured" | "skipped" | "failed";
	/** Why it was skipped or failed. */
	reason?: string;
	measurement?: Measurement;
	/** This row's req/s over the baseline's (same run); null when either is missing. */
	ratio: number | null;
}

export interface BenchReport {
	date: string;
	node: string;
	platform: string;
	cpus: number;
	cpuModel: string;
	connections: number;
	/** Seconds measured per row. */
	duration: number;
	/** Seconds of warm-up before each measured run, not counted. */
	warmup: number;
	/** The services FlashMart had (config ALL_SERVICES), which decides what is skipped. */
	services: string[];
	baseline: RowResult;
	scenarios: RowResult[];
	/** .cpuprofile files of the gateway node written by this run (`--profile`). */
	profiles: string[];
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

/** A row's note in the tables: why it was skipped, or the first line of why it failed. */
function note(row: RowResult): string {
	const reason = (row.reason ?? "").split("\n")[0];
	if (row.status === "skipped") return `skipped (${reason})`;
	const short = reason.length > 80 ? `${reason.slice(0, 79)}…` : reason;
	if (row.status === "failed") return `failed: ${short}`;
	return "";
}

function cells(row: RowResult): string[] {
	const m = row.measurement;
	if (!m) return [row.name, "-", "-", "-", "-", "-", "-", "-", note(row)];
	return [
		row.name,
		m.requestsPerSec.toFixed(0),
		m.latencyMs.p50.toFixed(2),
		m.latencyMs.p95.toFixed(2),
		m.latencyMs.p99.toFixed(2),
		String(m.errors),
		String(m.non2xx),
		row.ratio === null ? "-" : row.ratio.toFixed(2),
		note(row)
	];
}

function rows(report: BenchReport): string[][] {
	return [report.baseline, ...report.scenarios].map(cells);
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

/** The run as a markdown document: what was run, on what, and the table. */
export function markdown(report: BenchReport): string {
	const escape = (c: string) => c.replace(/\|/g, "\\|");
	const out = [
		"# FlashMart benchmark",
		"",
		`${report.date} · Node ${report.node} · ${report.platform} · ${report.cpus} CPU ` +
			`(${report.cpuModel}) · ${report.connections} connections · ${report.duration} s measured ` +
			`after ${report.warmup} s warm-up · services: ${report.services.join(", ")}`,
		"",
		"`ratio` = req/s of the row / req/s of the baseline (a bare moleculer-web gateway calling an " +
			"echo action over the same NATS, measured in the same run). Latency is over every response.",
		"",
		`| ${HEADER.join(" | ")} |`,
		`|${HEADER.map((_, i) => (NUMERIC.has(i) ? " ---: " : " --- ")).join("|")}|`,
		...rows(report).map(r => `| ${r.map(escape).join(" | ")} |`)
	];
	if (report.profiles.length > 0) {
		out.push(
			"",
			"Profiled run (`--profile`): the FlashMart gateway ran under `--cpu-prof` (slower rows).",
			...report.profiles.map(p => `- \`${p}\``)
		);
	}
	return `${out.join("\n")}\n`;
}
