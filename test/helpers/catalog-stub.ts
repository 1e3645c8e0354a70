/**
 * A product summary exactly as `products.summaries` answers one without options: its one variant is its default
 * one, whose id is the product's, with the product's sku, price, currency and archived flag.
 */
import type { ProductSummary } from "../../types/catalog";

export function productSummary(
	id: string,
	fields: Partial<Omit<ProductSummary, "variants" | "options" | "defaultVariantId">> = {}
): ProductSummary {
	const summary = {
		id,
		sku: `SKU-${id}`,
		name: `Product ${id}`,
		price: 1000,
		currency: "USD",
		category: "tests",
		archived: false,
		...fields
	};
	return {
		...summary,
		options: [],
		defaultVariantId: id,
		variants: {
			[id]: {
				id,
				sku: summary.sku,
				options: {},
				price: summary.price,
				currency: summary.currency,
				archived: summary.archived
			}
		}
	};
}
