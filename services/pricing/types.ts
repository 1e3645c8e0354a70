/**
 * The shapes pricing shares: with carts and orders (what they send to be priced and get back) and between its own
 * files (the demo data is written in them), so that no file of pricing imports the service to name a type.
 */
import type { Totals } from "./totals";

export type DiscountReason =
	| "unknown"
	| "expired"
	| "not_started"
	| "exhausted"
	| "customer_limit"
	| "min_subtotal"
	| "not_applicable";

/** A shipping method's terms, as an admin writes them. */
export interface ShippingTerms {
	name: string;
	price: number;
	currency: string;
	countries: string[];
	freeAbove?: number;
}

export interface TaxRate {
	country: string;
	category?: string;
	rate: number;
}

/** What carts and orders send to be priced. */
export interface QuoteParams {
	currency: string;
	items: Array<{ productId: string; lineTotal: number }>;
	code?: string;
	userId?: string;
	shippingMethodId?: string;
	country?: string;
	/** Throw 422 for a code that cannot be used (applying, checkout) instead of pricing without it (a cart's view). */
	strict?: boolean;
}

/** The totals, and what they were made of. */
export interface Quote extends Totals {
	taxIncluded: boolean;
	country: string;
	discount?: { id: string; code: string; type: string; value: number; amount: number };
	/** An applied code that cannot be used now, and why (a cart's view only). */
	discountRejected?: { code: string; reason: DiscountReason };
	shippingMethod?: { id: string; name: string; price: number };
}
