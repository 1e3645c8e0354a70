/**
 * Measuring one row, a request (autocannon) or a flow (bench/flow.ts's virtual users and then its check), and the
 * warn-and-above log lines FlashMart's nodes printed meanwhile. A row that cannot be measured is a failed row, not
 * an exception: the run goes on with the next one.
 */
import type { Proc } from "../scripts/lib/cluster";
import { whileAlive, withTimeout } from "./child";
import type { WindowHooks } from "./cpu";
import { type Cli, MAX_VIRTUAL_USERS } from "./cli";
import { runFlow, stopFlow } from "./flow";
import type { Target } from "./launch";
import { type LoadOptions, measure, stopLoad } from "./measure";
import { type FlowScenario, type Scenario, isFlow, resolveRequest } from "./scenarios";
import { progress } from "./session";
import type { FlowCheck, LogGroup, Measurement, RequestOptions, RowResult } from "./types";

/** A setup registers up to 100 customers (~200 ms of scrypt each, 4 at a time). */
export const SETUP_TIMEOUT_MS = 60_000;
/** A flow's check may replay checkouts of unknown outcome for 30 s, then reads the stock. */
const VERIFY_TIMEOUT_MS = 60_000;

/** Measures one row; a failure (setup, a node exiting, no response at all) makes a failed row. */
export async function measureRow(
	base: Pick<RowResult, "name" | "method" | "path">,
	target: Target,
	request: () => Promise<RequestOptions>,
	load: LoadOptions,
	baseline: Measurement | undefined
): Promise<RowResult> {
	progress(`${base.name}: ${load.warmup} s warm-up, ${load.duration} s measured`);
	try {
		const req = await whileAlive(target.procs, request());
		const m = await whileAlive(target.procs, measure(target.urls, req, load));
		if (m.responses === 0) {
			return {
				...base,
				status: "failed",
				reason: `no response at all (${m.errors} connection errors, ${m.timeouts} timeouts)`,
				measurement: m,
				ratio: null
			};
		}
		return {
			...base,
			status: "measured",
			measurement: m,
			ratio: ratioTo(baseline, m)
		};
	} catch (err) {
		stopLoad();
		return {
			...base,
			status: "failed",
			reason: err instanceof Error ? err.message : String(err),
			ratio: null
		};
	}
}

/** Requests per second relative to the baseline measured in the same run (3 decimals), or null without one. */
function ratioTo(baseline: Measurement | undefined, m: Measurement): number | null {
	if (!baseline || baseline.requestsPerSec <= 0) return null;
	return Math.round((m.requestsPerSec / baseline.requestsPerSec) * 1000) / 1000;
}

/** What a row says of its scenario, measured or not. */
export function rowBase(
	scenario: Scenario
): Pick<RowResult, "name" | "kind" | "method" | "path" | "unit"> {
	if (!isFlow(scenario))
		return { name: scenario.name, method: scenario.method, path: scenario.path };
	return {
		name: scenario.name,
		kind: "flow",
		method: "FLOW",
		path: scenario.steps.map(s => `${s.method} ${s.path}`).join(" -> "),
		...(scenario.unit ? { unit: scenario.unit } : {})
	};
}

/** Runs a flow and its check; a failure (setup, a node exiting, no response at all, the check) makes a failed row. */
export async function measureFlowRow(
	scenario: FlowScenario,
	target: Target,
	cli: Cli,
	baseline: Measurement | undefined,
	window?: WindowHooks
): Promise<RowResult> {
	const virtualUsers = Math.min(cli.connections, MAX_VIRTUAL_USERS);
	const base = rowBase(scenario);
	const untilDone = scenario.untilDoneSeconds;
	const span = untilDone
		? `until done (at most ${untilDone} s)`
		: `${cli.warmup} s warm-up, ${cli.duration} s measured`;
	progress(`${scenario.name}: setup, then ${virtualUsers} virtual users, ${span}`);
	try {
		const flow = await whileAlive(
			target.procs,
			withTimeout(
				scenario.setup(target.url, { concurrency: virtualUsers, quick: cli.quick }),
				scenario.setupTimeoutMs ?? SETUP_TIMEOUT_MS,
				"setup"
			)
		);
		const f = await whileAlive(
			target.procs,
			runFlow(target.url, scenario.steps, flow, {
				virtualUsers,
				duration: untilDone ?? cli.duration,
				warmup: untilDone ? 0 : cli.warmup,
				window
			})
		);
		const { total: m, ...flowOnly } = f;
		let check: FlowCheck | undefined;
		if (flow.verify) {
			// A check that cannot run fails the run, but the measurement stays.
			check = await whileAlive(
				target.procs,
				withTimeout(
					flow.verify(),
					scenario.verifyTimeoutMs ?? VERIFY_TIMEOUT_MS,
					"the check after the flow"
				)
			).catch((err: unknown) => ({
				ok: false,
				summary: `the check could not run: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`,
				details: []
			}));
		}
		if (m.responses === 0) {
			return {
				...base,
				status: "failed",
				reason: `no response at all (${m.errors} requests without an answer, ${m.timeouts} timeouts)`,
				measurement: m,
				flow: flowOnly,
				check,
				ratio: null
			};
		}
		const flashSale = flow.flashSale?.();
		return {
			...base,
			status: "measured",
			measurement: m,
			flow: flowOnly,
			check,
			ratio: ratioTo(baseline, m),
			...(flashSale ? { flashSale } : {})
		};
	} catch (err) {
		stopFlow();
		return {
			...base,
			status: "failed",
			reason: err instanceof Error ? err.message : String(err),
			ratio: null
		};
	}
}

/** Measures one scenario of either kind on `target`, its setup included. */
export function measureScenarioRow(
	scenario: Scenario,
	target: Target,
	cli: Cli,
	load: LoadOptions,
	baseline: Measurement | undefined,
	window?: WindowHooks
): Promise<RowResult> {
	if (isFlow(scenario)) return measureFlowRow(scenario, target, cli, baseline, window);
	const request = async () =>
		resolveRequest(
			scenario,
			scenario.setup
				? await withTimeout(
						scenario.setup(target.url, { concurrency: cli.connections }),
						SETUP_TIMEOUT_MS,
						"setup"
					)
				: {}
		);
	return measureRow(rowBase(scenario), target, request, { ...load, window }, baseline);
}

/** Where each process's output is now, to read what it prints from here on (`newLogLines`). */
export function outputMarks(procs: Proc[]): Map<Proc, string> {
	// The tail, not an offset: the captured output is trimmed when it grows large.
	return new Map(procs.map(p => [p, p.output().slice(-200)]));
}

/**
 * The whole lines `output` holds after `mark` (outputMarks): from the start of the line the mark ended in, which the
 * mark's moment may have caught half written, to the last finished line (the one being written is read next time).
 * When the mark is gone (the output was trimmed since), from the first whole line left.
 */
export function linesSince(output: string, mark: string): string[] {
	const at = mark ? output.lastIndexOf(mark) : 0;
	const from =
		at >= 0 ? output.lastIndexOf("\n", at + mark.length - 1) + 1 : output.indexOf("\n") + 1;
	const to = output.lastIndexOf("\n") + 1;
	return to > from ? output.slice(from, to - 1).split("\n") : [];
}

/**
 * The warn-and-above lines the processes printed since `marks` (LOG_LEVEL is warn: every JSON line), grouped by
 * node, level and message, the most frequent first. Lines that are not JSON (a crash's stack) count as they are.
 */
export function newLogLines(marks: Map<Proc, string>): LogGroup[] {
	const groups = new Map<string, LogGroup>();
	for (const [proc, mark] of marks) {
		for (const raw of linesSince(proc.output(), mark)) {
			const line = raw.trim();
			if (!line || GC_TRACE_LINE.test(line)) continue;
			let level = "output";
			let message = line;
			try {
				const entry = JSON.parse(line) as Record<string, unknown>;
				level = String(entry.level ?? "?");
				const error = entry.error as { type?: string; message?: string } | undefined;
				message = String(entry.message ?? entry.msg ?? line);
				if (error?.message && !message.includes(error.message)) message += ` (${error.message})`;
			} catch {
				// Not JSON: the line itself.
			}
			if (!["warn", "error", "fatal", "output"].includes(level)) continue;
			message = message.replace(/\s+/g, " ").trim();
			// Ids and numbers vary from line to line: group on the message without them.
			const shape = message
				.replace(/[0-9a-f]{8}-[0-9a-f-]{27}|[0-9a-f]{24,}/gi, "<id>")
				.replace(/\d+/g, "N")
				.slice(0, 300);
			const key = `${proc.name}\0${level}\0${shape}`;
			const group = groups.get(key);
			if (group) group.count++;
			else groups.set(key, { node: proc.name, level, message: message.slice(0, 300), count: 1 });
		}
	}
	return [...groups.values()].sort((a, b) => b.count - a.count);
}

/** A line of `node --trace-gc` (`--trace-gc`): not a log line. */
const GC_TRACE_LINE = /^\[\d+:0x[0-9a-f]+\]\s+\d+ ms: /;
