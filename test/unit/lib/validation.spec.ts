import Validator from "fastest-validator";
import { EMAIL_RULE, countryRule, currencyRule, normalizeEmail } from "../../../lib/validation";

describe("lib/validation normalizeEmail", () => {
	it("trims, applies NFKC and lower-cases", () => {
		expect(normalizeEmail("  ＡＬＩＣＥ＠Example.COM ")).toEqual({
			ok: true,
			email: "alice@example.com"
		});
	});

	it.each([
		["zero-width space", "a\u200b@x.io"],
		["soft hyphen", "a\u00ad@x.io"],
		["bidi override", "\u202ea@x.io"],
		["bidi isolate", "a\u2066@x.io"],
		["Hangul filler", "a\u3164@x.io"],
		["no-break space", "a\u00a0b@x.io"],
		["control character", "a\u0007@x.io"]
	])("refuses a %s", (_what, email) => {
		expect(normalizeEmail(email)).toEqual({ ok: false, reason: "invisible" });
	});

	it("refuses what is not an address, and over 254 characters once normalised", () => {
		expect(normalizeEmail("no-at-sign")).toEqual({ ok: false, reason: "shape" });
		expect(normalizeEmail(`${"a".repeat(250)}@x.io`)).toEqual({ ok: false, reason: "length" });
	});

	it("as a rule: gives the normalised value, 422 errors otherwise, never throws on other types", () => {
		const check = new Validator({ useNewCustomCheckerFunction: true }).compile({
			email: EMAIL_RULE
		} as never);
		const params = { email: "Ｂob@Example.com" };
		expect(check(params)).toBe(true);
		expect(params.email).toBe("bob@example.com");
		for (const email of [undefined, 42, { $ne: "" }, "b\u200bob@example.com"]) {
			const res = check({ email });
			expect(Array.isArray(res)).toBe(true);
			expect((res as Array<{ field: string }>)[0].field).toBe("email");
		}
	});
});

describe("lib/validation currencyRule", () => {
	const check = new Validator({ useNewCustomCheckerFunction: true }).compile({
		currency: currencyRule()
	} as never);

	it("takes a currency in use in either case and gives it upper-cased", () => {
		for (const [given, stored] of [
			["USD", "USD"],
			["eur", "EUR"],
			["Jpy", "JPY"]
		]) {
			const params = { currency: given };
			expect(check(params)).toBe(true);
			expect(params.currency).toBe(stored);
		}
	});

	it("refuses three letters that are no currency in use, once, naming the field", () => {
		for (const currency of ["XYZ", "XTS", "XXX", "UDS"]) {
			expect(check({ currency })).toEqual([
				expect.objectContaining({ field: "currency", type: "currency", actual: currency })
			]);
		}
	});

	it("leaves other shapes and types to the rule's own checks: one error each, no throw", () => {
		for (const currency of ["dollars", "US", 840, null]) {
			const res = check({ currency }) as Array<{ field: string; type: string }>;
			expect(res).toHaveLength(1);
			expect(res[0].field).toBe("currency");
			expect(res[0].type).not.toBe("currency");
		}
	});
});

describe("lib/validation countryRule", () => {
	const check = new Validator({ useNewCustomCheckerFunction: true }).compile({
		country: countryRule(),
		countries: { type: "array", items: countryRule() }
	} as never);

	it("takes an ISO 3166-1 alpha-2 code, trimmed, in either case, and gives it upper-cased", () => {
		const params = { country: " gb ", countries: ["de", "XK", "US"] };
		expect(check(params)).toBe(true);
		expect(params).toEqual({ country: "GB", countries: ["DE", "XK", "US"] });
	});

	it("refuses two letters that are no country's code: UK, EU, ZZ, XX", () => {
		for (const country of ["UK", "EU", "ZZ", "xx"]) {
			expect(check({ country, countries: ["FR"] })).toEqual([
				expect.objectContaining({ field: "country", type: "country", actual: country })
			]);
		}
		expect(check({ country: "FR", countries: ["FR", "QQ"] })).toEqual([
			expect.objectContaining({ type: "country", actual: "QQ" })
		]);
	});
});
