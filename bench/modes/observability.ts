/**
 * `--observability` (and a phase of `--report`): what metrics, log shipping and tracing cost, measured on the
 * product read and on the purchase flow, with everything off, with metrics and log shipping on, and with tracing on
 * top at two sampling ratios.
 */
import { ALL_SERVICES } from "../../config";
import type { Cli } from "../cli";
import { coresUsed, cpuWindow, settle } from "../cpu";
import { type ModeContext, runMeasured } from "../harness";
import { type Target, startFlashMart } from "../launch";
import { type LogSink, startLogSink } from "../log-sink";
import { type OtlpSink, startOtlpSink } from "../otlp-sink";
import { median } from "../report";
import { measureScenarioRow, newLogLines, outputMarks } from "../rows";
import { SCENARIOS, type Scenario } from "../scenarios";
import { progress, session } from "../session";
import type {
	ObservabilityFigure,
	ObservabilityOverhead,
	ObservabilityVariant,
	RowResult
} from "../types";

/** The product read measured by `--observability`. */
export const OBSERVED_SCENARIO = "product by id /api/products/:id";
/** The flow measured by `--observability`: every step of a purchase, so every kind of span. */
export const OBSERVED_FLOW = "purchase flow (cart item + checkout + pay)";

/** The production default, on every cluster: the variants differ in what they observe, not in what they log. */
const LOG_LEVEL = "info";

interface Variant {
	label: string;
	metricsAndLogs: boolean;
	/** TRACING_SAMPLE_RATIO; null for tracing off. */
	sampleRatio: number | null;
}

/** The longest wait before a round for the nodes to finish what the round before left running. */
const SETTLE_MAX_MS = 30_000;

/** The cores `pids` use with no load: the least of a few windows (a node just started may still be busy). */
async function idleLevel(pids: Array<number | undefined>): Promise<number | null> {
	const windows: number[] = [];
	for (let i = 0; i < 6; i++) {
		const used = await coresUsed(pids, 500);
		if (used === null) return null;
		windows.push(used);
	}
	return Math.min(...windows);
}

/** "off" first: every other variant is compared to it. */
const VARIANTS: Variant[] = [
	{ label: "observability off", metricsAndLogs: false, sampleRatio: null },
	{ label: "observability on: metrics + log shipping", metricsAndLogs: true, sampleRatio: null },
	{ label: "metrics + logs + tracing at 1.0", metricsAndLogs: true, sampleRatio: 1 },
	{ label: "metrics + logs + tracing at 0.1", metricsAndLogs: true, sampleRatio: 0.1 }
];

/** What a round measured: a flow's whole iterations (purchases/s, their p99), else its requests. */
function figureOf(row: RowResult): { perSecond: number; p99: number } | null {
	if (row.status !== "measured" || !row.measurement) return null;
	if (row.flow)
		return { perSecond: row.flow.iterationsPerSec, p99: row.flow.iterationLatencyMs.p99 };
	return { perSecond: row.measurement.requestsPerSec, p99: row.measurement.latencyMs.p99 };
}

/** CPU ms per request (a flow: per completed iteration) of a measured round, or null when not known. */
function cpuPerUnit(row: RowResult, seconds: number | null): number | null {
	if (seconds === null || row.status !== "measured") return null;
	const units = row.flow ? row.flow.completed : (row.measurement?.responses ?? 0);
	return units > 0 ? Math.round(((seconds * 1000) / units) * 1000) / 1000 : null;
}

/** Empty is unset (config/): each variable is spelled out, so the caller's environment cannot switch one on. */
function variantEnv(
	v: Variant,
	logs: LogSink | null,
	spans: OtlpSink | null
): Record<string, string> {
	return {
		LOG_LEVEL,
		METRICS_ENABLED: String(v.metricsAndLogs),
		ELASTICSEARCH_URL: logs?.url ?? "",
		TRACING_ENABLED: String(v.sampleRatio !== null),
		TRACING_SAMPLE_RATIO: v.sampleRatio === null ? "" : String(v.sampleRatio),
		OTEL_EXPORTER_OTLP_ENDPOINT: spans?.url ?? "",
		OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: ""
	};
}

interface Cluster {
	variant: Variant;
	target: Target;
	marks: ReturnType<typeof outputMarks>;
	logs: LogSink | null;
	spans: OtlpSink | null;
	/** Per scenario, every round's row in the order measured. */
	rounds: RowResult[][];
}

/**
 * `--observability`: one cluster per variant, all up at once, each with a stand-in Elasticsearch and a loopback
 * OTLP collector of its own when it ships logs and spans, so that each one's counts are its own. They are measured
 * in turns (round by round, each scenario on every cluster one after the other, who goes first rotating): on a
 * shared machine the load of the moment drifts by tens of percent from one minute to the next, and measured in
 * turns every variant sees the same drift. An idle cluster costs the others little (heartbeats, timers), but a
 * cluster just measured does not idle at once (events still consumed): each round starts once every cluster is back
 * at its idle level. Each variant's figure is the median of its rounds.
 */
export async function measureObservability(
	{ natsUrl, services, load, baseline }: ModeContext,
	cli: Cli
): Promise<{ rows: RowResult[]; overhead: ObservabilityOverhead | null }> {
	const scenarios = observedScenarios(cli);
	const clusters: Cluster[] = [];
	try {
		for (const variant of VARIANTS) {
			if (session.interrupted) break;
			const logs = variant.metricsAndLogs ? await startLogSink() : null;
			const spans = variant.sampleRatio !== null ? await startOtlpSink() : null;
			session.sinks.push(...[logs, spans].filter(s => s !== null));
			progress(`starting FlashMart with ${variant.label}`);
			// Never profiled: the clusters must differ only in what is observed.
			const target = await startFlashMart(
				natsUrl,
				services,
				{ ...cli, profile: [] },
				variantEnv(variant, logs, spans)
			);
			clusters.push({
				variant,
				target,
				marks: outputMarks(target.procs),
				logs,
				spans,
				rounds: scenarios.map(() => [])
			});
		}
		const allPids = clusters.flatMap(c => c.target.procs.map(p => p.child.pid));
		const idleCores = await idleLevel(allPids);
		if (idleCores !== null) progress(`idle level of all clusters: ${idleCores.toFixed(2)} cores`);
		for (let round = 1; round <= cli.rounds && clusters.length === VARIANTS.length; round++) {
			for (const [s, scenario] of scenarios.entries()) {
				for (let k = 0; k < clusters.length && !session.interrupted; k++) {
					const cluster = clusters[(k + round - 1) % clusters.length];
					if (idleCores !== null) {
						const { waitedSeconds, settled } = await settle(allPids, idleCores, SETTLE_MAX_MS);
						progress(
							`${settled ? "settled" : "NOT settled"} after ${waitedSeconds.toFixed(1)} s of waiting`
						);
					}
					progress(`${cluster.variant.label}, round ${round} of ${cli.rounds}:`);
					const cpu = cpuWindow(cluster.target.procs.map(p => p.child.pid));
					const row = await measureScenarioRow(scenario, cluster.target, cli, load, baseline, cpu);
					const cpuMsPerUnit = cpuPerUnit(row, cpu.seconds());
					cluster.rounds[s].push({
						...row,
						...(cpuMsPerUnit !== null ? { cpuMsPerUnit } : {}),
						name: `${scenario.name} [${cluster.variant.label}, round ${round} of ${cli.rounds}]`
					});
				}
			}
		}
	} finally {
		// The nodes flush their last log lines and spans to the sinks as they stop.
		await Promise.all(clusters.flatMap(c => c.target.procs.map(p => p.stop("SIGTERM", 10_000))));
	}
	const rows = clusters.flatMap(c =>
		scenarios.flatMap((scenario, s) => variantRow(c, scenario, s))
	);
	const variants = clusters.map(c => summarise(c, scenarios));
	const [off, on] = variants;
	// The summary's figures are of the read, or of the flow when only the flow was measured.
	const readOf = (v: ObservabilityVariant | undefined) =>
		v?.figures.find(f => f.scenario === scenarios[0].name);
	const offRead = readOf(off);
	const onRead = readOf(on);
	const overhead: ObservabilityOverhead | null =
		offRead && onRead && offRead.perSecond > 0
			? {
					scenario: scenarios[0].name,
					logLevel: LOG_LEVEL,
					offRequestsPerSec: offRead.perSecond,
					onRequestsPerSec: onRead.perSecond,
					ratio: Math.round((onRead.perSecond / offRead.perSecond) * 1000) / 1000,
					linesShipped: on.linesShipped ?? 0,
					rounds: { off: offRead.rounds, on: onRead.rounds },
					variants
				}
			: null;
	return { rows, overhead };
}

/** A variant's row for a scenario: its median round, named for the variant (the tables read these rows). */
function variantRow(c: Cluster, scenario: Scenario, s: number): RowResult[] {
	const measured = c.rounds[s].filter(r => figureOf(r));
	const values = measured.map(r => figureOf(r)!.perSecond);
	const row = measured.find(r => figureOf(r)!.perSecond === median(values)) ?? c.rounds[s].at(-1);
	if (!row) return [];
	const unit = row.flow ? `${row.unit ?? "iterations"}/s` : "req/s";
	const logs = s === 0 ? newLogLines(c.marks) : [];
	return [
		{
			...row,
			name: `${scenario.name} [${c.variant.label}]`,
			...(values.length > 1
				? {
						note: `median of ${values.length} rounds in turns: ${values.map(v => v.toFixed(v < 1000 ? 1 : 0)).join(", ")} ${unit}`
					}
				: {}),
			// The cluster's warn-and-above lines over all its rounds, once (on its first scenario's row).
			...(logs.length > 0 ? { logs } : {})
		}
	];
}

/** A variant's figures: per scenario, the median of its rounds' rates and, separately, of their p99s. */
function summarise(c: Cluster, scenarios: Scenario[]): ObservabilityVariant {
	const figures: ObservabilityFigure[] = [];
	for (const [s, scenario] of scenarios.entries()) {
		const measured = c.rounds[s].flatMap(r => figureOf(r) ?? []);
		if (measured.length === 0) continue;
		const flowRow = c.rounds[s].find(r => r.flow);
		// Every measured round's, or none: a median of some rounds would not pair with another variant's.
		const cpu = c.rounds[s].flatMap(r => (figureOf(r) ? [r.cpuMsPerUnit] : []));
		const cpuRounds = cpu.every(v => v !== undefined) ? (cpu as number[]) : [];
		figures.push({
			scenario: scenario.name,
			unit: flowRow ? `${flowRow.unit ?? "iterations"}/s` : "req/s",
			perSecond: median(measured.map(m => m.perSecond))!,
			p99: median(measured.map(m => m.p99))!,
			rounds: c.rounds[s].map(r => figureOf(r)?.perSecond ?? null),
			...(cpuRounds.length > 0 ? { cpuMsPerUnit: median(cpuRounds)!, cpuRounds } : {})
		});
	}
	return {
		label: c.variant.label,
		metricsAndLogs: c.variant.metricsAndLogs,
		sampleRatio: c.variant.sampleRatio,
		figures,
		...(c.logs ? { linesShipped: c.logs.received } : {}),
		...(c.spans ? { spansReceived: c.spans.spans, exportsRefused: c.spans.refused.length } : {})
	};
}

/** The read and the flow, or the one of them `--scenario` names. */
function observedScenarios(cli: Cli): Scenario[] {
	const filter = cli.filter?.toLowerCase();
	return [OBSERVED_SCENARIO, OBSERVED_FLOW]
		.filter(name => !filter || name.toLowerCase().includes(filter))
		.map(name => {
			const scenario = SCENARIOS.find(s => s.name === name);
			if (!scenario) throw new Error(`no scenario '${name}'`);
			return scenario;
		});
}

/** The mode alone: the baseline, then the clusters (started after it, one at a time). */
export async function runObservability(cli: Cli): Promise<number> {
	if (observedScenarios(cli).length === 0) {
		console.error(`bench: --observability measures '${OBSERVED_SCENARIO}' and '${OBSERVED_FLOW}';`);
		console.error(`neither contains '${cli.filter}'`);
		return 2;
	}
	return runMeasured(cli, [...ALL_SERVICES], {
		start: async () => null,
		async measure(ctx) {
			const { rows, overhead } = await measureObservability(ctx, cli);
			return { rows, observability: overhead };
		}
	});
}
