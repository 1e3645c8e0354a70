/**
 * `--report`, the full run behind bench/REPORT.md: the default mode's scenarios, then the memory runs on the same
 * cluster, then observability off/on, scale-out and the embedded cold start, each on clusters of its own, and the
 * reserve + commit micro-benchmark by open holds (in-process). The frame (bench/harness.ts) then writes
 * bench/REPORT.json, REPORT.md and latency.svg as well.
 */
import { type Cli, DEFAULT_HOLD_LEVELS } from "../cli";
import { progress } from "../session";
import { measureColdStart } from "./cold-start";
import { measureHolds } from "./holds";
import { measureMemory } from "./memory";
import { measureObservability } from "./observability";
import { measureScaleOut } from "./scale-out";
import { runScenarios } from "./scenarios";

export function runReport(cli: Cli): Promise<number> {
	return runScenarios(cli, async (ctx, flashmart) => {
		const memory = await measureMemory(flashmart, cli).catch((err: unknown) => {
			progress(`memory runs failed: ${err instanceof Error ? err.message : String(err)}`);
			return undefined;
		});
		progress("stopping the scenarios' cluster");
		await Promise.all(flashmart.procs.map(p => p.stop("SIGTERM", 10_000)));
		const { rows, overhead } = await measureObservability(ctx, cli);
		const scaleOut = await measureScaleOut(ctx, cli);
		progress("embedded cold start");
		const coldStart = await measureColdStart();
		progress("reserve + commit by open holds");
		const holds = await measureHolds(DEFAULT_HOLD_LEVELS).catch((err: unknown) => {
			progress(`holds runs failed: ${err instanceof Error ? err.message : String(err)}`);
			return undefined;
		});
		return { rows, observability: overhead, memory, scaleOut, coldStart, holds };
	});
}
