/**
 * The order state tables, spelled out here a second time on purpose: a change to any entry of lib/order-state.ts
 * (a transition allowed or refused, the stock a state owes) fails one of these tests and has to be made twice.
 */
import {
	ALL_STATES,
	type AnyStatus,
	EVENT_OF,
	ORDER_STATES,
	STOCK_OWED,
	type StockMovement,
	assertTransition,
	canTransition,
	isVisible,
	statesOwing,
	stockOwed
} from "../../../lib/order-state";

const ALLOWED: Record<AnyStatus, AnyStatus[]> = {
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

const OWED: Record<AnyStatus, StockMovement> = {
	reserving: "none",
	rejected: "release",
	pending_payment: "none",
	paid: "commit",
	shipped: "commit",
	delivered: "commit",
	cancelled: "release",
	expired: "release",
	refunded: "return"
};

const pairs = ALL_STATES.flatMap(from => ALL_STATES.map(to => [from, to] as const));

describe("order-state states", () => {
	it("has the seven client states and the two internal ones, nothing else", () => {
		expect([...ORDER_STATES].sort()).toEqual(
			["cancelled", "delivered", "expired", "paid", "pending_payment", "refunded", "shipped"].sort()
		);
		expect([...ALL_STATES].sort()).toEqual(Object.keys(ALLOWED).sort());
		expect(ALL_STATES.filter(s => !isVisible(s)).sort()).toEqual(["rejected", "reserving"]);
	});

	it("names an event for every client state and none for the internal ones", () => {
		expect(EVENT_OF).toEqual({
			pending_payment: "orders.created",
			paid: "orders.paid",
			shipped: "orders.shipped",
			delivered: "orders.delivered",
			cancelled: "orders.cancelled",
			expired: "orders.expired",
			refunded: "orders.refunded"
		});
	});
});

describe("order-state transitions", () => {
	it.each(pairs.filter(([from, to]) => ALLOWED[from].includes(to)))(
		"allows %s → %s",
		(from, to) => {
			expect(canTransition(from, to)).toBe(true);
			expect(() => assertTransition(from, to)).not.toThrow();
		}
	);

	it.each(pairs.filter(([from, to]) => !ALLOWED[from].includes(to)))(
		"refuses %s → %s with 409 INVALID_ORDER_STATE",
		(from, to) => {
			expect(canTransition(from, to)).toBe(false);
			expect(() => assertTransition(from, to)).toThrow(
				expect.objectContaining({
					code: 409,
					type: "INVALID_ORDER_STATE",
					data: { status: from, requested: to }
				})
			);
		}
	);

	it("refuses a state it does not know", () => {
		expect(canTransition("lost" as AnyStatus, "paid")).toBe(false);
	});
});

describe("order-state owed stock movement", () => {
	it.each(ALL_STATES.map(s => [s, OWED[s]] as const))("%s owes %s", (status, movement) => {
		expect(STOCK_OWED[status]).toBe(movement);
		expect(stockOwed({ status })).toBe(movement);
	});

	it("owes nothing once the movement's flag is set, and only that movement's flag counts", () => {
		const flags = { release: "stockReleased", commit: "stockCommitted", return: "stockReturned" };
		for (const status of ALL_STATES) {
			const movement = OWED[status];
			if (movement === "none") continue;
			expect(stockOwed({ status, [flags[movement]]: true })).toBe("none");
			expect(stockOwed({ status, [flags[movement]]: false })).toBe(movement);
			const others = Object.entries(flags).filter(([m]) => m !== movement);
			const otherFlags = Object.fromEntries(others.map(([, flag]) => [flag, true]));
			expect(stockOwed({ status, ...otherFlags })).toBe(movement);
		}
	});

	it("lists the states owing each movement", () => {
		expect(statesOwing("release").sort()).toEqual(["cancelled", "expired", "rejected"]);
		expect(statesOwing("commit").sort()).toEqual(["delivered", "paid", "shipped"]);
		expect(statesOwing("return")).toEqual(["refunded"]);
	});
});
