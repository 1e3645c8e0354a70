/**
 * A short chaos run in the suite (the longer one: `npm run chaos`): 200 concurrent purchase flows while nodes of
 * inventory, orders and payments are killed and restarted and NATS is restarted once; then the invariants hold:
 * 0 oversold units, 0 double charges, every paid order's units sold, every answer bounded (2xx/4xx/503/504).
 */
import { runChaos } from "../chaos/chaos";

describe("chaos", () => {
	it("200 concurrent purchase flows through node kills and a NATS restart keep stock and money consistent", async () => {
		const report = await runChaos({
			customers: 200,
			durationMs: 12_000,
			products: 5,
			stockEach: 60,
			disruptEveryMs: 1_500,
			downMs: 800
		});
		console.log(`chaos report: ${JSON.stringify(report)}`);
		// The chaos was felt (so this cannot pass vacuously), and the shop kept selling.
		expect(report.disruptions).toEqual(
			expect.arrayContaining([
				"kill -9 inventory",
				"kill -9 orders",
				"kill -9 payments",
				"nats restart"
			])
		);
		expect((report.statuses["503"] ?? 0) + (report.statuses["504"] ?? 0)).toBeGreaterThan(0);
		expect(report.purchases).toBeGreaterThan(0);
		expect({
			oversold: report.oversold,
			doubleCharges: report.doubleCharges,
			unsoldPaidUnits: report.unsoldPaidUnits,
			reservedMismatch: report.reservedMismatch,
			strayCharges: report.strayCharges,
			badAnswers: report.badAnswers
		}).toEqual({
			oversold: 0,
			doubleCharges: 0,
			unsoldPaidUnits: 0,
			reservedMismatch: 0,
			strayCharges: 0,
			badAnswers: 0
		});
	}, 240_000);
});
