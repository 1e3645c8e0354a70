/**
 * The orders sweeper, safe on any number of orders nodes: it expires unpaid orders, rejects abandoned checkouts,
 * and finishes the stock movements (release, sell, return) and refunds a crash left half done. Every claim is a
 * conditional update and every movement is idempotent. Holds whose order never came to be are inventory's to expire.
 */
import type { Context } from "moleculer";
import type { AppConfig } from "../../config";
import {
	MOVEMENT_DONE,
	type StockMovement,
	discountOwed,
	stockOwed,
	statesOwing
} from "../../lib/order-state";
import { type OrderDoc, type OrdersThis, type SweepTimings, iso } from "./types";

/** Due orders the sweeper reads per query, and per sweep at most (the next sweep carries on). */
const SWEEP_BATCH = 200;
const SWEEP_MAX = 5000;

export function sweepTimings(cfg: AppConfig): SweepTimings {
	return {
		abandonedAfterMs: cfg.requestTimeout * 3,
		refundStaleMs: cfg.payments.providerTimeout * 2
	};
}

/**
 * When the sweeper next has something to do for this order, in ms (`now` when it is due already), or null when
 * nothing is left: an abandoned checkout to reject, an unpaid order to expire, an interrupted refund to finish, or the
 * stock movement its state owes (lib/order-state.ts), or the discount redemption it owes back, that the request which
 * changed it did not get to record.
 */
export function workDue(doc: OrderDoc, now: number, t: SweepTimings): number | null {
	if (doc.status === "reserving") return Date.parse(doc.createdAt) + t.abandonedAfterMs;
	if (doc.status === "pending_payment") return Date.parse(doc.expiresAt);
	if (doc.status === "paid" && doc.refundRequested)
		return Date.parse(doc.updatedAt) + t.refundStaleMs;
	return stockOwed(doc) === "none" && !discountOwed(doc) ? null : now;
}

/** The part of an update that puts `doc`'s sweep marker where `workDue` says (or takes it away). */
export function sweepMarker(
	doc: OrderDoc,
	now: number,
	t: SweepTimings
): { $set?: { sweepAt: string }; $unset?: { sweepAt: true } } {
	const due = workDue(doc, now, t);
	return due === null
		? { $unset: { sweepAt: true } }
		: { $set: { sweepAt: iso(Math.max(due, now)) } };
}

/**
 * Does the work that is due (`sweepAt` passed). It reads only orders whose marker is due, so its cost follows the
 * work, not the orders stored.
 */
export async function sweep(svc: OrdersThis): Promise<void> {
	// Nothing to do until the stock owner is there (e.g. while the cluster starts).
	if (svc.sweeping || !svc.broker.registry.hasService("inventory", null as never)) return;
	svc.sweeping = true;
	const ctx = svc.broker.ContextFactory.create(svc.broker, null as never, {}, {}) as Context;
	try {
		if (!svc.legacyMarked) {
			const marked = await markLegacyOrders(svc);
			if (marked > 0) svc.logger.info(`Gave ${marked} orders stored before sweep markers theirs`);
			svc.legacyMarked = true;
		}
		const now = Date.now();
		// Each order is looked at once a sweep: one the work left due again (a failed call) waits for the next.
		const seen = new Set<string>();
		let failed = 0;
		let firstError: unknown;
		for (let read = 0; read < SWEEP_MAX; read += SWEEP_BATCH) {
			const due = (
				(await svc.adapter.find({
					query: { sweepAt: { $lte: iso(now) } },
					sort: ["sweepAt"],
					limit: SWEEP_BATCH + seen.size
				})) as OrderDoc[]
			).filter(d => !seen.has(d._id));
			let failedHere = 0;
			for (const doc of due) {
				seen.add(doc._id);
				try {
					await sweepOrder(svc, ctx, doc, now);
				} catch (err) {
					failedHere++;
					firstError ??= err;
				}
			}
			failed += failedHere;
			// A batch that all failed (a collaborator down or too slow): the next sweep tries again.
			if (due.length < SWEEP_BATCH || failedHere === due.length) break;
			await new Promise(resolve => setImmediate(resolve)); // let requests in between batches
		}
		if (failed > 0) {
			svc.logger.warn(`${failed} due orders not finished; the next sweep retries them`, firstError);
		}
	} catch (err) {
		svc.logger.warn("Order sweep did not finish; the next one carries on", err);
	} finally {
		svc.sweeping = false;
	}
}

/** The due work of one order (see `workDue`); a marker that is early or stale is moved or taken away. */
export async function sweepOrder(
	svc: OrdersThis,
	ctx: Context,
	doc: OrderDoc,
	now: number
): Promise<void> {
	const due = workDue(doc, now, svc.timings);
	if (due === null || due > now) {
		await svc.adapter.updateMany(
			{ _id: doc._id, sweepAt: doc.sweepAt },
			sweepMarker(doc, now, svc.timings)
		);
		return;
	}
	if (doc.status === "paid" && doc.refundRequested) {
		// Interrupted: the order was marked, the refund or the move to refunded did not happen.
		if (!svc.broker.registry.hasService("payments", null as never)) return;
		await svc.refundPaid(ctx, doc, "cancelled by the customer");
		return;
	}
	let settled = doc;
	if (doc.status === "reserving" || doc.status === "pending_payment") {
		// Abandoned (the node running the checkout died), or unpaid past its time: its stock goes back. The
		// attempt's `createdAt` keeps a retry that started the checkout over from being rejected.
		const to = doc.status === "reserving" ? "rejected" : "expired";
		const guard = to === "rejected" ? { createdAt: doc.createdAt } : {};
		try {
			settled = await svc.transition(ctx, doc, to, {}, guard);
		} catch (err) {
			if ((err as { type?: string }).type === "INVALID_ORDER_STATE") return; // changed meanwhile
			throw err;
		}
		// An abandoned checkout may have taken the cart's lines: they go back (a no-op when it did not).
		if (to === "rejected" && svc.broker.registry.hasService("carts", null as never)) {
			await ctx
				.call("carts.giveBack", { userId: doc.userId, orderId: doc._id })
				.catch(err => svc.logger.warn("Could not give a cart back", err));
		}
	}
	await svc.settleStock(ctx, settled);
}

const MOVEMENTS = Object.keys(MOVEMENT_DONE) as Array<Exclude<StockMovement, "none">>;

/**
 * Orders stored before sweep markers existed have none: those with work left (the cases of `workDue`) get one that
 * is due now, and the sweeper then moves it to when the work really is due. One pass, once per process.
 */
export async function markLegacyOrders(svc: OrdersThis): Promise<number> {
	const unmarked = { sweepAt: { $exists: false } };
	const queries = [
		{ status: { $in: ["reserving", "pending_payment"] } },
		{ status: "paid", refundRequested: true },
		...MOVEMENTS.map(m => ({ status: { $in: statesOwing(m) }, [MOVEMENT_DONE[m]]: { $ne: true } }))
	];
	const sweepAt = iso(Date.now());
	let marked = 0;
	for (const query of queries) {
		marked += await svc.adapter.updateMany({ ...query, ...unmarked }, { $set: { sweepAt } });
	}
	return marked;
}
