/** `ledger <orderId>`: what the payment provider recorded for an order (charges and refunds), with its payment. */
import type { ServiceBroker } from "moleculer";
import { type ReplArgs, type ReplCommand, part, report } from "../operator";

export async function orderLedger(broker: ServiceBroker, orderId: string) {
	const [payment, entries] = await Promise.all([
		part(() => broker.call("payments.get", { orderId })),
		broker.call("payments.ledger", { orderId })
	]);
	return { orderId, payment, entries };
}

export const ledgerCommand: ReplCommand = {
	command: "ledger <orderId>",
	description:
		"The payment provider's ledger for an order (every charge and refund) and its payment",
	async action(broker: ServiceBroker, args: ReplArgs) {
		await report(() => orderLedger(broker, String(args.orderId)));
	}
};
