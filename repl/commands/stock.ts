/** `stock <productId>`: a product's stock levels, the product, and the orders holding its units. */
import type { ServiceBroker } from "moleculer";
import { type ReplArgs, type ReplCommand, allHolds, callAs, part, report } from "../operator";

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
		part(async () => {
			const out: Array<{ orderId: string; quantity: number }> = [];
			for (const [orderId, lines] of await allHolds(broker)) {
				for (const line of lines)
					if (line.productId === productId) out.push({ orderId, quantity: line.quantity });
			}
			return out;
		})
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
