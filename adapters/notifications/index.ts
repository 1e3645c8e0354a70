/**
 * The notification sender port (port.ts), the messages (messages.ts) and the sender this configuration picks. The
 * built-in log sender is the only one; a mail or SMS sender implements `NotificationSender` and gets a case here.
 */
import type { AppConfig } from "../../config";
import { LogSender } from "./log-sender";
import type { NotificationSender } from "./port";

export * from "./port";
export { MESSAGES, compose } from "./messages";
export { LogSender } from "./log-sender";

/** The sender `NOTIFICATION_SENDER` names. */
export function resolveNotificationSender(
	cfg: AppConfig["notifications"],
	logger: { info(...args: unknown[]): void }
): NotificationSender {
	switch (cfg.sender) {
		case "log":
			return new LogSender(logger);
	}
}
