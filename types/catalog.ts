/**
 * What the catalog answers other services (carts, orders, pricing) about its products, so that they share these
 * shapes without importing the products service.
 */

export interface ProductOption {
	name: string;
	values: string[];
}

/** One variant as `products.summaries` answers it, archived ones included (orders name them). */
export interface VariantSummary {
	id: string;
	sku: string;
	/** Option name → value; `{}` for a product's default variant. */
	options: Record<string, string>;
	price: number;
	currency: string;
	/** The variant or its product is archived: gone from new carts, kept for orders. */
	archived: boolean;
}

/** What other services need of a product, archived ones included. */
export interface ProductSummary {
	id: string;
	sku: string;
	name: string;
	/** The lowest price of a variant on sale (a product without options: its one price). */
	price: number;
	currency: string;
	category: string;
	archived: boolean;
	options: ProductOption[];
	variants: Record<string, VariantSummary>;
	/** The id of the variant a line naming only the product means (the product's id), or null: it has options. */
	defaultVariantId: string | null;
}
