/**
 * `npm run chaos`: the long chaos run (see chaos.ts). Options: --customers N --seconds S --products P --stock U
 * --every MS --down MS. Prints the report and its per-phase table, and exits 1 if an invariant broke, an answer came
 * past its bound, a retry contradicted its order's final state, or a request was dropped unanswered.
 */
import { parseArgs } from "node:util";
import { formatPhases, runChaos } from "./chaos";

async function main() {
	const { values } = parseArgs({
		options: {
			customers: { type: "string", default: "300" },
			seconds: { type: "string", default: "60" },
			products: { type: "string", default: "10" },
			stock: { type: "string", default: "200" },
			every: { type: "string", default: "4000" },
			down: { type: "string", default: "1500" }
		}
	});
	const report = await runChaos({
		customers: Number(values.customers),
		durationMs: Number(values.seconds) * 1000,
		products: Number(values.products),
		stockEach: Number(values.stock),
		disruptEveryMs: Number(values.every),
		downMs: Number(values.down),
		sale: { units: Math.floor(Number(values.stock) * 0.7), perCustomerLimit: 2 },
		log: line => console.log(`[chaos] ${line}`)
	});
	console.log(JSON.stringify(report, null, 2));
	console.log(formatPhases(report));
	const broken =
		report.pastBound +
		report.contradictions +
		report.dropped +
		report.oversold +
		report.doubleCharges +
		report.unsoldPaidUnits +
		report.reservedMismatch +
		report.strayCharges +
		report.badAnswers;
	if (broken !== 0 || Number.isNaN(broken)) {
		console.error("Chaos run: an invariant broke (see the report above)");
		process.exit(1);
	}
	console.log("Chaos run: every invariant held");
}

main().catch(err => {
	console.error(err);
	process.exit(1);
});
