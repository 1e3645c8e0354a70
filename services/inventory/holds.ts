/**
 * Holds: the units reserved for an order, one record per order and product, so that reserving and selling cost the
 * same whether a product has no open hold or fifty thousand. The product's stock document keeps only counters, its
 * sales' terms and a marker per operation under way (`ops.<orderId>`): the stock write and the hold record are two
 * documents, and the marker written with the counters tells a retry, or the sweep after a crash, whether the counters
 * moved. Every step is a conditional update, so each operation is idempotent per order on any number of nodes:
 *
 *   take:    hold `taking` → [customer's sale count] → stock counters + marker → hold `held` → marker removed
 *   release: hold `releasing` → stock counters + marker → customer's count back → hold removed → marker removed
 *   sell:    hold `selling` → stock counters + marker → hold removed → marker removed
 *
 * Inventory owns the holds' lifecycle: a held hold not released or sold by its expiry plus HOLD_GRACE is released
 * here (orders normally releases it at the order's expiry), and a hold a crash left between steps is finished.
 */
import type { AppConfig } from "../../config";
import { isDuplicateKeyError } from "../../adapters/store";
import { METRIC } from "../../lib/metric-names";
import {
	type CustomerDoc,
	type HeldLine,
	type HoldDoc,
	type InventoryThis,
	type SaleTerms,
	type StockDoc,
	type StockLine,
	customersOf,
	holdsOf,
	isLive,
	isUpcoming
} from "./types";

/** Why a line could not be taken; the service turns it into the contract's 409. */
export type Refusal =
	| {
			reason: "out_of_stock";
			productId: string;
			requested: number;
			available: number;
			saleId?: string;
	  }
	| {
			reason: "limit_exceeded";
			productId: string;
			saleId: string;
			perCustomerLimit: number;
			held: number;
	  }
	| { reason: "not_started"; productId: string; saleId: string; startsAt: string };

type Taken = { held: HeldLine; expiresAt: number } | { refused: Refusal };

/** Holds the sweep finishes or expires per pass, and per query. */
const SWEEP_MAX = 5000;
const SWEEP_BATCH = 500;

export const holdId = (orderId: string, productId: string) => `${orderId}:${productId}`;
const customerId = (saleId: string, productId: string, userId: string) =>
	`${saleId}:${productId}:${userId}`;
const nowIso = () => new Date().toISOString();

/** A call still running after this long is dead: the sweep may then finish what it left. */
export const abandonedAfter = (cfg: AppConfig) => cfg.requestTimeout * 3;

/** The live sale of a product, or the upcoming one that keeps it back until it starts. */
export function saleOf(
	doc: StockDoc,
	now: number
): { id: string; terms: SaleTerms; live: boolean } | null {
	let upcoming: { id: string; terms: SaleTerms; live: boolean } | null = null;
	for (const [id, terms] of Object.entries(doc.sales ?? {})) {
		if (isLive(terms, now)) return { id, terms, live: true };
		if (isUpcoming(terms, now) && (!upcoming || terms.startsAt < upcoming.terms.startsAt)) {
			upcoming = { id, terms, live: false };
		}
	}
	return upcoming;
}

/**
 * What a buyer can take of this product now: its stock, and within a live sale no more than the sale has left; null
 * while it is kept back for a sale that has not started (not sold out: it will sell).
 */
export function sellable(doc: StockDoc, now: number): number | null {
	const sale = saleOf(doc, now);
	if (!sale) return doc.available;
	return sale.live ? Math.min(doc.available, sale.terms.left) : null;
}

/** The counters a line moves in the stock document, with its sale's when it has one. */
function counters(
	quantity: number,
	saleId: string | undefined,
	moves: Record<string, number>,
	saleMoves: Record<string, number>
): Record<string, number> {
	const inc: Record<string, number> = {};
	for (const [field, sign] of Object.entries(moves)) inc[field] = sign * quantity;
	if (saleId) {
		for (const [field, sign] of Object.entries(saleMoves))
			inc[`sales.${saleId}.${field}`] = sign * quantity;
	}
	return inc;
}

/** Takes the marker of a finished operation off the product's stock (a no-op when another operation replaced it). */
async function clearMarker(
	svc: InventoryThis,
	productId: string,
	orderId: string,
	kind: "take" | "release" | "sell"
): Promise<void> {
	await svc.adapter.updateMany(
		{ productId, [`ops.${orderId}.${kind}`]: { $exists: true } },
		{ $unset: { [`ops.${orderId}`]: true } }
	);
}

/** Counts the units against the customer's limit for this sale item, once per order; false when over the limit. */
async function takeAllowance(
	svc: InventoryThis,
	hold: HoldDoc,
	saleId: string,
	limit: number
): Promise<{ ok: true } | { ok: false; held: number }> {
	const customers = customersOf(svc);
	const _id = customerId(saleId, hold.productId, hold.userId!);
	const order = `orders.${hold.orderId}`;
	for (let attempt = 0; attempt < 3; attempt++) {
		const taken = await customers.updateMany(
			{ _id, units: { $lte: limit - hold.quantity }, [order]: { $exists: false } },
			{ $inc: { units: hold.quantity }, $set: { [order]: hold.quantity } }
		);
		if (taken === 1) return { ok: true };
		const doc = (await customers.findById(_id)) as CustomerDoc | null;
		if (doc?.orders?.[hold.orderId] !== undefined) return { ok: true }; // an earlier try of this order
		if (doc) return { ok: false, held: doc.units };
		if (hold.quantity > limit) return { ok: false, held: 0 };
		try {
			await customers.insert({
				_id,
				saleId,
				productId: hold.productId,
				userId: hold.userId!,
				units: hold.quantity,
				orders: { [hold.orderId]: hold.quantity }
			} satisfies CustomerDoc);
			return { ok: true };
		} catch (err) {
			if (!isDuplicateKeyError(err)) throw err; // another order of this customer came first: count again
		}
	}
	return { ok: false, held: limit };
}

/** Gives an order's units back to the customer's count for a sale item; idempotent. */
async function giveAllowanceBack(svc: InventoryThis, hold: HoldDoc, saleId: string): Promise<void> {
	if (!hold.userId) return;
	await customersOf(svc).updateMany(
		{
			_id: customerId(saleId, hold.productId, hold.userId),
			[`orders.${hold.orderId}`]: hold.quantity
		},
		{ $inc: { units: -hold.quantity }, $unset: { [`orders.${hold.orderId}`]: true } }
	);
}

/** Drops a `taking` hold whose take did not land, with the customer's count it may have taken. */
async function dropTaking(svc: InventoryThis, hold: HoldDoc, saleId?: string): Promise<void> {
	if (saleId) await giveAllowanceBack(svc, hold, saleId);
	await holdsOf(svc).removeMany({ _id: hold._id, state: "taking" });
}

/** The `taking` record of a line, new or left by an earlier try; null when the order already holds the line. */
async function beginTake(
	svc: InventoryThis,
	cfg: AppConfig,
	orderId: string,
	userId: string | undefined,
	line: StockLine,
	now: number
): Promise<{ hold: HoldDoc; done?: HeldLine & { expiresAt: number } } | { busy: true }> {
	const holds = holdsOf(svc);
	const hold: HoldDoc = {
		_id: holdId(orderId, line.productId),
		orderId,
		productId: line.productId,
		quantity: line.quantity,
		state: "taking",
		...(userId ? { userId } : {}),
		expiresAt: now + abandonedAfter(cfg),
		createdAt: now
	};
	try {
		await holds.insert(hold);
		return { hold };
	} catch (err) {
		if (!isDuplicateKeyError(err)) throw err;
	}
	const existing = (await holds.findById(hold._id)) as HoldDoc | null;
	if (!existing) return beginTake(svc, cfg, orderId, userId, line, now); // removed meanwhile
	if (existing.state === "taking" && existing.quantity === line.quantity) return { hold: existing };
	if (
		(existing.state === "held" || existing.state === "selling") &&
		existing.quantity === line.quantity
	) {
		return {
			hold: existing,
			done: {
				productId: existing.productId,
				quantity: existing.quantity,
				...(existing.saleId ? { saleId: existing.saleId, unitPrice: existing.unitPrice } : {}),
				expiresAt: existing.expiresAt - cfg.inventory.holdGrace
			}
		};
	}
	return { busy: true };
}

/**
 * Takes one line for an order: its stock, and within a live sale the sale's units and the customer's allowance. The
 * hold's expiry is the order's (`ttlMs`, or the sale's shorter hold time) plus HOLD_GRACE.
 */
export async function takeLine(
	svc: InventoryThis,
	cfg: AppConfig,
	orderId: string,
	userId: string | undefined,
	line: StockLine,
	ttlMs: number
): Promise<Taken> {
	const now = Date.now();
	const begun = await beginTake(svc, cfg, orderId, userId, line, now);
	const doc = await svc.findStock(line.productId);
	const short = (saleId?: string): Taken => ({
		refused: {
			reason: "out_of_stock",
			productId: line.productId,
			requested: line.quantity,
			available: doc ? (sellable(doc, now) ?? 0) : 0,
			...(saleId ? { saleId } : {})
		}
	});
	if ("busy" in begun) return short();
	const { hold } = begun;
	if (begun.done) return { held: begun.done, expiresAt: begun.done.expiresAt };
	if (!doc) {
		await dropTaking(svc, hold);
		return short();
	}
	const sale = saleOf(doc, now);
	if (sale && !sale.live) {
		await dropTaking(svc, hold);
		return {
			refused: {
				reason: "not_started",
				productId: line.productId,
				saleId: sale.id,
				startsAt: new Date(sale.terms.startsAt).toISOString()
			}
		};
	}
	const saleId = sale?.id;
	if (sale) {
		if (!hold.userId) throw new Error("A sale line needs the buyer's userId");
		const allowance = await takeAllowance(svc, hold, sale.id, sale.terms.perCustomerLimit);
		if (!allowance.ok) {
			await dropTaking(svc, hold);
			return {
				refused: {
					reason: "limit_exceeded",
					productId: line.productId,
					saleId: sale.id,
					perCustomerLimit: sale.terms.perCustomerLimit,
					held: allowance.held
				}
			};
		}
	}
	const marker = `ops.${orderId}`;
	const q = line.quantity;
	const landed =
		(await svc.adapter.updateMany(
			{
				productId: line.productId,
				available: { $gte: q },
				[`${marker}.take`]: { $exists: false },
				...(saleId
					? {
							[`sales.${saleId}.left`]: { $gte: q },
							[`sales.${saleId}.startsAt`]: { $lte: now },
							[`sales.${saleId}.endsAt`]: { $gt: now }
						}
					: {})
			},
			{
				$inc: counters(q, saleId, { available: -1, reserved: 1 }, { left: -1, held: 1 }),
				$set: {
					[marker]: { take: q, at: now, ...(saleId ? { sale: saleId } : {}) },
					updatedAt: nowIso()
				}
			}
		)) === 1 ||
		// An earlier try of this order moved the counters and stopped before recording the hold.
		(await svc.adapter.count({ query: { productId: line.productId, [`${marker}.take`]: q } })) ===
			1;
	if (!landed) {
		await dropTaking(svc, hold, saleId);
		return short(saleId);
	}
	const expiresAt = now + Math.min(ttlMs, sale ? sale.terms.holdMs : ttlMs);
	const unitPrice = sale?.terms.price;
	await holdsOf(svc).updateMany(
		{ _id: hold._id, state: "taking" },
		{
			$set: {
				state: "held",
				expiresAt: expiresAt + cfg.inventory.holdGrace,
				...(saleId ? { saleId, unitPrice } : {})
			}
		}
	);
	await clearMarker(svc, line.productId, orderId, "take");
	return {
		held: { productId: line.productId, quantity: q, ...(saleId ? { saleId, unitPrice } : {}) },
		expiresAt
	};
}

/**
 * A `taking` hold whose call is over (a crash, or a release that came first): held when its counters moved, else
 * dropped. Answers the hold as it is now, or null when it is gone.
 */
async function settleTaking(
	svc: InventoryThis,
	hold: HoldDoc,
	graceMs: number
): Promise<HoldDoc | null> {
	const stock = await svc.findStock(hold.productId);
	const op = stock?.ops?.[hold.orderId];
	if (op?.take === hold.quantity) {
		const saleId = op.sale;
		const terms = saleId ? stock?.sales?.[saleId] : undefined;
		const held = {
			state: "held" as const,
			expiresAt: Date.now() + graceMs,
			...(saleId ? { saleId, unitPrice: terms?.price } : {})
		};
		await holdsOf(svc).updateMany({ _id: hold._id, state: "taking" }, { $set: held });
		await clearMarker(svc, hold.productId, hold.orderId, "take");
		return { ...hold, ...held };
	}
	// Not landed; a sale's allowance may have been counted (the sale is named only once the take lands).
	for (const saleId of Object.keys(stock?.sales ?? {})) await giveAllowanceBack(svc, hold, saleId);
	await holdsOf(svc).removeMany({ _id: hold._id, state: "taking" });
	return null;
}

/** Moves a hold from `from` to `to` (with a new sweep time); false when it is not in `from` any more. */
async function claim(
	svc: InventoryThis,
	hold: HoldDoc,
	from: HoldDoc["state"][],
	to: HoldDoc["state"],
	expiresAt: number
): Promise<boolean> {
	return (
		(await holdsOf(svc).updateMany(
			{ _id: hold._id, state: { $in: from } },
			{ $set: { state: to, expiresAt } }
		)) === 1
	);
}

/** Gives a `releasing` hold's units back to the stock and its sale, and removes it. */
async function finishRelease(svc: InventoryThis, hold: HoldDoc): Promise<void> {
	const marker = `ops.${hold.orderId}`;
	await svc.adapter.updateMany(
		{ productId: hold.productId, [`${marker}.release`]: { $exists: false } },
		{
			$inc: counters(
				hold.quantity,
				hold.saleId,
				{ available: 1, reserved: -1 },
				{ left: 1, held: -1 }
			),
			$set: {
				[marker]: {
					release: hold.quantity,
					at: Date.now(),
					...(hold.saleId ? { sale: hold.saleId } : {})
				},
				updatedAt: nowIso()
			}
		}
	);
	if (hold.saleId) await giveAllowanceBack(svc, hold, hold.saleId);
	await holdsOf(svc).removeMany({ _id: hold._id, state: "releasing" });
	await clearMarker(svc, hold.productId, hold.orderId, "release");
}

/** Sells a `selling` hold's units (reserved and on hand go down, sold up), and removes it. */
async function finishSell(svc: InventoryThis, hold: HoldDoc): Promise<void> {
	const marker = `ops.${hold.orderId}`;
	await svc.adapter.updateMany(
		{ productId: hold.productId, [`${marker}.sell`]: { $exists: false } },
		{
			$inc: counters(
				hold.quantity,
				hold.saleId,
				{ reserved: -1, onHand: -1, sold: 1 },
				{ held: -1, sold: 1 }
			),
			$set: {
				[marker]: {
					sell: hold.quantity,
					at: Date.now(),
					...(hold.saleId ? { sale: hold.saleId } : {})
				},
				updatedAt: nowIso()
			}
		}
	);
	await holdsOf(svc).removeMany({ _id: hold._id, state: "selling" });
	await clearMarker(svc, hold.productId, hold.orderId, "sell");
}

/** The hold of an order's line as it stands, a `taking` one settled first (see settleTaking). */
async function currentHold(
	svc: InventoryThis,
	cfg: AppConfig,
	orderId: string,
	productId: string
): Promise<HoldDoc | null> {
	const hold = (await holdsOf(svc).findById(holdId(orderId, productId))) as HoldDoc | null;
	if (hold?.state !== "taking") return hold;
	return settleTaking(svc, hold, cfg.inventory.holdGrace);
}

/** Releases what an order holds of these lines; answers how many lines it released (0 for a second call). */
export async function releaseLines(
	svc: InventoryThis,
	cfg: AppConfig,
	orderId: string,
	lines: StockLine[]
): Promise<number> {
	let released = 0;
	for (const line of lines) {
		const hold = await currentHold(svc, cfg, orderId, line.productId);
		if (!hold || hold.state === "selling") continue; // gone, or being sold: a sale wins
		if (
			hold.state === "held" &&
			!(await claim(svc, hold, ["held"], "releasing", Date.now() + abandonedAfter(cfg)))
		) {
			continue; // another node took it meanwhile
		}
		await finishRelease(svc, hold);
		released++;
	}
	return released;
}

/** Sells what an order holds of these lines; answers how many lines it sold (0 for a second call). */
export async function commitLines(
	svc: InventoryThis,
	cfg: AppConfig,
	orderId: string,
	lines: StockLine[]
): Promise<number> {
	let committed = 0;
	for (const line of lines) {
		const hold = await currentHold(svc, cfg, orderId, line.productId);
		if (!hold) continue;
		if (hold.state === "releasing") {
			svc.logger.warn("A paid order's hold was being released: its units are not sold", {
				orderId,
				productId: line.productId
			});
			continue;
		}
		if (
			hold.state === "held" &&
			!(await claim(svc, hold, ["held"], "selling", Date.now() + abandonedAfter(cfg)))
		) {
			continue;
		}
		await finishSell(svc, hold);
		committed++;
	}
	return committed;
}

/**
 * One pass over the holds that are due: a held one past its expiry is released (nobody paid: its units go back to
 * the stock and its sale), one a crash left `taking`, `releasing` or `selling` is finished. Safe on any number of
 * inventory nodes: each move is claimed by a conditional update.
 */
export async function sweepHolds(
	svc: InventoryThis,
	cfg: AppConfig,
	now = Date.now()
): Promise<number> {
	let done = 0;
	const seen = new Set<string>();
	for (let read = 0; read < SWEEP_MAX; read += SWEEP_BATCH) {
		const due = (
			(await holdsOf(svc).find({
				query: { expiresAt: { $lte: now } },
				sort: ["expiresAt"],
				limit: SWEEP_BATCH + seen.size
			})) as HoldDoc[]
		).filter(h => !seen.has(h._id));
		for (const hold of due) {
			seen.add(hold._id);
			try {
				if (hold.state === "taking") {
					await settleTaking(svc, hold, cfg.inventory.holdGrace);
				} else if (hold.state === "held") {
					if (await claim(svc, hold, ["held"], "releasing", now + abandonedAfter(cfg))) {
						await finishRelease(svc, hold);
						svc.broker.metrics.increment(METRIC.HOLD_EXPIRIES, {
							kind: hold.saleId ? "sale" : "order"
						});
						await svc.changed([hold.productId], hold.saleId ? [hold.saleId] : []);
					}
				} else if (hold.state === "releasing") {
					await finishRelease(svc, hold);
					await svc.changed([hold.productId], hold.saleId ? [hold.saleId] : []);
				} else {
					await finishSell(svc, hold);
				}
				done++;
			} catch (err) {
				svc.logger.warn("A due hold was not finished; the next sweep retries it", err);
			}
		}
		if (due.length < SWEEP_BATCH) break;
		await new Promise(resolve => setImmediate(resolve)); // let requests in between batches
	}
	return done;
}

/**
 * Markers a crash left on stock documents after their hold was finished (between the hold's last write and the
 * marker's removal): removed once older than a call can run, when no hold of that order and product is under way.
 */
export async function clearStaleMarkers(
	svc: InventoryThis,
	cfg: AppConfig,
	now = Date.now()
): Promise<number> {
	const docs = (await svc.adapter.find({ query: { ops: { $exists: true } } })) as StockDoc[];
	let cleared = 0;
	for (const doc of docs) {
		for (const [orderId, op] of Object.entries(doc.ops ?? {})) {
			if (op.at > now - abandonedAfter(cfg)) continue;
			const hold = (await holdsOf(svc).findById(holdId(orderId, doc.productId))) as HoldDoc | null;
			// A taking, releasing or selling hold still needs its marker: the sweep finishes it first.
			if (hold && hold.state !== "held") continue;
			if (op.take !== undefined && hold?.state !== "held") continue;
			cleared += await svc.adapter.updateMany(
				{ _id: doc._id, [`ops.${orderId}.at`]: op.at },
				{ $unset: { [`ops.${orderId}`]: true } }
			);
		}
	}
	return cleared;
}

/**
 * Holds stored by the previous version inside the stock document (`holds.<orderId>`: units) become hold records,
 * with the counters unchanged; idempotent (the record's id is unique), so a crash halfway is finished at next start.
 */
export async function migrateLegacyHolds(svc: InventoryThis, cfg: AppConfig): Promise<number> {
	const docs = (await svc.adapter.find({ query: { holds: { $exists: true } } })) as StockDoc[];
	let moved = 0;
	const now = Date.now();
	for (const doc of docs) {
		for (const [orderId, quantity] of Object.entries(doc.holds ?? {})) {
			try {
				await holdsOf(svc).insert({
					_id: holdId(orderId, doc.productId),
					orderId,
					productId: doc.productId,
					quantity,
					state: "held",
					// The order's own expiry is not known here: at most ORDER_TTL away, and orders releases it then.
					expiresAt: now + cfg.orders.ttl * 1000 + cfg.inventory.holdGrace,
					createdAt: now
				} satisfies HoldDoc);
			} catch (err) {
				if (!isDuplicateKeyError(err)) throw err;
			}
			moved += await svc.adapter.updateMany(
				{ _id: doc._id, [`holds.${orderId}`]: quantity },
				{ $unset: { [`holds.${orderId}`]: true } }
			);
		}
	}
	return moved;
}
