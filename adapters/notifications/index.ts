/**
 * What a customer is told, and how it leaves: the message for each event the notifications service consumes, and
 * the sender port. The built-in sender (`NOTIFICATION_SENDER=log`) sends nothing: the service records every
 * notification in its store and the sender logs it. A mail or SMS sender implements `NotificationSender`.
 */
import type { AppConfig } from "../../config";

export type NotificationKind =
	"order_confirmation" | "payment_receipt" | "shipping_notice" | "refund_notice";

export interface Notification {
	eventId: string;
	kind: NotificationKind;
	userId: string;
	orderId: string;
	subject: string;
	body: string;
}

export interface NotificationSender {
	readonly name: string;
	send(notification: Notification): Promise<void>;
}

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

/** The built-in sender: logs what it would send. */
export class LogSender implements NotificationSender {
	readonly name = "log";
	constructor(private readonly logger: { info(...args: unknown[]): void }) {}

	async send(n: Notification): Promise<void> {
		this.logger.info(`Notification (${n.kind}) for user ${n.userId}: ${n.subject}`, {
			orderId: n.orderId,
			eventId: n.eventId
		});
	}
}

export function makeSender(
	cfg: AppConfig["notifications"],
	logger: { info(...args: unknown[]): void }
): NotificationSender {
	switch (cfg.sender) {
		case "log":
			return new LogSender(logger);
	}
}
