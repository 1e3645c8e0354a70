/**
 * `--report`'s memory phase (`--memory-seconds`, `--trace-gc`): RSS of every node over consecutive runs of load on
 * the scenarios' cluster, to see what a node needs and whether it keeps growing.
 */
import fs from "node:fs";
import type { Proc } from "../../scripts/lib/cluster";
import { whileAlive, withTimeout } from "../child";
import type { Cli } from "../cli";
import { runFlow } from "../flow";
import type { Target } from "../launch";
import { measure } from "../measure";
import { SETUP_TIMEOUT_MS } from "../rows";
import { SCENARIOS, isFlow, resolveRequest } from "../scenarios";
import { progress, session } from "../session";
import type { MemoryResult, MemorySample } from "../types";
import { OBSERVED_SCENARIO } from "./observability";

/** The heap (MB) left by the last full GC a `--trace-gc` node printed: its live data, garbage aside. */
function liveHeapOf(proc: Proc): number | undefined {
	const re = /Mark-Compact[^\n]*? ([\d.]+) \(([\d.]+)\) -> ([\d.]+) \(([\d.]+)\) MB/g;
	let last: number | undefined;
	for (const m of proc.output().matchAll(re)) last = Number(m[3]);
	return last;
}

/** RSS of each process in MB (Linux /proc), by node name. */
function rssOf(procs: Proc[]): Record<string, number> {
	const out: Record<string, number> = {};
	for (const proc of procs) {
		const pid = proc.child.pid;
		if (!pid) continue;
		try {
			const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
			const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
			out[proc.name] = Math.round((kb / 1024) * 10) / 10;
		} catch {
			// Exited: no sample.
		}
	}
	return out;
}

/** The gateway's V8 heap from its /metrics (Moleculer's process metrics), in MB. */
async function heapOf(url: string): Promise<{ used: number; total: number } | undefined> {
	try {
		const text = await (
			await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) })
		).text();
		const mb = (name: string) => {
			const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, "m").exec(text);
			return m ? Math.round((Number(m[1]) / 1048576) * 10) / 10 : NaN;
		};
		const used = mb("process_memory_heap_size_used(?:_bytes)?");
		const total = mb("process_memory_heap_size_total(?:_bytes)?");
		return Number.isNaN(used) || Number.isNaN(total) ? undefined : { used, total };
	} catch {
		return undefined;
	}
}

const MEMORY_RUNS = 3;

/**
 * `--report`: consecutive runs of load on the running cluster, RSS of every node before and after each: product
 * reads (autocannon, half the connections) while the purchase flow runs (the other half as virtual users, new
 * customers each run), so every node of the purchase path and the catalog is busy.
 */
export async function measureMemory(target: Target, cli: Cli): Promise<MemoryResult> {
	const read = SCENARIOS.find(s => s.name === OBSERVED_SCENARIO);
	const purchase = SCENARIOS.find(s => s.name.startsWith("purchase flow"));
	if (!read || isFlow(read) || !purchase || !isFlow(purchase))
		throw new Error("memory: scenarios missing");
	const half = Math.max(1, Math.floor(cli.connections / 2));
	const before = rssOf(target.procs);
	const runs: MemorySample[] = [];
	for (let i = 0; i < MEMORY_RUNS && !session.interrupted; i++) {
		progress(
			`memory run ${i + 1}/${MEMORY_RUNS}: ${cli.memorySeconds} s of product reads + purchase flow`
		);
		const req = resolveRequest(
			read,
			read.setup ? await read.setup(target.url, { concurrency: half }) : {}
		);
		const flow = await whileAlive(
			target.procs,
			withTimeout(purchase.setup(target.url, { concurrency: half }), SETUP_TIMEOUT_MS, "setup")
		);
		const [, purchased] = await whileAlive(
			target.procs,
			Promise.all([
				measure(target.urls, req, { connections: half, duration: cli.memorySeconds, warmup: 0 }),
				runFlow(target.url, purchase.steps, flow, {
					virtualUsers: half,
					duration: cli.memorySeconds,
					warmup: 0
				})
			])
		);
		runs.push({
			afterSeconds: (i + 1) * cli.memorySeconds,
			rssMb: rssOf(target.procs),
			purchases: purchased.completed,
			liveHeapMb: Object.fromEntries(
				target.procs
					.map(p => [p.name, liveHeapOf(p)] as const)
					.filter((e): e is readonly [string, number] => e[1] !== undefined)
			),
			gatewayHeapMb: await heapOf(target.url)
		});
	}
	return {
		load: `product by id (autocannon, ${half} connections) and the purchase flow (${half} virtual users) at once`,
		runSeconds: cli.memorySeconds,
		before,
		runs
	};
}
