/**
 * CPU time the FlashMart nodes spent in a measured window, read from /proc (Linux): what a variant of the cluster
 * costs per request, apart from the load generator, the sinks and nats-server that share the machine's cores.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";

/** Clock ticks per second of /proc's times (`getconf CLK_TCK`; 100 on every Linux this runs on). */
let ticksPerSecond: number | undefined;
function ticks(): number {
	if (ticksPerSecond === undefined) {
		try {
			ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
		} catch {
			ticksPerSecond = 100;
		}
		if (!Number.isFinite(ticksPerSecond) || ticksPerSecond <= 0) ticksPerSecond = 100;
	}
	return ticksPerSecond;
}

/** User + system seconds a process has used so far, or null where /proc cannot tell (not Linux, exited). */
export function cpuSecondsOf(pid: number | undefined): number | null {
	if (!pid) return null;
	try {
		const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
		// The command name (field 2) may hold spaces and parentheses: the fields after it start past the last ')'.
		const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
		// utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
		const used = Number(fields[11]) + Number(fields[12]);
		return Number.isFinite(used) ? used / ticks() : null;
	} catch {
		return null;
	}
}

/** The summed CPU seconds of `pids`, or null when any of them cannot be read. */
export function cpuSecondsOfAll(pids: Array<number | undefined>): number | null {
	let sum = 0;
	for (const pid of pids) {
		const s = cpuSecondsOf(pid);
		if (s === null) return null;
		sum += s;
	}
	return sum;
}

/** Hooks a measurement calls as its measured window opens and closes (after any warm-up). */
export interface WindowHooks {
	opened(): void;
	closed(): void;
}

/** Counts the CPU seconds `pids` use between the window's opening and closing; `seconds()` is null until then. */
export function cpuWindow(pids: Array<number | undefined>): WindowHooks & {
	seconds(): number | null;
} {
	let start: number | null = null;
	let used: number | null = null;
	return {
		opened() {
			start = cpuSecondsOfAll(pids);
		},
		closed() {
			const end = cpuSecondsOfAll(pids);
			used = start !== null && end !== null ? end - start : null;
		},
		seconds: () => used
	};
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

/** Cores `pids` used over the next `ms` (1.0: one core busy), or null where /proc cannot tell. */
export async function coresUsed(
	pids: Array<number | undefined>,
	ms: number
): Promise<number | null> {
	const start = cpuSecondsOfAll(pids);
	const t0 = performance.now();
	await sleep(ms);
	const end = cpuSecondsOfAll(pids);
	const elapsed = (performance.now() - t0) / 1000;
	return start === null || end === null ? null : (end - start) / elapsed;
}

/** What `settle` waits for: the nodes back within this many cores of their idle level. */
const SETTLED_ABOVE_IDLE = 0.05;
const SETTLE_WINDOW_MS = 500;

/**
 * Waits until `pids` are back at their idle level (`idleCores`, from `coresUsed` before any load), for at most
 * `maxMs`: what a round of load left running (events still consumed, outboxes relayed, garbage collected) would
 * otherwise be paid by the next round measured, on whichever cluster that is. Answers the seconds waited, and whether
 * the level was reached.
 */
export async function settle(
	pids: Array<number | undefined>,
	idleCores: number,
	maxMs: number
): Promise<{ waitedSeconds: number; settled: boolean }> {
	const t0 = performance.now();
	for (;;) {
		const used = await coresUsed(pids, SETTLE_WINDOW_MS);
		const waitedSeconds = (performance.now() - t0) / 1000;
		if (used === null || used <= idleCores + SETTLED_ABOVE_IDLE)
			return { waitedSeconds, settled: true };
		if (waitedSeconds * 1000 >= maxMs) return { waitedSeconds, settled: false };
	}
}
