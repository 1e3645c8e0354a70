/**
 * A product's options and variants: the rules every change to them keeps, as pure functions over the stored product,
 * so that the service computes each admin change here and writes it as one conditional update of the product.
 *
 * A product without options has exactly one variant, its default one, whose id is the product's id: stock, holds,
 * cart and order lines written before variants existed name it already, so nothing is re-keyed.
 */
import { ConflictError } from "../../lib/errors";
import { invalidField } from "../../lib/validation";
import type { ProductOption } from "../../types/catalog";

export interface VariantDoc {
	id: string;
	sku: string;
	/** Option name → value; `{}` for the default variant. */
	options: Record<string, string>;
	price: number;
	/** The product's images this variant shows (all of them when absent). */
	imageIds?: string[];
	archived: boolean;
	createdAt: string;
	updatedAt: string;
}

/** The fields of a stored product the rules read. */
export interface VariantHolder {
	_id: string;
	sku: string;
	price: number;
	options?: ProductOption[];
	variants?: VariantDoc[];
	createdAt: string;
	updatedAt: string;
}

export const MAX_OPTIONS = 5;
export const MAX_VALUES = 50;
export const MAX_VARIANTS = 250;

/** The one variant of a product without options: the product's own id, sku and price. */
export function defaultVariant(doc: VariantHolder): VariantDoc {
	return {
		id: doc._id,
		sku: doc.sku,
		options: {},
		price: doc.price,
		archived: false,
		createdAt: doc.createdAt,
		updatedAt: doc.updatedAt
	};
}

/** The stored variants; a product stored before variants existed has its default one. */
export function variantsOf(doc: VariantHolder): VariantDoc[] {
	return Array.isArray(doc.variants) ? doc.variants : [defaultVariant(doc)];
}

export function optionsOf(doc: VariantHolder): ProductOption[] {
	return Array.isArray(doc.options) ? doc.options : [];
}

export function liveVariants(doc: VariantHolder): VariantDoc[] {
	return variantsOf(doc).filter(v => !v.archived);
}

/**
 * The fields listings filter and sort on: `price` is the lowest price of a variant on sale and `priceMax` the highest
 * (a product with no variant on sale keeps the price it had, so it sorts where it did).
 */
export function priceFields(
	variants: VariantDoc[],
	fallback: number
): { price: number; priceMax: number } {
	const prices = variants.filter(v => !v.archived).map(v => v.price);
	if (prices.length === 0) return { price: fallback, priceMax: fallback };
	return { price: Math.min(...prices), priceMax: Math.max(...prices) };
}

/** Every sku a product holds (its own and its variants', archived ones too: orders name them), for the unique index. */
export function skusOf(sku: string, variants: VariantDoc[]): string[] {
	return [...new Set([sku, ...variants.map(v => v.sku)])];
}

/** Option names are unique whatever their case; a value appears once in its option. */
export function checkOptions(options: ProductOption[], field = "options"): void {
	const names = new Set<string>();
	options.forEach((option, i) => {
		const name = option.name.toLowerCase();
		if (names.has(name)) {
			throw invalidField(`${field}[${i}].name`, "unique", `Option "${option.name}" is named twice`);
		}
		names.add(name);
		if (new Set(option.values).size !== option.values.length) {
			throw invalidField(
				`${field}[${i}].values`,
				"unique",
				`A value of "${option.name}" is listed twice`
			);
		}
	});
}

/** A variant names exactly one allowed value of each of the product's options, and nothing else. */
export function checkCombination(
	options: ProductOption[],
	combination: Record<string, string>,
	field = "options"
): void {
	for (const key of Object.keys(combination)) {
		if (!options.some(o => o.name === key)) {
			throw invalidField(`${field}.${key}`, "forbidden", `The product has no option "${key}"`);
		}
	}
	for (const option of options) {
		const value = Object.hasOwn(combination, option.name) ? combination[option.name] : undefined;
		if (value === undefined) {
			throw invalidField(
				`${field}.${option.name}`,
				"required",
				`A value of "${option.name}" is required`
			);
		}
		if (!option.values.includes(value)) {
			throw invalidField(
				`${field}.${option.name}`,
				"enumValue",
				`"${value}" is not a value of "${option.name}" (${option.values.join(", ")})`
			);
		}
	}
}

const combinationKey = (options: ProductOption[], combination: Record<string, string>) =>
	JSON.stringify(options.map(o => combination[o.name]));

/**
 * 409 when `candidate` repeats the combination of another variant on sale or a sku of the product. Skus of other
 * products are the unique index's to refuse.
 */
export function checkUnique(
	doc: VariantHolder,
	variants: VariantDoc[],
	candidate: Pick<VariantDoc, "id" | "sku" | "options">
): void {
	const options = optionsOf(doc);
	const key = combinationKey(options, candidate.options);
	const others = variants.filter(v => v.id !== candidate.id);
	if (others.some(v => !v.archived && combinationKey(options, v.options) === key)) {
		throw new ConflictError("VARIANT_EXISTS", "Another variant has these option values", {
			field: "options"
		});
	}
	if (candidate.sku === doc.sku && candidate.id !== doc._id) {
		throw new ConflictError("SKU_TAKEN", "The product itself has this sku", { field: "sku" });
	}
	if (others.some(v => v.sku === candidate.sku)) {
		throw new ConflictError("SKU_TAKEN", "Another variant has this sku", { field: "sku" });
	}
}

/**
 * What a change of the product's options does to its variants, or a 409 when variants on sale would be left with
 * values the options no longer have. Adding values is always allowed; options from none to some take the default
 * variant off sale (its stock and holds stay, for the orders that have them); from some to none put it back on sale.
 */
export function withOptions(
	doc: VariantHolder,
	next: ProductOption[],
	now: string
): { variants: VariantDoc[]; defaultAdded: boolean } {
	checkOptions(next);
	const variants = variantsOf(doc);
	const dflt = variants.find(v => v.id === doc._id);
	if (next.length === 0) {
		if (variants.some(v => v.id !== doc._id && !v.archived)) {
			throw new ConflictError(
				"OPTION_IN_USE",
				"Variants on sale use these options: archive them before removing every option",
				{ field: "options" }
			);
		}
		if (dflt) {
			return {
				variants: variants.map(v =>
					v.id === doc._id ? { ...v, archived: false, updatedAt: now } : v
				),
				defaultAdded: false
			};
		}
		const fresh = { ...defaultVariant(doc), createdAt: now, updatedAt: now };
		return { variants: [...variants, fresh], defaultAdded: true };
	}
	for (const v of variants) {
		if (v.archived || v.id === doc._id) continue;
		try {
			checkCombination(next, v.options);
		} catch {
			throw new ConflictError(
				"OPTION_IN_USE",
				`Variant ${v.sku} uses an option or value the change removes: archive it first`,
				{ field: "options", variantId: v.id }
			);
		}
	}
	return {
		variants: variants.map(v =>
			v.id === doc._id && !v.archived ? { ...v, archived: true, updatedAt: now } : v
		),
		defaultAdded: false
	};
}

/** A new variant of a product with options, its option values checked against the product's. */
export function newVariant(
	doc: VariantHolder,
	id: string,
	spec: { sku: string; options: Record<string, string>; price?: number; imageIds?: string[] },
	now: string,
	field = "options"
): VariantDoc {
	checkCombination(optionsOf(doc), spec.options, field);
	return {
		id,
		sku: spec.sku,
		options: spec.options,
		price: spec.price ?? doc.price,
		...(spec.imageIds ? { imageIds: spec.imageIds } : {}),
		archived: false,
		createdAt: now,
		updatedAt: now
	};
}
