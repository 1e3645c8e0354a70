import Validator from "fastest-validator";
import { EMAIL_RULE, normalizeEmail } from "../../../lib/validation";

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
