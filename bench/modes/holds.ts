/**
 * `--holds`: what one reserve + commit costs on one product as its open holds pile up. One in-process broker (no
 * transporter) runs the inventory service alone on NeDB files in a temp DATA_DIR, as a node without MONGO_URI
 * does; the product's stock comes in through the `products.created` channel, as in production. At each level the
 * holds are opened with `inventory.reserve` (one unit each, distinct order ids), then pairs of reserve + commit on
 * new order ids are timed one after the other, a pair being what a paid checkout asks of inventory, each followed
 * by a pair on a control product without holds.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { ServiceBroker } from "moleculer";
import { CONFIG_OPTION, loadConfig } from "../../config";
import type { SendToChannel } from "../../adapters/events";
import { eventsMiddleware } from "../../adapters/events";
import { createInventoryService } from "../../services/inventory/inventory.service";
import { type Cli, DEFAULT_HOLD_LEVELS } from "../cli";
import { latencySummary, round } from "../measure";
import { writeLatest } from "../output";
import { holdsTable } from "../report";
import { progress, session, startedAt } from "../session";
import type { BenchReport, HoldLevel, HoldsResult } from "../types";

/**
 * Pairs timed per level, and pairs run before them that are not counted: at least this many and for at least this
 * long. The first level needs the time: over its first second or two a pair costs twice what it does later (JIT),
 * which would flatter every later level's ratio.
 */
const PAIRS = 500;
const WARMUP_PAIRS = 200;
const WARMUP_MS = 3_000;
const PRODUCT_ID = "bench-holds-product";
/**
 * A second product that never has an open hold, its pairs interleaved with the first's: its cost at each level says
 * how fast the machine was just then (2 cores shared with other work), which the ratios can be corrected by.
 */
const CONTROL_ID = "bench-holds-control";
/** Enough units for every hold and every pair of every level. */
const STOCK = 1_000_000;
/** Reserves in flight while holds are opened: NeDB runs one at a time, this only keeps its queue fed. */
const OPEN_CONCURRENCY = 8;
/**
 * How long opening one level's holds may take. When each reserve copies every hold, opening is quadratic in the
 * holds: past this the level is timed at the holds reached, and says so, rather than running for an hour.
 */
const OPEN_BUDGET_MS = 5 * 60_000;

const line = { productId: PRODUCT_ID, quantity: 1 };

/** Measures every level in `levels` (ascending: the holds of one level stay open for the next). */
export async function measureHolds(
	levels: number[],
	pairs = PAIRS,
	warmupPairs = WARMUP_PAIRS
): Promise<HoldsResult> {
	const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "flashmart-bench-holds-"));
	session.tempDirs.push(dataDir);
	const cfg = loadConfig({ NODE_ENV: "production", DATA_DIR: dataDir, LOG_LEVEL: "warn" });
	const broker = new ServiceBroker({
		logger: false,
		middlewares: [eventsMiddleware(cfg)],
		[CONFIG_OPTION]: cfg
	} as ConstructorParameters<typeof ServiceBroker>[0]);
	broker.createService(createInventoryService(cfg) as never);
	await broker.start();
	try {
		for (const productId of [PRODUCT_ID, CONTROL_ID]) {
			await (broker as unknown as { sendToChannel: SendToChannel }).sendToChannel(
				"products.created",
				{
					eventId: `created-${productId}`,
					occurredAt: new Date().toISOString(),
					productId,
					sku: productId.toUpperCase(),
					stock: STOCK
				}
			);
			await waitForStock(broker, productId);
		}
		const out: HoldLevel[] = [];
		let open = 0;
		for (const holds of levels) {
			if (session.interrupted) break;
			const started = performance.now();
			open = await openHolds(broker, open, holds, started + OPEN_BUDGET_MS);
			const openSeconds = round((performance.now() - started) / 1000);
			if (open < holds) {
				progress(`holds: only ${open} of ${holds} opened in ${openSeconds} s (the budget)`);
			}
			progress(`holds: ${open} open (opening took ${openSeconds} s); timing ${pairs} pairs`);
			const pair = async (productId: string, id: string): Promise<number> => {
				const lines = [{ productId, quantity: 1 }];
				const t0 = performance.now();
				await broker.call("inventory.reserve", { orderId: id, lines });
				await broker.call("inventory.commit", { orderId: id, lines });
				return performance.now() - t0;
			};
			const warmupUntil = performance.now() + WARMUP_MS;
			for (let i = 0; i < warmupPairs || performance.now() < warmupUntil; i++) {
				await pair(PRODUCT_ID, `warm-${holds}-${i}`);
				await pair(CONTROL_ID, `warm-control-${holds}-${i}`);
			}
			const latencies: number[] = [];
			const control: number[] = [];
			let busy = 0;
			for (let i = 0; i < pairs; i++) {
				const ms = await pair(PRODUCT_ID, `pair-${holds}-${i}`);
				busy += ms;
				latencies.push(ms);
				control.push(await pair(CONTROL_ID, `control-${holds}-${i}`));
			}
			out.push({
				holds: open,
				...(open < holds ? { requested: holds } : {}),
				pairs,
				pairsPerSec: round(pairs / (busy / 1000)),
				latencyMs: latencySummary(latencies),
				controlLatencyMs: latencySummary(control),
				openSeconds
			});
		}
		const base = out[0];
		const ratio = (a: number, b: number) => (b > 0 ? round(a / b) : undefined);
		for (const level of out) {
			if (!base) break;
			const l = level.latencyMs;
			level.ratioP50 = ratio(l.p50, base.latencyMs.p50);
			level.ratioMean = ratio(l.mean, base.latencyMs.mean);
			const c = level.controlLatencyMs!;
			const c0 = base.controlLatencyMs!;
			// Each level's cost over its control's, over the same at 0 holds: the machine's pace cancels out.
			level.correctedP50 = ratio(l.p50 / c.p50, base.latencyMs.p50 / c0.p50);
			level.correctedMean = ratio(l.mean / c.mean, base.latencyMs.mean / c0.mean);
		}
		return { product: PRODUCT_ID, store: "NeDB file (DATA_DIR)", levels: out };
	} finally {
		await broker.stop();
	}
}

/** The channel handler runs on its own: wait until the product's stock exists. */
async function waitForStock(broker: ServiceBroker, productId: string): Promise<void> {
	const admin = { user: { id: "bench", email: "bench@flashmart.local", roles: ["admin"] } };
	for (let i = 0; i < 200; i++) {
		const found = await broker
			.call("inventory.get", { productId }, { meta: admin })
			.then(() => true)
			.catch(() => false);
		if (found) return;
		await new Promise(resolve => setTimeout(resolve, 25));
	}
	throw new Error("inventory made no stock from products.created");
}

/**
 * Opens holds `from` .. `to`-1 (one unit each, order ids of their own) until `deadline` (performance.now() ms);
 * answers how many are open.
 */
async function openHolds(
	broker: ServiceBroker,
	from: number,
	to: number,
	deadline: number
): Promise<number> {
	let next = from;
	let opened = from;
	let reported = performance.now();
	const worker = async () => {
		while (next < to && !session.interrupted && performance.now() < deadline) {
			const i = next++;
			await broker.call("inventory.reserve", { orderId: `hold-${i}`, lines: [line] });
			opened++;
			if (performance.now() - reported > 10_000) {
				reported = performance.now();
				progress(`holds: ${next} of ${to} opened`);
			}
		}
	};
	await Promise.all(Array.from({ length: OPEN_CONCURRENCY }, worker));
	return opened;
}

/** The mode: every level, the table on stdout, bench/results/latest.json and latest.md. */
export async function runHolds(cli: Cli): Promise<number> {
	const levels = cli.holds ?? DEFAULT_HOLD_LEVELS;
	const pairs = cli.quick ? 100 : PAIRS;
	progress(`holds: levels ${levels.join(", ")}; ${pairs} reserve + commit pairs each`);
	const holds = await measureHolds(levels, pairs);
	if (session.interrupted) return 130;
	const report: BenchReport & { args: string[] } = {
		args: process.argv.slice(2),
		date: new Date(startedAt).toISOString(),
		node: process.version,
		platform: `${os.platform()} ${os.arch()}`,
		cpus: os.cpus().length,
		cpuModel: os.cpus()[0]?.model.trim() ?? "unknown",
		connections: 1,
		virtualUsers: 1,
		duration: 0,
		warmup: 0,
		services: ["inventory"],
		baseline: {
			name: "baseline: bare gateway + echo",
			method: "GET",
			path: "/echo",
			status: "skipped",
			reason: "not run by --holds",
			ratio: null
		},
		scenarios: [],
		profiles: [],
		holds
	};
	writeLatest(report);
	process.stdout.write(`\n${holdsTable(holds)}\n\n`);
	process.stdout.write("results: bench/results/latest.json, bench/results/latest.md\n");
	return 0;
}
