/** What a notification is, and what a sender (mail, SMS, the built-in log) must do with one. */
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
