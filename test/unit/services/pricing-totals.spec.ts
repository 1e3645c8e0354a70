import {
	type TotalsInput,
	computeTotals,
	roundHalfUp,
	share,
	taxOf
} from "../../../services/pricing/totals";

const flat =
	(rate: number, byCategory: Record<string, number> = {}) =>
	(category: string | null) =>
		(category !== null ? byCategory[category] : undefined) ?? rate;

/** The contract's identity: the parts always make the total, to the minor unit. */
function expectAddsUp(t: ReturnType<typeof computeTotals>, included: boolean) {
	expect(t.total).toBe(
		t.subtotal - t.discountTotal + t.shippingTotal + (included ? 0 : t.taxTotal)
	);
	expect(t.lines.reduce((s, l) => s + l.discount, 0)).toBe(t.discountTotal);
	for (const v of [t.subtotal, t.discountTotal, t.shippingTotal, t.taxTotal, t.total]) {
		expect(Number.isInteger(v)).toBe(true);
		expect(v).toBeGreaterThanOrEqual(0);
	}
}

describe("pricing totals", () => {
	it("rounds half up, exactly at the half", () => {
		expect(roundHalfUp(5, 10)).toBe(1); // 0.5
		expect(roundHalfUp(4, 10)).toBe(0); // 0.4
		expect(roundHalfUp(15, 10)).toBe(2); // 1.5
		expect(roundHalfUp(25, 10)).toBe(3); // 2.5: half up, not half even
		expect(roundHalfUp(0, 7)).toBe(0);
	});

	it("takes the tax out of a tax-inclusive amount and adds it to an exclusive one", () => {
		expect(taxOf(1200, 2000, true)).toBe(200); // 1200 includes 20%: 200
		expect(taxOf(1000, 2000, false)).toBe(200);
		expect(taxOf(1, 2000, true)).toBe(0); // 0.1666…
		expect(taxOf(3, 2000, true)).toBe(1); // 0.5 exactly: up
		expect(taxOf(25, 1000, false)).toBe(3); // 2.5: up
		expect(taxOf(1000, 0, false)).toBe(0);
	});

	it("shares a fixed amount over lines in proportion, the remainder to the largest fractions", () => {
		expect(share(100, [1, 1, 1])).toEqual([34, 33, 33]);
		expect(share(10, [333, 333, 334])).toEqual([3, 3, 4]);
		expect(share(7, [0, 5, 0])).toEqual([0, 7, 0]);
		expect(share(5, [0, 0])).toEqual([0, 0]);
		for (const [amount, weights] of [
			[999, [1, 2, 3, 4]],
			[1, [3, 3, 3]],
			[12345, [7, 11, 13]]
		] as const) {
			expect(share(amount, [...weights]).reduce((a, b) => a + b, 0)).toBe(amount);
		}
	});

	it("adds up for tax-inclusive prices with a percentage code and shipping at rounding edges", () => {
		const input: TotalsInput = {
			lines: [
				{ productId: "a", lineTotal: 1005, category: "books" }, // 15% = 150.75 → 151
				{ productId: "b", lineTotal: 333, category: "toys" }, // 15% = 49.95 → 50
				{ productId: "c", lineTotal: 10 } // 15% = 1.5 → 2
			],
			discount: { type: "percentage", value: 15, applies: () => true },
			shipping: { price: 499 },
			rateOf: flat(2000, { books: 500 }),
			taxIncluded: true
		};
		const t = computeTotals(input);
		expect(t.lines.map(l => l.discount)).toEqual([151, 50, 2]);
		// (1005-151)=854 at 5% incl: 854*500/10500 = 40.67 → 41; 283 at 20% incl: 47.17 → 47; 8: 1.33 → 1;
		// shipping 499 at 20% incl: 83.17 → 83
		expect(t.lines.map(l => l.tax)).toEqual([41, 47, 1]);
		expect(t).toMatchObject({
			subtotal: 1348,
			discountTotal: 203,
			shippingTotal: 499,
			taxTotal: 172,
			total: 1644
		});
		expectAddsUp(t, true);
	});

	it("adds tax on top of exclusive prices, after the discount, shipping taxed at the country's rate", () => {
		const t = computeTotals({
			lines: [
				{ productId: "a", lineTotal: 2500 },
				{ productId: "b", lineTotal: 1 }
			],
			discount: { type: "fixed", value: 1000, applies: l => l.productId === "a" },
			shipping: { price: 250 },
			rateOf: flat(1000),
			taxIncluded: false
		});
		// a: 1500 → 150; b: 1 → 0.1 → 0; shipping 250 → 25
		expect(t).toMatchObject({
			discountTotal: 1000,
			taxTotal: 175,
			total: 2500 + 1 - 1000 + 250 + 175
		});
		expectAddsUp(t, false);
	});

	it("never discounts more than the lines it applies to, and ships free from freeAbove (after discount)", () => {
		const t = computeTotals({
			lines: [{ productId: "a", lineTotal: 300 }],
			discount: { type: "fixed", value: 5000, applies: () => true },
			shipping: { price: 499, freeAbove: 300 },
			rateOf: flat(0),
			taxIncluded: false
		});
		expect(t).toMatchObject({ discountTotal: 300, shippingTotal: 499, total: 499 });
		const free = computeTotals({
			lines: [{ productId: "a", lineTotal: 3000 }],
			shipping: { price: 499, freeAbove: 3000 },
			rateOf: flat(0),
			taxIncluded: false
		});
		expect(free).toMatchObject({ shippingTotal: 0, total: 3000 });
	});

	it("without code, method or rates is the subtotal with zeros (as before pricing)", () => {
		const t = computeTotals({
			lines: [{ productId: "a", lineTotal: 1299 }],
			rateOf: () => 0,
			taxIncluded: false
		});
		expect(t).toMatchObject({
			subtotal: 1299,
			discountTotal: 0,
			shippingTotal: 0,
			taxTotal: 0,
			total: 1299
		});
	});

	it("adds up over many random carts", () => {
		let seed = 42;
		const rnd = (n: number) => {
			seed = (seed * 1103515245 + 12345) % 2 ** 31;
			return seed % n;
		};
		for (let i = 0; i < 2000; i++) {
			const included = rnd(2) === 0;
			const lines = Array.from({ length: 1 + rnd(5) }, (_, j) => ({
				productId: `p${j}`,
				lineTotal: 1 + rnd(100_000),
				category: rnd(2) ? "books" : undefined
			}));
			const t = computeTotals({
				lines,
				discount:
					rnd(3) === 0
						? undefined
						: rnd(2)
							? { type: "percentage", value: 1 + rnd(100), applies: l => l.category !== undefined }
							: { type: "fixed", value: 1 + rnd(50_000), applies: () => true },
				shipping: rnd(2)
					? { price: rnd(2000), freeAbove: rnd(2) ? rnd(200_000) : undefined }
					: undefined,
				rateOf: flat(rnd(3000), { books: rnd(1000) }),
				taxIncluded: included
			});
			expectAddsUp(t, included);
			expect(t.discountTotal).toBeLessThanOrEqual(t.subtotal);
		}
	});
});
