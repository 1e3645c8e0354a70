/** What a customer is told: the message for each event the notifications service consumes. */
import type { Notification, NotificationKind } from "./port";

interface EventFields {
	eventId: string;
	orderId: string;
	userId: string;
	total?: number;
	amount?: number;
	currency?: string;
	items?: unknown[];
}

const money = (minor: number | undefined, currency = "USD") =>
	`${((minor ?? 0) / 100).toFixed(2)} ${currency}`;

/** The notification an event calls for. */
export const MESSAGES: Record<
	string,
	{ kind: NotificationKind; compose(e: EventFields): string[] }
> = {
	"orders.created": {
		kind: "order_confirmation",
		compose: e => [
			`Order ${e.orderId} received`,
			`We received your order of ${e.items?.length ?? 0} item(s), ${money(e.total, e.currency)}. Pay to confirm it.`
		]
	},
	"payments.succeeded": {
		kind: "payment_receipt",
		compose: e => [
			`Receipt for order ${e.orderId}`,
			`We charged ${money(e.amount, e.currency)} for order ${e.orderId}. Thank you!`
		]
	},
	"orders.shipped": {
		kind: "shipping_notice",
		compose: e => [`Order ${e.orderId} shipped`, `Your order ${e.orderId} is on its way.`]
	},
	"orders.refunded": {
		kind: "refund_notice",
		compose: e => [
			`Order ${e.orderId} refunded`,
			`We refunded ${money(e.total, e.currency)} for order ${e.orderId}.`
		]
	}
};

/** Builds the notification for `event`; throws on a payload without the ids it needs (a poison message). */
export function compose(event: string, payload: Partial<EventFields>): Notification {
	const message = MESSAGES[event];
	if (!message) throw new Error(`No notification for event ${event}`);
	const { eventId, orderId, userId } = payload;
	if (typeof eventId !== "string" || typeof orderId !== "string" || typeof userId !== "string") {
		throw new Error(`Event ${event} lacks eventId, orderId or userId`);
	}
	const [subject, body] = message.compose(payload as EventFields);
	return { eventId, kind: message.kind, userId, orderId, subject, body };
}
