/** The rules of services/products/variants.ts, as pure functions over a stored product. */
import {
	type VariantDoc,
	type VariantHolder,
	checkCombination,
	checkOptions,
	checkUnique,
	newVariant,
	priceFields,
	skusOf,
	variantsOf,
	withOptions
} from "../../../services/products/variants";

const NOW = "2026-12-01T00:00:00.000Z";
const plain: VariantHolder = { _id: "p1", sku: "P1", price: 1000, createdAt: NOW, updatedAt: NOW };
const tee = (variants: VariantDoc[] = []): VariantHolder => ({
	...plain,
	options: [
		{ name: "size", values: ["S", "M"] },
		{ name: "colour", values: ["red", "blue"] }
	],
	variants
});
const variant = (id: string, sku: string, options: Record<string, string>, extra = {}) =>
	newVariant(tee(), id, { sku, options, ...extra }, NOW);
const codeOf = (fn: () => unknown) => {
	try {
		fn();
	} catch (err) {
		return (err as { type: string }).type;
	}
	return "none";
};

describe("variants of a product", () => {
	it("gives a product stored before variants its default variant: its own id, sku and price", () => {
		expect(variantsOf(plain)).toEqual([
			{
				id: "p1",
				sku: "P1",
				options: {},
				price: 1000,
				archived: false,
				createdAt: NOW,
				updatedAt: NOW
			}
		]);
	});

	it("takes one allowed value of every option and nothing else", () => {
		const options = tee().options!;
		expect(codeOf(() => checkCombination(options, { size: "S", colour: "red" }))).toBe("none");
		expect(codeOf(() => checkCombination(options, { size: "S" }))).toBe("VALIDATION_ERROR");
		expect(codeOf(() => checkCombination(options, { size: "XL", colour: "red" }))).toBe(
			"VALIDATION_ERROR"
		);
		expect(codeOf(() => checkCombination(options, { size: "S", colour: "red", fit: "slim" }))).toBe(
			"VALIDATION_ERROR"
		);
	});

	it("refuses option names repeated in another case and values repeated in an option", () => {
		expect(
			codeOf(() =>
				checkOptions([
					{ name: "Size", values: ["S"] },
					{ name: "size", values: ["M"] }
				])
			)
		).toBe("VALIDATION_ERROR");
		expect(codeOf(() => checkOptions([{ name: "size", values: ["S", "S"] }]))).toBe(
			"VALIDATION_ERROR"
		);
	});

	it("refuses a combination or sku another variant has, but not an archived variant's combination", () => {
		const red = variant("v1", "T-S-RED", { size: "S", colour: "red" });
		const doc = tee([red]);
		expect(
			codeOf(() => checkUnique(doc, [red], variant("v2", "X", { size: "S", colour: "red" })))
		).toBe("VARIANT_EXISTS");
		expect(
			codeOf(() => checkUnique(doc, [red], variant("v2", "T-S-RED", { size: "M", colour: "red" })))
		).toBe("SKU_TAKEN");
		expect(
			codeOf(() => checkUnique(doc, [red], variant("v2", "P1", { size: "M", colour: "red" })))
		).toBe("SKU_TAKEN");
		const archived = { ...red, archived: true };
		expect(
			codeOf(() => checkUnique(doc, [archived], variant("v2", "NEW", { size: "S", colour: "red" })))
		).toBe("none");
		// A variant changed in place is not its own duplicate.
		expect(codeOf(() => checkUnique(doc, [red], { ...red, sku: "T-S-RED" }))).toBe("none");
	});

	it("prices a product from its variants on sale, and lists every sku once", () => {
		const a = variant("v1", "A", { size: "S", colour: "red" }, { price: 500 });
		const b = variant("v2", "B", { size: "M", colour: "red" }, { price: 900 });
		expect(priceFields([a, b], 1)).toEqual({ price: 500, priceMax: 900 });
		expect(priceFields([{ ...a, archived: true }, b], 1)).toEqual({ price: 900, priceMax: 900 });
		expect(priceFields([], 1234)).toEqual({ price: 1234, priceMax: 1234 });
		expect(skusOf("P1", [variantsOf(plain)[0], a])).toEqual(["P1", "A"]);
	});

	it("takes the default variant off sale when options come, and back when they go", () => {
		const withSize = withOptions(plain, [{ name: "size", values: ["S"] }], NOW);
		expect(withSize.variants).toEqual([expect.objectContaining({ id: "p1", archived: true })]);
		const back = withOptions(
			{ ...plain, options: [{ name: "size", values: ["S"] }], variants: withSize.variants },
			[],
			NOW
		);
		expect(back).toEqual({
			variants: [expect.objectContaining({ id: "p1", archived: false })],
			defaultAdded: false
		});
		// A product created with options never had a default variant: it is made (and its stock with it).
		expect(withOptions(tee(), [], NOW)).toEqual({
			variants: [expect.objectContaining({ id: "p1", options: {}, archived: false })],
			defaultAdded: true
		});
	});

	it("keeps the options a variant on sale uses, and lets values be added", () => {
		const red = variant("v1", "T-S-RED", { size: "S", colour: "red" });
		const doc = tee([red]);
		const grown = [
			{ name: "size", values: ["S", "M", "L"] },
			{ name: "colour", values: ["red", "blue"] }
		];
		expect(codeOf(() => withOptions(doc, grown, NOW))).toBe("none");
		expect(codeOf(() => withOptions(doc, [{ name: "size", values: ["S"] }], NOW))).toBe(
			"OPTION_IN_USE"
		);
		expect(
			codeOf(() =>
				withOptions(
					doc,
					[
						{ name: "size", values: ["M"] },
						{ name: "colour", values: ["red"] }
					],
					NOW
				)
			)
		).toBe("OPTION_IN_USE");
		expect(codeOf(() => withOptions(doc, [], NOW))).toBe("OPTION_IN_USE");
		expect(codeOf(() => withOptions(tee([{ ...red, archived: true }]), [], NOW))).toBe("none");
	});
});
