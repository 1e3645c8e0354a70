/**
 * The totals of a cart or an order, pure: no broker, no store. One rounding rule, written down once (also in the
 * OpenAPI document and docs/services.md): every amount is rounded per line, half up, to the minor unit, and every
 * total is the sum of its rounded parts, so the parts always add up to the total exactly.
 *
 *   line discount   percentage: round(lineTotal × value / 100); fixed: the amount shared over the eligible lines
 *                   in proportion to their totals (largest remainder, so the shares sum to the amount exactly)
 *   line tax        exclusive prices: round((lineTotal − line discount) × rate / 10000)
 *                   inclusive prices: round((lineTotal − line discount) × rate / (10000 + rate)), the tax contained
 *   shipping        the method's price (0 once the discounted subtotal reaches `freeAbove`), taxed as one more
 *                   line at the country's rate without a category
 *   total           subtotal − discountTotal + shippingTotal (+ taxTotal where prices exclude tax)
 */

export interface TotalsLine {
	productId: string;
	lineTotal: number;
	category?: string;
}

export interface TotalsDiscount {
	type: "percentage" | "fixed";
	/** Percentage: whole percent 1..100; fixed: minor units of the cart's currency. */
	value: number;
	/** Whether a line may be discounted (the code's products and categories). */
	applies(line: TotalsLine): boolean;
}

export interface TotalsInput {
	lines: TotalsLine[];
	discount?: TotalsDiscount;
	shipping?: { price: number; freeAbove?: number };
	/** Basis points for a line's category (falling back to the country's rate); null for the shipping line. */
	rateOf(category: string | null): number;
	taxIncluded: boolean;
}

export interface LineTotals {
	productId: string;
	discount: number;
	tax: number;
}

export interface Totals {
	subtotal: number;
	discountTotal: number;
	shippingTotal: number;
	taxTotal: number;
	total: number;
	lines: LineTotals[];
}

/** `numerator / denominator` rounded half up, for non-negative integers (exact below 2^53). */
export function roundHalfUp(numerator: number, denominator: number): number {
	return Math.floor((2 * numerator + denominator) / (2 * denominator));
}

/** Tax on `base` at `rate` basis points: added to it (exclusive) or contained in it (inclusive). */
export function taxOf(base: number, rate: number, included: boolean): number {
	if (rate <= 0 || base <= 0) return 0;
	return included ? roundHalfUp(base * rate, 10_000 + rate) : roundHalfUp(base * rate, 10_000);
}

/** Splits `amount` over `weights` in proportion, each share rounded down, the remainder to the largest fractions. */
export function share(amount: number, weights: number[]): number[] {
	const sum = weights.reduce((a, b) => a + b, 0);
	if (sum === 0) return weights.map(() => 0);
	const exact = weights.map(w => (amount * w) / sum);
	const shares = exact.map(Math.floor);
	let left = amount - shares.reduce((a, b) => a + b, 0);
	const order = exact
		.map((x, i) => ({ i, frac: x - Math.floor(x) }))
		.sort((a, b) => b.frac - a.frac || a.i - b.i);
	for (const { i } of order) {
		if (left <= 0) break;
		shares[i]++;
		left--;
	}
	return shares;
}

/** The discount of each line (0 for lines the code does not apply to). */
function lineDiscounts(lines: TotalsLine[], discount?: TotalsDiscount): number[] {
	if (!discount) return lines.map(() => 0);
	const eligible = lines.map(l => discount.applies(l));
	if (discount.type === "percentage") {
		return lines.map((l, i) => (eligible[i] ? roundHalfUp(l.lineTotal * discount.value, 100) : 0));
	}
	const weights = lines.map((l, i) => (eligible[i] ? l.lineTotal : 0));
	const base = weights.reduce((a, b) => a + b, 0);
	return share(Math.min(discount.value, base), weights);
}

export function computeTotals(input: TotalsInput): Totals {
	const { lines, taxIncluded } = input;
	const subtotal = lines.reduce((sum, l) => sum + l.lineTotal, 0);
	const discounts = lineDiscounts(lines, input.discount);
	const discountTotal = discounts.reduce((a, b) => a + b, 0);
	const discounted = subtotal - discountTotal;
	const shipping = input.shipping;
	const shippingTotal =
		!shipping || (shipping.freeAbove !== undefined && discounted >= shipping.freeAbove)
			? 0
			: shipping.price;
	const out: LineTotals[] = lines.map((l, i) => ({
		productId: l.productId,
		discount: discounts[i],
		tax: taxOf(l.lineTotal - discounts[i], input.rateOf(l.category ?? null), taxIncluded)
	}));
	const shippingTax = taxOf(shippingTotal, input.rateOf(null), taxIncluded);
	const taxTotal = out.reduce((sum, l) => sum + l.tax, 0) + shippingTax;
	return {
		subtotal,
		discountTotal,
		shippingTotal,
		taxTotal,
		total: discounted + shippingTotal + (taxIncluded ? 0 : taxTotal),
		lines: out
	};
}
