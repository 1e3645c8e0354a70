/**
 * The performance issue's targets, checked against a bench run: each one's target, what was measured, its ratio to
 * the bare baseline of the same run, and pass/fail (null when the run did not measure it).
 */
import { percentChange, variantOverheads } from "./report";
import type { BenchReport, Measurement, RowResult, TargetResult } from "./types";

/** What tracing at the production ratio may cost on top of metrics + logs, in throughput. */
export const TRACING_COST_LIMIT = 0.1;
/** TRACING_SAMPLE_RATIO of compose and Kubernetes, the one the tracing targets are about. */
const PRODUCTION_SAMPLE_RATIO = 0.1;

/** Allowed RSS growth from the first to the third run of the memory check (per node). */
export const RSS_GROWTH_LIMIT = 0.1;
export const RSS_LIMIT_MB = 150;

const fmt = (n: number, digits = 0) => n.toFixed(digits);

function row(report: BenchReport, starts: string): RowResult | undefined {
	return report.scenarios.find(
		r => r.name.startsWith(starts) && r.status === "measured" && !r.name.includes("[")
	);
}

/** Requests without an answer, timeouts and non-2xx answers. */
const errorsOf = (m: Measurement) => m.errors + m.timeouts + m.non2xx;

function requestTarget(
	report: BenchReport,
	name: string,
	starts: string,
	want: { ratio: number; rps?: number; p99?: number; errors?: boolean }
): TargetResult {
	const r = row(report, starts);
	const parts = [`>= ${want.ratio}x baseline`];
	if (want.rps) parts.push(`>= ${want.rps} req/s`);
	if (want.p99) parts.push(`p99 < ${want.p99} ms`);
	if (want.errors) parts.push("0 errors");
	const target = parts.join(", ");
	if (!r?.measurement)
		return { scenario: name, target, measured: "not measured", ratio: "-", pass: null };
	const m = r.measurement;
	const ratio = r.ratio ?? 0;
	const measured = [`${fmt(m.requestsPerSec)} req/s`, `p99 ${fmt(m.latencyMs.p99, 1)} ms`];
	if (want.errors) measured.push(`${errorsOf(m)} errors`);
	const pass =
		ratio >= want.ratio &&
		(!want.rps || m.requestsPerSec >= want.rps) &&
		(!want.p99 || m.latencyMs.p99 < want.p99) &&
		(!want.errors || errorsOf(m) === 0);
	return {
		scenario: name,
		target,
		measured: measured.join(", "),
		ratio: `${ratio.toFixed(2)}x`,
		pass
	};
}

/** The purchase flow's target, of the row whose name starts with `starts`. */
function purchaseTarget(report: BenchReport, name: string, starts: string): TargetResult {
	const target = ">= 300 purchases/s, p95 < 100 ms per request, 0 errors, 0 oversell";
	const r = row(report, starts);
	if (!r?.measurement || !r.flow)
		return { scenario: name, target, measured: "not measured", ratio: "-", pass: null };
	const f = r.flow;
	const worstP95 = Math.max(...f.steps.map(s => s.latencyMs.p95));
	const errors = f.steps.reduce((n, s) => n + errorsOf(s), 0);
	const oversell = r.check ? (r.check.ok ? "0 oversell" : "CHECK FAILED") : "unchecked";
	const pass = f.iterationsPerSec >= 300 && worstP95 < 100 && errors === 0 && r.check?.ok === true;
	return {
		scenario: name,
		target,
		measured:
			`${fmt(f.iterationsPerSec, 1)} purchases/s, worst step p95 ${fmt(worstP95)} ms ` +
			`(${f.steps.map(s => `${s.name} ${fmt(s.latencyMs.p95)}`).join(", ")}), ${errors} errors, ${oversell}`,
		ratio: r.ratio === null ? "-" : `${r.ratio.toFixed(2)}x (steps/s)`,
		pass
	};
}

/** Issue 19: reserve + commit as holds pile up, flat within this factor of the 0-holds level. */
export const HOLDS_FLAT_WITHIN = 1.5;

function holdsTarget(report: BenchReport): TargetResult {
	const scenario =
		"reserve + commit on one product at 0 / 1,000 / 10,000 / 50,000 open holds (`--holds`)";
	const target =
		`every level's p50 and mean within ${HOLDS_FLAT_WITHIN}x of 0 holds (corrected by the control ` +
		"product's drift when measured)";
	const levels = report.holds?.levels ?? [];
	if (levels.length < 2)
		return { scenario, target, measured: "not measured", ratio: "-", pass: null };
	const measured = levels
		.map(
			l =>
				`${l.holds}${l.requested === undefined ? "" : ` (of ${l.requested})`}: ` +
				`${fmt(l.latencyMs.p50, 2)} / ${fmt(l.latencyMs.mean, 2)} ms`
		)
		.join(", ");
	const worst = Math.max(
		...levels.map(l =>
			Math.max(l.correctedP50 ?? l.ratioP50 ?? 0, l.correctedMean ?? l.ratioMean ?? 0)
		)
	);
	return {
		scenario,
		target,
		measured: `p50 / mean per pair at ${measured}`,
		ratio: `${worst.toFixed(2)}x (worst / 0 holds)`,
		pass: worst <= HOLDS_FLAT_WITHIN && levels.every(l => l.requested === undefined)
	};
}

/** Issue 19's flash-sale targets. */
export const FLASH_SALE_TARGETS = { lastToBest: 0.8, perSec: 500, p99: 250 };

function flashSaleTargets(report: BenchReport): TargetResult[] {
	const r = report.scenarios.find(x => x.name.startsWith("flash-sale") && x.status === "measured");
	const fs = r?.flashSale;
	const t = FLASH_SALE_TARGETS;
	const scenario = "flash sale: one product, thousands of buyers, cluster over NATS";
	const rows: Array<[string, string, (() => boolean) | null, string]> = [
		[
			"every unit sold exactly once, 0 oversell",
			fs
				? `${fs.admittedUnits} of ${fs.units} units, oversold ${fs.oversold}, check ${r?.check?.ok ? "ok" : "FAILED"}`
				: "",
			fs ? () => r?.check?.ok === true && fs.oversold === 0 && fs.admittedUnits === fs.units : null,
			"-"
		],
		[
			"0 5xx (a 503 with Retry-After is the overload answer, counted apart)",
			fs ? `${fs.serverErrors - fs.overloaded} 5xx besides ${fs.overloaded} overload answers` : "",
			fs ? () => fs.serverErrors - fs.overloaded === 0 : null,
			"-"
		],
		[
			`last ${fs?.windowUnits ?? 250}-unit window >= ${t.lastToBest}x the best`,
			fs ? `last ${fmt(fs.lastWindow)}/s, best ${fmt(fs.bestWindow)}/s` : "",
			fs ? () => fs.lastToBest >= t.lastToBest : null,
			fs ? `${fs.lastToBest.toFixed(2)}x (last/best)` : "-"
		],
		[
			`>= ${t.perSec} checkouts/s sustained`,
			fs ? `${fmt(fs.sustainedPerSec)} checkouts/s over ${fmt(fs.sellOutSeconds, 1)} s` : "",
			fs ? () => fs.sustainedPerSec >= t.perSec : null,
			"-"
		],
		[
			`p99 < ${t.p99} ms for admitted checkouts`,
			fs ? `p99 ${fmt(fs.admittedLatencyMs.p99, 1)} ms` : "",
			fs ? () => fs.admittedLatencyMs.p99 < t.p99 : null,
			"-"
		]
	];
	return rows.map(([target, measured, pass, ratio]) => ({
		scenario,
		target,
		measured: pass ? measured : "not measured",
		ratio,
		pass: pass ? pass() : null
	}));
}

export function evaluateTargets(report: BenchReport): TargetResult[] {
	const out: TargetResult[] = [
		requestTarget(
			report,
			"`GET /api/products/:id` (public, cached), 50 connections",
			"product by id",
			{
				ratio: 0.6,
				rps: 5000,
				p99: 25,
				errors: true
			}
		),
		// Issue 20: the same read of a product with options (its variants and their availability).
		requestTarget(
			report,
			"`GET /api/products/:id` of a product with variants (public, cached), 50 connections",
			"variant product by id",
			{ ratio: 0.6, rps: 5000, p99: 25, errors: true }
		),
		requestTarget(report, "`GET /api/products?category=&page=`", "product list", {
			ratio: 0.4,
			p99: 40
		}),
		requestTarget(report, "authenticated `GET /api/users/me`", "authenticated /api/users/me", {
			ratio: 0.6
		}),
		purchaseTarget(
			report,
			"purchase flow (add to cart, checkout, pay; distinct users)",
			"purchase flow ("
		),
		// Issue 21: the same target with a discount code and a shipping method in every purchase.
		purchaseTarget(
			report,
			"purchase flow with a discount code and a shipping method (add, apply code, checkout, pay)",
			"purchase flow with code"
		),
		// Issue 20: the same target when every line names a variant of a product with options.
		purchaseTarget(
			report,
			"purchase flow of variants (add a variant, checkout, pay)",
			"purchase flow of variants"
		),
		...flashSaleTargets(report),
		holdsTarget(report)
	];
	const o = report.observability;
	out.push({
		scenario: "observability overhead (product read, metrics+logs on vs off)",
		target: "<= 25%",
		measured: o
			? `${fmt((1 - o.ratio) * 100, 1)}% (${fmt(o.onRequestsPerSec)} on vs ${fmt(o.offRequestsPerSec)} off req/s)`
			: "not measured",
		ratio: o ? `${o.ratio.toFixed(2)}x (on/off)` : "-",
		pass: o ? 1 - o.ratio <= 0.25 : null
	});
	for (const [what, starts] of [
		["product read", "product by id"],
		["purchase flow", "purchase flow"]
	]) {
		const x = o
			? variantOverheads(o).find(
					v =>
						v.variant.sampleRatio === PRODUCTION_SAMPLE_RATIO &&
						v.figure.scenario.startsWith(starts)
				)
			: undefined;
		// Paired round by round where the rounds are known: the machine's drift over the run cancels out.
		const own = x?.pairedRatioToUntraced ?? x?.ratioToUntraced ?? null;
		const cpu =
			x?.cpuRatioToUntraced != null
				? `; CPU per ${what === "product read" ? "request" : "purchase"} ${percentChange(x.cpuRatioToUntraced)}`
				: "";
		out.push({
			scenario: `tracing at ${PRODUCTION_SAMPLE_RATIO} (${what}): metrics + logs + tracing vs metrics + logs alone`,
			target: `<= ${TRACING_COST_LIMIT * 100}% of the throughput`,
			measured:
				x && own !== null
					? `${fmt((1 - own) * 100, 1)}% (${x.pairedRatioToUntraced != null ? "median of paired rounds; " : ""}` +
						`${fmt(x.figure.perSecond, 1)} ${x.figure.unit})${cpu}; vs all off: ` +
						`${percentChange(x.ratio)} throughput, p99 ${fmt(x.figure.p99, 1)} ms (${percentChange(x.p99Ratio)})`
					: "not measured",
			ratio: own !== null ? `${own.toFixed(2)}x (traced/untraced)` : "-",
			pass: own !== null ? 1 - own <= TRACING_COST_LIMIT : null
		});
	}
	const mem = report.memory;
	if (mem && mem.runs.length > 0) {
		const first = mem.runs[0].rssMb;
		const last = mem.runs[mem.runs.length - 1].rssMb;
		const max = Math.max(...Object.values(first));
		const worst = Object.entries(first).sort((a, b) => b[1] - a[1])[0];
		const growth = Object.keys(last).map(node => ({
			node,
			rel: first[node] > 0 ? (last[node] - first[node]) / first[node] : 0
		}));
		const grew = growth.sort((a, b) => b.rel - a.rel)[0];
		out.push({
			scenario: `memory: RSS per node after ${mem.runSeconds} s of load`,
			target: `< ${RSS_LIMIT_MB} MB`,
			measured: `max ${fmt(max)} MB (${worst[0]})`,
			ratio: "-",
			pass: Object.values(mem.runs[0].rssMb).every(v => v < RSS_LIMIT_MB)
		});
		out.push({
			scenario: `memory: no growth across ${mem.runs.length} consecutive runs`,
			target: `RSS of run ${mem.runs.length} within ${RSS_GROWTH_LIMIT * 100}% of run 1, every node`,
			measured: `largest change ${grew.rel >= 0 ? "+" : ""}${fmt(grew.rel * 100, 1)}% (${grew.node})`,
			ratio: "-",
			pass: growth.every(g => g.rel <= RSS_GROWTH_LIMIT)
		});
	} else {
		out.push({
			scenario: "memory",
			target: `RSS < ${RSS_LIMIT_MB} MB per node; no growth`,
			measured: "not measured",
			ratio: "-",
			pass: null
		});
	}
	const cold = report.coldStart;
	out.push({
		scenario: "embedded cold start (`npm start` to `/ready` 200)",
		target: "< 3 s",
		measured: cold
			? `${fmt(cold.medianMs / 1000, 2)} s (median of ${cold.attemptsMs.length})`
			: "not measured",
		ratio: "-",
		pass: cold ? cold.medianMs < 3000 : null
	});
	return out;
}
