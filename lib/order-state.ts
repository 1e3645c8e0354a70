/**
 * The order state machine as data (API.md "Orders"): every state, the internal ones included, the one table of
 * allowed transitions, the event a client-visible state emits, and the stock movement each state owes. The orders
 * service changes a status only through its `transition`, which checks `TRANSITIONS` and writes with the current
 * status in the update filter, so two racing transitions cannot both win.
 */
import { ConflictError } from "./errors";

/** The states a client sees, in answers, lists and events. */
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
 * States an order passes through before a client ever sees it: `reserving` while stock is being reserved,
 * `rejected` when that failed or was abandoned. They never appear in answers, lists or events.
 */
export const INTERNAL_STATES = ["reserving", "rejected"] as const;

export type InternalStatus = (typeof INTERNAL_STATES)[number];

export type AnyStatus = OrderStatus | InternalStatus;

export const ALL_STATES: readonly AnyStatus[] = [...INTERNAL_STATES, ...ORDER_STATES];

export const TRANSITIONS: Readonly<Record<AnyStatus, readonly AnyStatus[]>> = {
	// A retry under the same Idempotency-Key starts a failed or abandoned attempt over (reserving again).
	reserving: ["reserving", "pending_payment", "rejected"],
	rejected: ["reserving"],
	pending_payment: ["paid", "cancelled", "expired"],
	paid: ["shipped", "refunded"],
	shipped: ["delivered"],
	delivered: [],
	cancelled: [],
	expired: [],
	refunded: []
};

/** The event emitted when an order enters a state; internal states emit none. */
export const EVENT_OF: Readonly<Record<OrderStatus, string>> = {
	pending_payment: "orders.created",
	paid: "orders.paid",
	shipped: "orders.shipped",
	delivered: "orders.delivered",
	cancelled: "orders.cancelled",
	expired: "orders.expired",
	refunded: "orders.refunded"
};

/**
 * What an order in a state owes inventory: `release` gives reserved units back, `commit` sells them, `return` puts
 * sold units back on the shelf (selling them first if that never happened, so exactly what was sold comes back).
 * `none` while the units are still rightly held or not yet reserved.
 */
export type StockMovement = "none" | "release" | "commit" | "return";

export const STOCK_OWED: Readonly<Record<AnyStatus, StockMovement>> = {
	reserving: "none",
	pending_payment: "none",
	paid: "commit",
	shipped: "commit",
	delivered: "commit",
	refunded: "return",
	cancelled: "release",
	expired: "release",
	rejected: "release"
};

/** The flag an order carries once its movement is done (and recorded), so it is owed no more. */
export const MOVEMENT_DONE = {
	release: "stockReleased",
	commit: "stockCommitted",
	return: "stockReturned"
} as const satisfies Record<Exclude<StockMovement, "none">, string>;

export type StockFlags = { [F in (typeof MOVEMENT_DONE)[keyof typeof MOVEMENT_DONE]]?: boolean };

export function isVisible(status: AnyStatus): status is OrderStatus {
	return (ORDER_STATES as readonly string[]).includes(status);
}

export function canTransition(from: AnyStatus, to: AnyStatus): boolean {
	return TRANSITIONS[from]?.includes(to) ?? false;
}

/** Throws 409 INVALID_ORDER_STATE unless `from` → `to` is in the table. */
export function assertTransition(from: AnyStatus, to: AnyStatus): void {
	if (!canTransition(from, to)) {
		throw new ConflictError("INVALID_ORDER_STATE", `An order that is ${from} cannot become ${to}`, {
			status: from,
			requested: to
		});
	}
}

/** The movement an order still owes: its state's, unless the flag says it was done. */
export function stockOwed(order: { status: AnyStatus } & StockFlags): StockMovement {
	const movement = STOCK_OWED[order.status] ?? "none";
	return movement !== "none" && !order[MOVEMENT_DONE[movement]] ? movement : "none";
}

/** The states whose orders owe `movement` until it is done. */
export function statesOwing(movement: Exclude<StockMovement, "none">): AnyStatus[] {
	return ALL_STATES.filter(s => STOCK_OWED[s] === movement);
}

/**
 * The states whose orders give their discount code's redemption back: every one whose stock goes back (released or
 * returned). The order carries `discountReleased` once pricing has it back, so it is given back once.
 */
export const DISCOUNT_RETURNED: Readonly<Record<AnyStatus, boolean>> = {
	reserving: false,
	pending_payment: false,
	paid: false,
	shipped: false,
	delivered: false,
	refunded: true,
	cancelled: true,
	expired: true,
	rejected: true
};

/** Whether an order still owes its code's redemption back. */
export function discountOwed(order: {
	status: AnyStatus;
	discount?: unknown;
	discountReleased?: boolean;
}): boolean {
	return Boolean(order.discount) && DISCOUNT_RETURNED[order.status] && !order.discountReleased;
}
