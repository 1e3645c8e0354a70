/**
 * `stock <productId|variantId>`: stock levels, the product, and the orders holding units. A product with options has
 * a level per variant, so it answers each variant's; a variant id answers that variant's alone.
 */
import type { ServiceBroker } from "moleculer";
import type { ProductSummary } from "../../types/catalog";
import { type ReplArgs, type ReplCommand, callAs, holdsOf, part, report } from "../operator";

/** One stock record's level and the orders holding its units (holds are kept under the stock's id). */
async function levelAndHolds(broker: ServiceBroker, variantId: string) {
	const [stock, holds] = await Promise.all([
		callAs(broker, "admin", "inventory.getVariant", { variantId }),
		part(async () =>
			(await holdsOf(broker, { productId: variantId })).map(h => ({
				orderId: h.orderId,
				quantity: h.quantity
			}))
		)
	]);
	return { stock, holds };
}

export async function inspectStock(broker: ServiceBroker, id: string) {
	const found = (await broker.call("products.summaries", {
		ids: [id],
		variantIds: [id]
	})) as Record<string, ProductSummary>;
	const product = Object.values(found)[0] ?? null;
	if (product && product.id === id && product.defaultVariantId === null) {
		const variants = await Promise.all(
			Object.values(product.variants).map(async v => ({
				variantId: v.id,
				sku: v.sku,
				options: v.options,
				...(v.archived ? { archived: true } : {}),
				...(await part(() => levelAndHolds(broker, v.id)))
			}))
		);
		return { product, variants };
	}
	// A product without options (its default variant's id is its own) or one variant.
	return { ...(await levelAndHolds(broker, id)), product };
}

export const stockCommand: ReplCommand = {
	command: "stock <id>",
	description:
		"Stock (onHand, reserved, available), the product and the orders holding units, of a product or a variant " +
		"(a product with options: each variant's)",
	async action(broker: ServiceBroker, args: ReplArgs) {
		await report(() => inspectStock(broker, String(args.id)));
	}
};
