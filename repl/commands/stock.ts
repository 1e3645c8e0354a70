/** `stock <productId>`: a product's stock levels, the product, and the orders holding its units. */
import type { ServiceBroker } from "moleculer";
import { type ReplArgs, type ReplCommand, callAs, holdsOf, part, report } from "../operator";

export async function inspectStock(broker: ServiceBroker, productId: string) {
	const stock = await callAs(broker, "admin", "inventory.get", { productId });
	const [product, holds] = await Promise.all([
		part(async () => {
			const found = (await broker.call("products.summaries", { ids: [productId] })) as Record<
				string,
				unknown
			>;
			return found[productId] ?? null;
		}),
		part(async () =>
			(await holdsOf(broker, { productId })).map(h => ({
				orderId: h.orderId,
				quantity: h.quantity
			}))
		)
	]);
	return { stock, product, holds };
}

export const stockCommand: ReplCommand = {
	command: "stock <productId>",
	description:
		"A product's stock (onHand, reserved, available), the product, and the orders holding its units",
	async action(broker: ServiceBroker, args: ReplArgs) {
		await report(() => inspectStock(broker, String(args.productId)));
	}
};
