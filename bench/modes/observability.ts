/**
 * `--observability` (and a phase of `--report`): what metrics and log shipping cost, measured on the product read
 * with both off and with both on.
 */
import { ALL_SERVICES } from "../../config";
import type { Cli } from "../cli";
import { type ModeContext, runMeasured } from "../harness";
import { type Target, startFlashMart } from "../launch";
import { startLogSink } from "../log-sink";
import { measureRow, newLogLines, outputMarks, rowBase } from "../rows";
import { SCENARIOS, isFlow, resolveRequest } from "../scenarios";
import { progress, session } from "../session";
import type { ObservabilityOverhead, RowResult } from "../types";

/** The product read measured by `--observability`. */
export const OBSERVED_SCENARIO = "product by id /api/products/:id";

/** Rounds of `--observability`: each variant is measured this many times, in turns. */
const OBSERVABILITY_ROUNDS = 3;

/** The middle value (of an odd count; the upper middle otherwise). */
const median = (values: number[]) =>
	[...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/**
 * `--observability`: the product read on a cluster with metrics and log shipping off and on another with both on
 * (logs shipped to a stand-in sink on loopback). Both clusters are up at once and measured in turns (off, on, off,
 * on, ...): on a shared machine the load of the moment drifts by tens of percent from one minute to the next, and
 * measured in turns both variants see the same drift. An idle cluster costs the other little (heartbeats, timers).
 * Each variant's figure is the median of its rounds. The same LOG_LEVEL (info, the production default) in both:
 * the difference is the reporter, the HTTP metrics and the shipping.
 */
export async function measureObservability(
	{ natsUrl, services, load, baseline }: ModeContext,
	cli: Cli
): Promise<{ rows: RowResult[]; overhead: ObservabilityOverhead | null }> {
	const scenario = SCENARIOS.find(s => s.name === OBSERVED_SCENARIO);
	if (!scenario || isFlow(scenario)) throw new Error(`no request scenario '${OBSERVED_SCENARIO}'`);
	const sink = await startLogSink();
	session.sink = sink;
	const logLevel = "info";
	const variants: Array<{ label: string; env: Record<string, string> }> = [
		{
			label: "observability off",
			// Empty is unset (config/): whatever the caller's environment says.
			env: { METRICS_ENABLED: "false", LOG_LEVEL: logLevel, ELASTICSEARCH_URL: "" }
		},
		{
			label: "observability on: metrics + log shipping",
			env: { METRICS_ENABLED: "true", LOG_LEVEL: logLevel, ELASTICSEARCH_URL: sink.url }
		}
	];
	const clusters: Array<{ target: Target; marks: ReturnType<typeof outputMarks> }> = [];
	const rounds: RowResult[][] = variants.map(() => []);
	try {
		for (const variant of variants) {
			if (session.interrupted) break;
			progress(`starting FlashMart with ${variant.label}`);
			// Never profiled: the two clusters must differ only in what is observed.
			const target = await startFlashMart(natsUrl, services, { ...cli, profile: [] }, variant.env);
			clusters.push({ target, marks: outputMarks(target.procs) });
		}
		for (
			let round = 1;
			round <= OBSERVABILITY_ROUNDS && clusters.length === variants.length;
			round++
		) {
			for (const [i, variant] of variants.entries()) {
				if (session.interrupted) break;
				const { target } = clusters[i];
				const request = async () =>
					resolveRequest(
						scenario,
						scenario.setup ? await scenario.setup(target.url, { concurrency: cli.connections }) : {}
					);
				rounds[i].push(
					await measureRow(
						{
							...rowBase(scenario),
							name: `${scenario.name} [${variant.label}, round ${round} of ${OBSERVABILITY_ROUNDS}]`
						},
						target,
						request,
						load,
						baseline
					)
				);
			}
		}
	} finally {
		// The nodes flush their last lines to the sink as they stop.
		await Promise.all(clusters.flatMap(c => c.target.procs.map(p => p.stop("SIGTERM", 10_000))));
	}
	const rows: RowResult[] = [];
	const perSecond: number[][] = [];
	for (const [i, variant] of variants.entries()) {
		const measured = rounds[i].filter(r => r.status === "measured" && r.measurement);
		const values = measured.map(r => r.measurement!.requestsPerSec);
		perSecond.push(values);
		// The variant's row: its median round, named for the variant (the targets table reads these rows).
		const middle = measured.find(r => r.measurement!.requestsPerSec === median(values));
		const row = middle ?? rounds[i][rounds[i].length - 1];
		if (!row) continue;
		const logs = clusters[i] ? newLogLines(clusters[i].marks) : [];
		rows.push({
			...row,
			name: `${scenario.name} [${variant.label}]`,
			...(values.length > 1
				? {
						note: `median of ${values.length} rounds in turns: ${values.map(v => v.toFixed(0)).join(", ")} req/s`
					}
				: {}),
			...(logs.length > 0 ? { logs } : {})
		});
	}
	const [off, on] = perSecond;
	const overhead =
		off?.length && on?.length && median(off) > 0
			? {
					scenario: OBSERVED_SCENARIO,
					logLevel,
					offRequestsPerSec: median(off),
					onRequestsPerSec: median(on),
					ratio: Math.round((median(on) / median(off)) * 1000) / 1000,
					linesShipped: sink.received,
					rounds: { off, on }
				}
			: null;
	return { rows, overhead };
}

/** The mode alone: the baseline, then the two clusters (started after it, one at a time). */
export function runObservability(cli: Cli): Promise<number> {
	return runMeasured(cli, [...ALL_SERVICES], {
		start: async () => null,
		async measure(ctx) {
			const { rows, overhead } = await measureObservability(ctx, cli);
			return { rows, observability: overhead };
		}
	});
}
