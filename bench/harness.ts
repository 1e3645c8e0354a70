/**
 * The frame of every measured mode: a nats-server of its own, the baseline (a bare moleculer-web gateway calling an
 * echo action over that NATS, Moleculer defaults throughout) measured first, then the mode's rows; at the end every
 * process stopped, bench/results/latest.json and latest.md written, the table and what deserves a note printed.
 */
import os from "node:os";
import path from "node:path";
import { startNats } from "../scripts/lib/cluster";
import { type Cli, MAX_VIRTUAL_USERS } from "./cli";
import { type Target, nodesOf, startBaseline } from "./launch";
import type { LoadOptions } from "./measure";
import { PROFILE_DIR, RESULTS_DIR, listProfiles, writeLatest, writeReportFiles } from "./output";
import { findings, groupsText, observabilityText, textTable } from "./report";
import { measureRow } from "./rows";
import { cleanup, progress, session, startedAt } from "./session";
import type {
	BenchReport,
	ColdStartResult,
	HoldsResult,
	Measurement,
	MemoryResult,
	ObservabilityOverhead,
	RowResult,
	ScaleOutRow
} from "./types";

const BASELINE_NAME = "baseline: bare gateway + echo";

/** What every mode's rows are measured with. */
export interface ModeContext {
	natsUrl: string;
	/** The services FlashMart runs (ALL_SERVICES). */
	services: string[];
	load: LoadOptions;
	/** The baseline's measurement, for every row's ratio; undefined when it could not be measured. */
	baseline: Measurement | undefined;
}

/** What a mode measured after the baseline; all but the rows come from `--report` and `--observability`. */
export interface Measured {
	rows: RowResult[];
	observability?: ObservabilityOverhead | null;
	memory?: MemoryResult;
	scaleOut?: ScaleOutRow[];
	coldStart?: ColdStartResult;
	holds?: HoldsResult;
}

export interface Mode<T extends Target | null> {
	/** Started alongside the baseline (the scenarios' FlashMart), or null for a mode that starts its own later. */
	start(natsUrl: string): Promise<T>;
	/** The mode's rows, once the baseline is measured and its nodes are stopped. */
	measure(ctx: ModeContext, started: T): Promise<Measured>;
}

/** Runs `mode` in the frame above: the exit code (130 when interrupted). */
export async function runMeasured<T extends Target | null>(
	cli: Cli,
	services: string[],
	mode: Mode<T>
): Promise<number> {
	const load: LoadOptions = {
		connections: cli.connections,
		duration: cli.duration,
		warmup: cli.warmup
	};
	const nodes = nodesOf(services, cli.groups).map(n => n.services);
	progress(
		`${cli.connections} connections, ${cli.warmup} s warm-up + ${cli.duration} s per row; ` +
			`services: ${services.join(", ")}${cli.groups ? ` (nodes: ${groupsText(nodes)})` : ""}`
	);

	try {
		const nats = await startNats();
		session.nats = nats;
		progress(
			`nats-server on ${nats.url}; starting the baseline and ${nodes.length} FlashMart node(s)`
		);
		const [baselineTarget, flashmart] = await Promise.all([
			startBaseline(nats.url),
			mode.start(nats.url)
		]);
		progress(
			`baseline on ${baselineTarget.url}` +
				(flashmart ? `, FlashMart gateway on ${flashmart.url}` : "") +
				": ready"
		);

		const baseline = await measureRow(
			{ name: BASELINE_NAME, method: "GET", path: "/echo" },
			baselineTarget,
			async () => ({ method: "GET", path: "/echo", headers: {} }),
			load,
			undefined
		);
		if (baseline.measurement) baseline.ratio = 1;
		// The baseline is done: its idle nodes should not share the two cores with FlashMart's runs.
		await Promise.all(baselineTarget.procs.map(p => p.stop()));

		const measured = await mode.measure(
			{ natsUrl: nats.url, services, load, baseline: baseline.measurement },
			flashmart
		);
		if (session.interrupted) return 130;

		progress("stopping the cluster");
		await cleanup();

		const { observability, memory, scaleOut, coldStart, holds } = measured;
		const report: BenchReport & { args: string[] } = {
			args: process.argv.slice(2),
			date: new Date(startedAt).toISOString(),
			node: process.version,
			platform: `${os.platform()} ${os.arch()}`,
			cpus: os.cpus().length,
			cpuModel: os.cpus()[0]?.model.trim() ?? "unknown",
			connections: cli.connections,
			virtualUsers: Math.min(cli.connections, MAX_VIRTUAL_USERS),
			duration: cli.duration,
			warmup: cli.warmup,
			services,
			baseline,
			scenarios: measured.rows,
			profiles: cli.profile.length > 0 ? listProfiles(startedAt) : [],
			...(observability ? { observability } : {}),
			...(memory ? { memory } : {}),
			...(scaleOut ? { scaleOut } : {}),
			...(coldStart ? { coldStart } : {}),
			...(holds ? { holds } : {}),
			...(Object.keys(cli.nodes).length > 0 ? { nodes: cli.nodes } : {}),
			...(cli.groups ? { groups: nodes } : {})
		};
		writeLatest(report);
		if (cli.report) writeReportFiles(report);
		return printSummary(report, cli);
	} catch (err) {
		// Interrupted while starting: the nodes' exits are ours, not a failure to report.
		if (session.interrupted) return 130;
		console.error(`bench: could not run: ${err instanceof Error ? err.message : String(err)}`);
		return 1;
	} finally {
		await cleanup();
	}
}

/** The table and its notes on stdout: exit code 1 when a row failed or a flow's check found a discrepancy. */
function printSummary(report: BenchReport, cli: Cli): number {
	const all = [report.baseline, ...report.scenarios];
	process.stdout.write(`\n${textTable(report)}\n\n`);
	for (const row of all) {
		if (row.status === "failed") process.stdout.write(`${row.name} failed:\n${row.reason}\n\n`);
		for (const line of findings(row)) {
			process.stdout.write(line.startsWith(" ") ? `${line}\n` : `note: ${line}\n`);
		}
	}
	if (report.observability) {
		process.stdout.write(`\n${observabilityText(report.observability)}\n`);
	} else if (cli.observability) {
		process.stdout.write("note: the observability overhead could not be measured (a row failed)\n");
	}
	for (const file of report.profiles) {
		process.stdout.write(`CPU profile: ${file}\n`);
	}
	if (cli.profile.length > 0 && report.profiles.length === 0) {
		process.stdout.write(`note: --profile wrote no .cpuprofile under ${PROFILE_DIR}\n`);
	}
	process.stdout.write(
		`results: ${path.relative(process.cwd(), path.join(RESULTS_DIR, "latest.json"))}, ` +
			`${path.relative(process.cwd(), path.join(RESULTS_DIR, "latest.md"))}\n`
	);
	return all.some(r => r.status === "failed" || r.check?.ok === false) ? 1 : 0;
}
