/** `--report`'s scale-out phase: the catalog reads again with a second gateway and a second products node. */
import type { Cli } from "../cli";
import type { ModeContext } from "../harness";
import { type Target, startFlashMart } from "../launch";
import { measureRow, rowBase } from "../rows";
import { SCENARIOS, isFlow, resolveRequest } from "../scenarios";
import { progress, session, stopStarted } from "../session";
import type { ScaleOutRow } from "../types";
import { OBSERVED_SCENARIO } from "./observability";

/** The layouts of the scale-out phase: instances of the gateway and of the products service. */
const SCALE_OUT_LAYOUTS: Array<Record<string, number>> = [
	{ api: 1, products: 1 },
	{ api: 2, products: 1 },
	{ api: 1, products: 2 },
	{ api: 2, products: 2 }
];
/** The catalog's nodes: products waits for inventory (stock levels) when it starts. */
const SCALE_OUT_SERVICES = ["api", "products", "inventory"];
/** Rows measured per layout: reads that touch the gateway, the products nodes, or the gateway alone. */
const SCALE_OUT_SCENARIOS = [
	OBSERVED_SCENARIO,
	"product list /api/products?category=&page=",
	"gateway /health"
];

/**
 * `--report`: the catalog reads on a cluster of just the gateway(s), the products node(s) and inventory, one layout
 * at a time.
 */
export async function measureScaleOut(
	{ natsUrl, load, baseline }: ModeContext,
	cli: Cli
): Promise<ScaleOutRow[]> {
	const out: ScaleOutRow[] = [];
	for (const layout of SCALE_OUT_LAYOUTS) {
		if (session.interrupted) break;
		const name = `${layout.api} gateway${layout.api > 1 ? "s" : ""}, ${layout.products} products node${layout.products > 1 ? "s" : ""}`;
		progress(`scale-out: ${name}`);
		let target: Target;
		try {
			target = await startFlashMart(natsUrl, SCALE_OUT_SERVICES, {
				...cli,
				nodes: layout,
				profile: [],
				// Instances of one service each: a second products node is a node of its own.
				groups: false
			});
		} catch (err) {
			progress(
				`scale-out: ${name} could not start: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`
			);
			await stopStarted();
			continue;
		}
		for (const scenarioName of SCALE_OUT_SCENARIOS) {
			const scenario = SCENARIOS.find(s => s.name === scenarioName);
			if (!scenario || isFlow(scenario)) continue;
			const request = async () =>
				resolveRequest(
					scenario,
					scenario.setup ? await scenario.setup(target.url, { concurrency: cli.connections }) : {}
				);
			const row = await measureRow(
				{ ...rowBase(scenario), name: `${scenario.name} [${name}]` },
				target,
				request,
				load,
				baseline
			);
			if (row.measurement) {
				out.push({
					layout: name,
					scenario: scenario.name,
					requestsPerSec: row.measurement.requestsPerSec,
					p99: row.measurement.latencyMs.p99,
					ratio: row.ratio
				});
			}
		}
		await Promise.all(target.procs.map(p => p.stop("SIGTERM", 10_000)));
	}
	return out;
}
