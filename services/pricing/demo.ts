/**
 * What `npm run seed` gives a shop to price with: shipping methods, tax rates and a welcome code. US sales tax
 * depends on the state, so the demo has no US rate; the European rates show tax-inclusive pricing (EUR, GBP).
 */
import type { ShippingTerms, TaxRate } from "./types";

export const DEMO_SHIPPING: ShippingTerms[] = [
	{ name: "Standard", price: 499, currency: "USD", countries: ["US", "CA"], freeAbove: 5000 },
	{ name: "Express", price: 1499, currency: "USD", countries: ["US"] },
	{ name: "Standard", price: 599, currency: "EUR", countries: ["DE", "FR", "NL"], freeAbove: 6000 },
	{ name: "Royal Mail", price: 399, currency: "GBP", countries: ["GB"] }
];

export const DEMO_TAX_RATES: TaxRate[] = [
	{ country: "CA", rate: 500 },
	{ country: "DE", rate: 1900 },
	{ country: "DE", category: "books", rate: 700 },
	{ country: "FR", rate: 2000 },
	{ country: "GB", rate: 2000 },
	{ country: "NL", rate: 2100 }
];

export const DEMO_CODE = {
	code: "WELCOME10",
	type: "percentage" as const,
	value: 10,
	perCustomerLimit: 1
};
