/**
 * The built-in sender (`NOTIFICATION_SENDER=log`): it sends nothing, since the service records every notification in
 * its store; it logs what it would send.
 */
import type { Notification, NotificationSender } from "./port";

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
