/**
 * Validation rules shared by every action that takes the same kind of value, so that one value has one meaning
 * everywhere (fastest-validator rules; pure, no broker).
 */
import { getAlpha2Codes } from "i18n-iso-countries";
import { UnprocessableError } from "./errors";

/** Characters no one can see or that change how text around them is shown: format (Cf, bidi controls among them),
 * control, unassigned and private-use (C*), separators (Z*), and the rest of Unicode's default-ignorables (such as
 * the Hangul filler or variation selectors). A look-alike address is built from these. */
const INVISIBLE = /[\p{C}\p{Z}\p{Default_Ignorable_Code_Point}]/u;
/** local@domain.tld, nothing blank and one `@`, as fastest-validator's basic email check. */
const EMAIL_SHAPE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/u;
export const EMAIL_MAX = 254;

export type EmailCheck =
	{ ok: true; email: string } | { ok: false; reason: "invisible" | "shape" | "length" };

/**
 * The one spelling of an email address: trimmed, NFKC (full-width and other compatibility forms become the plain
 * letters), lower-cased. Refused when it holds an invisible or format character anywhere, before or after the
 * normalisation, so `a\u200b@x.io` and `a\u00ad@x.io` never become a second account beside `a@x.io`.
 */
export function normalizeEmail(raw: string): EmailCheck {
	const trimmed = raw.trim();
	if (INVISIBLE.test(trimmed)) return { ok: false, reason: "invisible" };
	const email = trimmed.normalize("NFKC").toLowerCase().normalize("NFKC");
	if (INVISIBLE.test(email)) return { ok: false, reason: "invisible" };
	if (email.length > EMAIL_MAX) return { ok: false, reason: "length" };
	if (!EMAIL_SHAPE.test(email)) return { ok: false, reason: "shape" };
	return { ok: true, email };
}

interface CheckerError {
	type: string;
	actual?: unknown;
	expected?: unknown;
	message?: string;
}

/** fastest-validator custom checker (Moleculer's `useNewCustomCheckerFunction` signature). */
function emailChecker(value: unknown, errors: CheckerError[]): unknown {
	// fastest-validator calls a custom checker after a failed type check too; that error is already reported.
	if (typeof value !== "string") return value;
	const res = normalizeEmail(value);
	if (res.ok) return res.email;
	if (res.reason === "invisible") {
		errors.push({
			type: "emailCharacters",
			actual: value,
			message: "The '{field}' field must not contain invisible or formatting characters."
		});
	} else if (res.reason === "length") {
		errors.push({ type: "stringMax", expected: EMAIL_MAX, actual: value.length });
	} else {
		errors.push({ type: "email", actual: value });
	}
	return value;
}

/** Every email a client sends (register, login, admin look-ups): normalised by `normalizeEmail`, else 422. */
export const EMAIL_RULE = {
	type: "string",
	// A bound before the work; the normalised address is held to EMAIL_MAX.
	max: 4 * EMAIL_MAX,
	custom: emailChecker,
	// What the checker accepts, for the OpenAPI document (services/api/action-schema.ts).
	jsonSchema: { format: "email" }
} as const;

/**
 * An enum rule whose 422 says the value given and the values allowed (fastest-validator's own message puts the
 * allowed list where the value should be). The value is echoed only here: an enum never holds a secret.
 */
export function enumRule<V extends string>(field: string, values: readonly V[]) {
	return {
		type: "enum",
		values: [...values],
		messages: {
			enumValue: `'{actual}' is not a valid ${field}; allowed values: ${values.join(", ")}`
		}
	} as const;
}

/** ISO-8601 with a date, a time and a zone (`2026-12-01T10:00:00Z`, `...+01:00`): what API.md calls a timestamp. */
const TIMESTAMP_SHAPE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

function timestampChecker(value: unknown, errors: CheckerError[]): unknown {
	if (typeof value !== "string") return value;
	const ms = Date.parse(value);
	if (!TIMESTAMP_SHAPE.test(value) || !Number.isFinite(ms)) {
		errors.push({
			type: "timestamp",
			actual: value,
			message:
				"The '{field}' field must be an ISO-8601 timestamp with a time zone, e.g. 2026-12-01T10:00:00Z."
		});
		return value;
	}
	return new Date(ms).toISOString();
}

/**
 * A timestamp a client sends: checked, and stored in one spelling (UTC, milliseconds). A new rule object per field:
 * fastest-validator compiles a rule object in place, and one object under two fields checks only the first.
 */
export const timestampRule = () =>
	({
		type: "string",
		max: 40,
		custom: timestampChecker,
		jsonSchema: { format: "date-time" }
	}) as const;

/** The ISO-4217 codes in use, as Node's ICU lists them (no test or "no currency" codes such as XTS or XXX). */
const CURRENCIES: ReadonlySet<string> = new Set(Intl.supportedValuesOf("currency"));
/** ISO 3166-1 alpha-2 as i18n-iso-countries keeps it: the 249 assigned codes, and XK (Kosovo) in common use. */
const COUNTRIES: ReadonlySet<string> = new Set(Object.keys(getAlpha2Codes()));

/** Whether `code` (upper-case) is a currency in use: three letters alone do not make one. */
export const isCurrency = (code: string): boolean => CURRENCIES.has(code);
/** Whether `code` (upper-case) is a country's ISO 3166-1 alpha-2 code ("UK" is not: Britain is GB). */
export const isCountry = (code: string): boolean => COUNTRIES.has(code);

/** What currencyRule and countryRule accept, in the OpenAPI document's words. */
export const CURRENCY_DESCRIPTION =
	"ISO-4217 code of a currency in use (upper-cased); another is 422";
export const COUNTRY_DESCRIPTION =
	"ISO-3166 alpha-2 code of a country (upper-cased); another is 422";

/**
 * A rule for a code from a list (a currency, a country): letters of the list's length in either case, stored
 * upper-cased; letters that are not on the list are 422 with `type` `kind`. A new rule object per call: one
 * object twice in a schema is compiled once (see timestampRule).
 */
function listedCodeRule(
	kind: string,
	length: number,
	isListed: (code: string) => boolean,
	what: string,
	description: string
) {
	const shape = new RegExp(`^[A-Za-z]{${length}}$`);
	const checker = (value: unknown, errors: CheckerError[]): unknown => {
		// A value of the wrong type or shape is already reported by the rule's own checks.
		if (typeof value !== "string" || !shape.test(value)) return value;
		const code = value.toUpperCase();
		if (!isListed(code))
			errors.push({ type: kind, actual: value, message: `The '{field}' field must be ${what}.` });
		return code;
	};
	return () =>
		({
			type: "string",
			trim: true,
			pattern: shape,
			custom: checker,
			jsonSchema: { description }
		}) as const;
}

/**
 * A currency a client sets (a product's, a fixed discount's, a shipping method's), so a typo ("UDS") is a 422 and
 * not a price no cart can mix with any other.
 */
export const currencyRule = listedCodeRule(
	"currency",
	3,
	isCurrency,
	"an ISO-4217 currency code in use, such as USD or EUR",
	CURRENCY_DESCRIPTION
);

/** A country a client names (an address's, a shipping method's, a tax rate's): "XX" ships nowhere. */
export const countryRule = listedCodeRule(
	"country",
	2,
	isCountry,
	"an ISO-3166 alpha-2 country code, such as US or GB",
	COUNTRY_DESCRIPTION
);

/** A 422 naming one field, in the shape fastest-validator's own answers have, for rules it cannot express. */
export function invalidField(field: string, type: string, message: string): UnprocessableError {
	return new UnprocessableError("VALIDATION_ERROR", message, [{ field, type, message }]);
}
