/**
 * The default mode (`npm run bench`, `--quick`, `--scenario <text>`): FlashMart as a cluster, a gateway node plus
 * one node per other service of ALL_SERVICES, then every chosen scenario of bench/scenarios.ts whose services exist
 * (the others are reported as skipped): a warm-up that is not counted, then the measured run.
 */
import { ALL_SERVICES } from "../../config";
import type { Cli } from "../cli";
import { type Measured, type ModeContext, runMeasured } from "../harness";
import { type Target, startFlashMart } from "../launch";
import { measureScenarioRow, newLogLines, outputMarks, rowBase } from "../rows";
import { SCENARIOS, type Scenario } from "../scenarios";
import { session } from "../session";
import type { RowResult } from "../types";

/** What runs on the scenarios' cluster once they are done (`--report`'s phases). */
export type AfterScenarios = (ctx: ModeContext, flashmart: Target) => Promise<Measured>;

/** Scenarios chosen by `--scenario`, each either runnable or skipped for a missing service. */
function plan(cli: Cli, services: string[]): Array<{ scenario: Scenario; missing: string[] }> {
	const filter = cli.filter?.toLowerCase();
	return SCENARIOS.filter(s => !filter || s.name.toLowerCase().includes(filter)).map(scenario => ({
		scenario,
		missing: scenario.requires.filter(r => !services.includes(r))
	}));
}

export async function runScenarios(cli: Cli, after?: AfterScenarios): Promise<number> {
	const services: string[] = [...ALL_SERVICES];
	const chosen = plan(cli, services);
	if (chosen.length === 0) {
		console.error(`bench: no scenario name contains '${cli.filter}'`);
		console.error(`scenarios: ${SCENARIOS.map(s => s.name).join(", ")}`);
		return 2;
	}
	return runMeasured(cli, services, {
		start: natsUrl => startFlashMart(natsUrl, services, cli),
		async measure(ctx, flashmart) {
			const rows: RowResult[] = [];
			for (const { scenario, missing } of chosen) {
				const base = rowBase(scenario);
				if (missing.length > 0) {
					rows.push({
						...base,
						status: "skipped",
						reason: `needs ${missing.join(", ")}`,
						ratio: null
					});
					continue;
				}
				if (session.interrupted) break;
				const marks = outputMarks(flashmart.procs);
				const row = await measureScenarioRow(scenario, flashmart, cli, ctx.load, ctx.baseline);
				const logs = newLogLines(marks);
				if (logs.length > 0) row.logs = logs;
				rows.push(row);
			}
			if (session.interrupted || !after) return { rows };
			const more = await after(ctx, flashmart);
			return { ...more, rows: [...rows, ...more.rows] };
		}
	});
}
