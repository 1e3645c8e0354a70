/** `order <id>`: an order with its payment and provider attempts, its stock holds, and its events. */
import type { ServiceBroker } from "moleculer";
import { EVENT_OF, ORDER_STATES, type OrderStatus, TRANSITIONS } from "../../lib/order-state";
import { deadLetterStore } from "../../adapters/events";
import { type ReplArgs, type ReplCommand, holdsOf, callAs, part, report } from "../operator";

/**
 * The events an order in `status` has emitted: each client-visible state has one visible state before it (or none,
 * for pending_payment), so the path, and the event of each state on it, follow from the transitions table.
 */
export function eventsEmitted(status: OrderStatus): string[] {
	const path: OrderStatus[] = [status];
	for (;;) {
		const before = ORDER_STATES.find(s => s !== path[0] && TRANSITIONS[s].includes(path[0]));
		if (!before) break;
		path.unshift(before);
	}
	return path.map(s => EVENT_OF[s]);
}

export async function inspectOrder(broker: ServiceBroker, id: string) {
	const order = await callAs<{ id: string; status: OrderStatus }>(broker, "admin", "orders.get", {
		id
	});
	const [payment, attempts, holds, notified, deadLettered] = await Promise.all([
		part(() => broker.call("payments.get", { orderId: id })),
		part(() => broker.call("payments.ledger", { orderId: id })),
		part(async () =>
			(await holdsOf(broker, { orderId: id })).map(h => ({
				productId: h.productId,
				quantity: h.quantity
			}))
		),
		part(
			async () =>
				(await broker.call("notifications.list", { orderId: id })) as Array<{
					eventId: string;
					kind: string;
					createdAt: string;
				}>
		),
		part(async () =>
			(await deadLetterStore(broker).list(1000)).filter(
				d => (d.payload as { orderId?: unknown } | null)?.orderId === id
			)
		)
	]);
	return {
		order,
		payment,
		attempts,
		holds,
		events: {
			emitted: eventsEmitted(order.status),
			notified: Array.isArray(notified)
				? notified.map(n => ({ eventId: n.eventId, kind: n.kind, at: n.createdAt }))
				: notified,
			deadLettered
		}
	};
}

export const orderCommand: ReplCommand = {
	command: "order <id>",
	description:
		"An order: the order, its payment and the provider's attempts, its stock holds, its events (emitted, notified, dead-lettered)",
	async action(broker: ServiceBroker, args: ReplArgs) {
		await report(() => inspectOrder(broker, String(args.id)));
	}
};
