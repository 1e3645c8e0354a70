/**
 * A postal address as checkout takes it (API.md "Orders": `shippingAddress`), and as users keeps a customer's saved
 * ones: one rule, so a saved address is always one checkout accepts.
 */
import { countryRule } from "../../lib/validation";

export interface ShippingAddress {
	name: string;
	line1: string;
	line2?: string;
	city: string;
	postalCode: string;
	country: string;
}

const TEXT = (max: number) => ({ type: "string", trim: true, min: 1, max }) as const;

/** The fields of an address, each a fastest-validator rule. */
export const ADDRESS_FIELDS = {
	name: TEXT(100),
	line1: TEXT(200),
	line2: { type: "string", trim: true, max: 200, optional: true },
	city: TEXT(100),
	postalCode: { type: "string", trim: true, min: 1, max: 20, pattern: /^[A-Za-z0-9 -]+$/ },
	country: countryRule()
} as const;

export const ADDRESS = { type: "object", strict: "remove", props: ADDRESS_FIELDS } as const;
