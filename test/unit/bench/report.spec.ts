/**
 * `--observability`'s comparisons (bench/report.ts): tracing's own cost is round i with tracing over round i without,
 * so a round that measured nothing drops its pair and leaves the other pairs as they ran.
 */
import { median, variantOverheads } from "../../../bench/report";
import type { ObservabilityOverhead, ObservabilityVariant } from "../../../bench/types";

function variant(
	label: string,
	sampleRatio: number | null,
	rounds: Array<number | null>
): ObservabilityVariant {
	const measured = rounds.filter((r): r is number => r !== null);
	return {
		label,
		metricsAndLogs: label !== "off",
		sampleRatio,
		figures: [{ scenario: "read", unit: "req/s", perSecond: median(measured)!, p99: 10, rounds }]
	};
}

function overheads(...variants: ObservabilityVariant[]) {
	const o: ObservabilityOverhead = {
		scenario: "read",
		logLevel: "info",
		offRequestsPerSec: 0,
		onRequestsPerSec: 0,
		ratio: 1,
		linesShipped: 0,
		variants
	};
	return variantOverheads(o);
}

describe("bench/report", () => {
	it("takes the middle value, the upper one of an even count, and undefined of none", () => {
		expect(median([3, 1, 2])).toBe(2);
		expect(median([4, 1, 3, 2])).toBe(3);
		expect(median([])).toBeUndefined();
	});

	it("pairs tracing's rounds with metrics + logs' rounds by position", () => {
		const [, traced] = overheads(
			variant("off", null, [1000, 1000, 1000]),
			variant("metrics + logs", null, [1000, 500, 800]),
			variant("tracing at 0.1", 0.1, [700, 450, 1000])
		);
		// Paired: 0.7, 0.9, 1.25 -> 0.9. The medians alone (700 / 800) say 0.875.
		expect(traced.pairedRatioToUntraced).toBe(0.9);
		expect(traced.ratioToUntraced).toBe(0.875);
	});

	it("drops a pair whose round measured nothing instead of shifting the rounds after it", () => {
		const [, traced] = overheads(
			variant("off", null, [1000, 1000, 1000, 1000]),
			variant("metrics + logs", null, [1000, null, 500, 800]),
			variant("tracing at 0.1", 0.1, [900, 700, 450, 720])
		);
		// Pairs 0.9, 0.9, 0.9; shifted, 700 / 500 and 450 / 800 would have been compared.
		expect(traced.pairedRatioToUntraced).toBe(0.9);
	});

	it("has no paired figure when no round of both measured", () => {
		const [, traced] = overheads(
			variant("off", null, [1000]),
			variant("metrics + logs", null, [null, 800]),
			variant("tracing at 0.1", 0.1, [900, null])
		);
		expect(traced.pairedRatioToUntraced).toBeNull();
	});
});
