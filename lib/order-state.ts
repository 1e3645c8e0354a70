/**
 * The order state machine as data (API.md "Orders"): the states, the one table of allowed transitions, and the
 * event each transition emits. Every status change goes through `orders.transition`, which checks this table and
 * writes with the expected current status in the update filter, so two racing transitions cannot both win.
 */
import { ConflictError } from "./errors";

export const ORDER_STATES = [
	"pending_payment",
	"paid",
	"shipped",
	"delivered",
	"cancelled",
	"expired",
	"refunded"
] as const;

export type OrderStatus = (typeof ORDER_STATES)[number];

/**
 * Internal states an order passes through before a client ever sees it: `reserving` while stock is being reserved,
 * `rejected` when that failed. They never appear in answers or lists.
 */
export type InternalStatus = "reserving" | "rejected";

export const TRANSITIONS: Readonly<Record<OrderStatus, readonly OrderStatus[]>> = {
	pending_payment: ["paid", "cancelled", "expired"],
	paid: ["shipped", "refunded"],
	shipped: ["delivered"],
	delivered: [],
	cancelled: [],
	expired: [],
	refunded: []
};

/** The event emitted when an order enters a state. */
export const EVENT_OF: Readonly<Record<OrderStatus, string>> = {
	pending_payment: "orders.created",
	paid: "orders.paid",
	shipped: "orders.shipped",
	delivered: "orders.delivered",
	cancelled: "orders.cancelled",
	expired: "orders.expired",
	refunded: "orders.refunded"
};

export function canTransition(from: OrderStatus, to: OrderStatus): boolean {
	return TRANSITIONS[from]?.includes(to) ?? false;
}

/** Throws 409 INVALID_ORDER_STATE unless `from` → `to` is in the table. */
export function assertTransition(from: OrderStatus, to: OrderStatus): void {
	if (!canTransition(from, to)) {
		throw new ConflictError("INVALID_ORDER_STATE", `An order that is ${from} cannot become ${to}`, {
			status: from,
			requested: to
		});
	}
}
