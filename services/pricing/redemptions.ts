/**
 * Redemptions of discount codes, taken at checkout and given back when the order is cancelled, expires or is
 * rejected, each idempotent per order on any number of nodes (as inventory's holds.ts). Two records move: the
 * customer's record for the code (`<codeId>:<userId>`: its `count` and the order's state under `orders.<orderId>`)
 * and the code's `used` counter, whose write carries a marker `ops.<orderId>` telling a retry whether it landed:
 *
 *   take:    customer `taking` (+1, within perCustomerLimit) → code used +1 with `ops.<id>: take` (within
 *            usageLimit) → customer `taken` → marker removed
 *   release: customer `releasing` (from taken) or `dropping` (from taking) → code used −1 with `ops.<id>: release`
 *            (a dropping take only if its marker says it landed) → customer record's order removed (−1) → marker removed
 *
 * A take that finds its customer state gone or changed after its code write (a release ran meanwhile) undoes its own
 * code write, so a redemption is never counted without an order to give it back.
 */
import { isDuplicateKeyError } from "../../adapters/store";
import type { DbAdapter } from "../../adapters/store";

export type Refused = "exhausted" | "customer_limit" | "unknown";

export interface CodeDoc {
	_id: string;
	code: string;
	usageLimit?: number;
	perCustomerLimit?: number;
	used: number;
	ops?: Record<string, "take" | "release">;
	deleted?: boolean;
}

type OrderState = "taking" | "taken" | "releasing" | "dropping";

export interface CustomerDoc {
	_id: string;
	codeId: string;
	userId: string;
	count: number;
	orders: Record<string, OrderState>;
}

interface Stores {
	codes: DbAdapter;
	customers: DbAdapter;
}

const customerId = (codeId: string, userId: string) => `${codeId}:${userId}`;

/** Counts the order against the customer's limit, once: its state after, or the refusal. */
async function takeCustomer(
	s: Stores,
	code: CodeDoc,
	userId: string,
	orderId: string
): Promise<OrderState | "customer_limit"> {
	const _id = customerId(code._id, userId);
	const mark = `orders.${orderId}`;
	const limit = code.perCustomerLimit;
	for (let attempt = 0; attempt < 5; attempt++) {
		const taken = await s.customers.updateMany(
			{ _id, [mark]: { $exists: false }, ...(limit ? { count: { $lte: limit - 1 } } : {}) },
			{ $inc: { count: 1 }, $set: { [mark]: "taking" } }
		);
		if (taken === 1) return "taking";
		const doc = (await s.customers.findById(_id)) as CustomerDoc | null;
		if (doc?.orders?.[orderId]) return doc.orders[orderId];
		if (doc) return "customer_limit";
		try {
			await s.customers.insert({
				_id,
				codeId: code._id,
				userId,
				count: 1,
				orders: { [orderId]: "taking" }
			} satisfies CustomerDoc);
			return "taking";
		} catch (err) {
			if (!isDuplicateKeyError(err)) throw err; // another order of this customer came first
		}
	}
	return "customer_limit";
}

/** Removes the order from the customer's record (and its count) if it is in state `from`. */
function dropCustomer(s: Stores, _id: string, orderId: string, from: OrderState) {
	return s.customers.updateMany(
		{ _id, [`orders.${orderId}`]: from },
		{ $inc: { count: -1 }, $unset: { [`orders.${orderId}`]: true } }
	);
}

/** One use of the code, taken back once: `ops.<orderId>` goes from `take` to `release`. */
function undoUse(s: Stores, codeId: string, orderId: string, onlyIfLanded: boolean) {
	const op = `ops.${orderId}`;
	return s.codes.updateMany(
		{ _id: codeId, [op]: onlyIfLanded ? "take" : { $ne: "release" } },
		{ $inc: { used: -1 }, $set: { [op]: "release" } }
	);
}

/** Takes one use of `code` for the order, within both limits; idempotent per order. */
export async function takeRedemption(
	s: Stores,
	code: CodeDoc,
	userId: string,
	orderId: string
): Promise<{ ok: true } | { ok: false; reason: Refused }> {
	const cid = customerId(code._id, userId);
	const op = `ops.${orderId}`;
	const state = await takeCustomer(s, code, userId, orderId);
	if (state === "customer_limit") return { ok: false, reason: "customer_limit" };
	if (state === "taken") return { ok: true };
	if (state !== "taking") return { ok: false, reason: "exhausted" }; // being given back
	const used = await s.codes.updateMany(
		{
			_id: code._id,
			deleted: { $ne: true },
			[op]: { $exists: false },
			...(code.usageLimit ? { used: { $lte: code.usageLimit - 1 } } : {})
		},
		{ $inc: { used: 1 }, $set: { [op]: "take" } }
	);
	if (used !== 1) {
		const now = (await s.codes.findById(code._id)) as CodeDoc | null;
		if (now?.ops?.[orderId] !== "take") {
			await dropCustomer(s, cid, orderId, "taking");
			return { ok: false, reason: now && !now.deleted ? "exhausted" : "unknown" };
		}
	}
	const confirmed = await s.customers.updateMany(
		{ _id: cid, [`orders.${orderId}`]: "taking" },
		{ $set: { [`orders.${orderId}`]: "taken" } }
	);
	if (confirmed !== 1) {
		// A release began meanwhile and may not have seen the use: take it back (once, whoever comes first).
		await undoUse(s, code._id, orderId, true);
		return { ok: false, reason: "exhausted" };
	}
	await s.codes.updateMany({ _id: code._id, [op]: "take" }, { $unset: { [op]: true } });
	return { ok: true };
}

/** Gives the order's use of the code back, once, whatever state a take or an earlier release left. */
export async function releaseRedemption(
	s: Stores,
	codeId: string,
	userId: string,
	orderId: string
): Promise<{ released: boolean }> {
	const cid = customerId(codeId, userId);
	const mark = `orders.${orderId}`;
	const op = `ops.${orderId}`;
	const doc = (await s.customers.findById(cid)) as CustomerDoc | null;
	let state = doc?.orders?.[orderId];
	if (!state) {
		await s.codes.updateMany({ _id: codeId, [op]: "release" }, { $unset: { [op]: true } });
		return { released: false };
	}
	if (state === "taken" || state === "taking") {
		const next = state === "taken" ? "releasing" : "dropping";
		const flipped = await s.customers.updateMany(
			{ _id: cid, [mark]: state },
			{ $set: { [mark]: next } }
		);
		if (flipped !== 1) return releaseRedemption(s, codeId, userId, orderId);
		state = next;
	}
	// A dropping take counted a use only if its marker says so; a released one always did.
	await undoUse(s, codeId, orderId, state === "dropping");
	await dropCustomer(s, cid, orderId, state);
	await s.codes.updateMany({ _id: codeId, [op]: "release" }, { $unset: { [op]: true } });
	return { released: true };
}
