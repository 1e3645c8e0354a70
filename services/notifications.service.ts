/**
 * Notifications: a durable consumer of order and payment events (order confirmation, payment receipt, shipping and
 * refund notices). Every notification is recorded under its event's id (unique) before it goes to the sender, so a
 * redelivered event (at-least-once delivery, a consumer restarted mid-message) is never sent twice; a notifications
 * node that was down catches up on what happened meanwhile. The only writer of the `notifications` collection.
 */
import type {
	Context,
	Service,
	ServiceSchema,
	ServiceSettingSchema,
	ServiceBroker
} from "moleculer";
import { type AppConfig, configOf } from "../config";
import {
	MESSAGES,
	type Notification,
	type NotificationKind,
	type NotificationSender,
	compose,
	resolveNotificationSender
} from "../adapters/notifications";
import { bindToScope } from "../lib/request-context";
import { DbMixin, type DbServiceThis } from "../mixins/db.mixin";
import { isDuplicateKeyError } from "../adapters/store";
import type { AppAction, AppChannel, WithChannels } from "../types/moleculer-ext";

interface NotificationDoc extends Notification {
	_id: string;
	sender: string;
	status: "sending" | "sent";
	createdAt: string;
	sentAt?: string;
}

interface ListParams {
	orderId?: string;
	userId?: string;
	kind?: NotificationKind;
	limit: number;
}

interface NotificationsMethods {
	deliver(event: string, payload: Record<string, unknown>): Promise<void>;
}
interface NotificationsVars {
	sender: NotificationSender;
}
type NotificationsThis = Service & DbServiceThis & NotificationsMethods & NotificationsVars;

const KINDS = Object.values(MESSAGES).map(m => m.kind);

const actions = {
	/** Internal (operators, tests): recorded notifications, newest first. */
	list: {
		params: {
			$$strict: "remove",
			orderId: { type: "string", max: 64, optional: true },
			userId: { type: "string", max: 64, optional: true },
			kind: { type: "enum", values: KINDS, optional: true },
			limit: { type: "number", integer: true, min: 1, max: 1000, default: 100, convert: true }
		},
		async handler(this: NotificationsThis, ctx: Context<ListParams>) {
			const { limit, ...filters } = ctx.params;
			const query = Object.fromEntries(Object.entries(filters).filter(([, v]) => v !== undefined));
			const docs = (await this.adapter.find({
				query,
				sort: ["-createdAt"],
				limit
			})) as NotificationDoc[];
			return docs.map(({ _id, ...n }) => ({ id: _id, ...n }));
		}
	},

	/** Internal: how many notifications were recorded (of one kind). */
	count: {
		params: { $$strict: "remove", kind: { type: "enum", values: KINDS, optional: true } },
		async handler(this: NotificationsThis, ctx: Context<{ kind?: NotificationKind }>) {
			return this.adapter.count({ query: ctx.params.kind ? { kind: ctx.params.kind } : {} });
		}
	}
} satisfies Record<string, AppAction<NotificationsThis>>;

/** One consumer per event that calls for a notification, all in the `notifications` group. */
const channels = Object.fromEntries(
	Object.keys(MESSAGES).map(event => [
		event,
		{
			group: "notifications",
			async handler(this: NotificationsThis, ctx: Context<Record<string, unknown>>) {
				await this.deliver(event, ctx.params);
			}
		} satisfies AppChannel<NotificationsThis>
	])
);

export function createNotificationsService(
	cfg: AppConfig
): WithChannels<
	ServiceSchema<ServiceSettingSchema, NotificationsMethods, DbServiceThis & NotificationsVars>,
	NotificationsThis
> {
	return {
		name: "notifications",
		mixins: [
			DbMixin(cfg, {
				collection: "notifications",
				indexes: [
					{ fields: { eventId: 1 }, unique: true },
					{ fields: { orderId: 1 } },
					{ fields: { createdAt: -1 } }
				]
			})
		],
		actions,
		channels,

		methods: {
			/** Records, then sends; a duplicate of an event already sent changes nothing. */
			async deliver(this: NotificationsThis, event: string, payload: Record<string, unknown>) {
				const notification = compose(event, payload);
				bindToScope({ orderId: notification.orderId, userId: notification.userId });
				const id = `ntf_${notification.eventId}`;
				try {
					await this.adapter.insert({
						_id: id,
						...notification,
						sender: this.sender.name,
						status: "sending",
						createdAt: new Date().toISOString()
					});
				} catch (err) {
					if (!isDuplicateKeyError(err)) throw err;
					const existing = (await this.adapter.findById(id)) as NotificationDoc | null;
					if (existing?.status === "sent") return; // a redelivery: already sent
				}
				await this.sender.send(notification);
				await this.adapter.updateMany(
					{ _id: id },
					{ $set: { status: "sent", sentAt: new Date().toISOString() } }
				);
			}
		},

		created(this: NotificationsThis) {
			this.sender = resolveNotificationSender(cfg.notifications, this.logger);
		}
	};
}

/** Moleculer's loader calls this with the broker; the configuration comes with the broker's options. */
export default (broker: ServiceBroker) => createNotificationsService(configOf(broker));
