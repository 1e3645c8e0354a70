/**
 * What the inventory service, its holds (holds.ts) and its sales (sales.ts) share: the stored documents, the service's
 * `this`, and the shapes of its actions, so that neither holds.ts nor sales.ts imports the service file.
 */
import type { Service } from "moleculer";
import type { DbAdapter } from "../../adapters/store";
import type { DbServiceThis } from "../../mixins/db.mixin";
import type { ThrottledBatch } from "../../lib/throttled-batch";

/**
 * A sale's terms for one of its products, kept in that product's stock document so that taking a sale line checks
 * and moves the stock and the sale's units in one conditional update. Times in ms.
 */
export interface SaleTerms {
	startsAt: number;
	endsAt: number;
	price: number;
	perCustomerLimit: number;
	holdMs: number;
	units: number;
	/** Units not held nor sold: `units - held - sold`, never below 0. */
	left: number;
	held: number;
	sold: number;
}

/**
 * An operation on a product's stock that is under way for an order: the stock write and the hold record are two
 * documents, so the write leaves this marker, which tells a retry or the sweep whether it landed. Taken away once
 * the hold record shows the outcome. `at` in ms.
 */
export interface StockOp {
	take?: number;
	release?: number;
	sell?: number;
	sale?: string;
	at: number;
}

/** One product's stock: counters, its sales' terms and the operations under way. Holds are records of their own. */
export interface StockDoc {
	_id: string;
	/**
	 * The stock's id: its variant's. A product without options has one variant whose id is the product's, so stock
	 * written before variants existed keeps its key; holds, sales and lines name stock by this id.
	 */
	productId: string;
	/** The product a variant's stock belongs to, when the variant is not the product's default one. */
	ofProduct?: string;
	onHand: number;
	reserved: number;
	available: number;
	/** Units sold: committed reservations. Never more than the units ever put on hand. */
	sold: number;
	ops?: Record<string, StockOp>;
	sales?: Record<string, SaleTerms>;
	/** Holds as the previous version kept them (order id → units), moved to hold records at start. */
	holds?: Record<string, number>;
	/**
	 * A refunded order whose units went back on the shelf, by order id: when (ms), which makes the return idempotent.
	 * Kept RETURN_MARKER_TTL_MS, longer than orders retries a return, then pruned by the sweep, so a product's
	 * document does not grow with its refunds. Written before markers had a time: the units (a small number).
	 */
	returns?: Record<string, number>;
	/** Set when inventory.low was written for the current dip below the threshold; cleared when stock recovers. */
	lowNotified?: boolean;
	updatedAt: string;
}

/**
 * `taking`: written before the stock is asked, so a crash leaves a trace; `held`: the units are reserved for the order;
 * `releasing` and `selling`: a release or a sale began. A hold is removed once released or sold.
 */
export type HoldState = "taking" | "held" | "releasing" | "selling";

/** Units of one product reserved for one order (`_id` = `<orderId>:<productId>`). Times in ms. */
export interface HoldDoc {
	_id: string;
	orderId: string;
	productId: string;
	quantity: number;
	state: HoldState;
	saleId?: string;
	userId?: string;
	/** The sale price this hold was taken at. */
	unitPrice?: number;
	/** When the sweep next looks at it: a held hold expires then, a hold in any other state is finished then. */
	expiresAt: number;
	createdAt: number;
}

/** What one customer holds or bought of one sale item (`_id` = `<saleId>:<productId>:<userId>`), by order. */
export interface CustomerDoc {
	_id: string;
	saleId: string;
	productId: string;
	userId: string;
	units: number;
	orders: Record<string, number>;
}

export interface SaleItem {
	/** The stock on sale, by its id (the variant's; see StockDoc). */
	productId: string;
	/** The variant's product, when the variant is not the product's default one. */
	ofProduct?: string;
	salePrice: number;
	units: number;
	perCustomerLimit: number;
}

export interface SaleDoc {
	_id: string;
	name: string;
	startsAt: string;
	endsAt: string;
	holdSeconds: number;
	items: SaleItem[];
	/** False until every item's terms are in its stock document (the sweep finishes a create a crash interrupted). */
	applied: boolean;
	createdAt: string;
	updatedAt: string;
}

export type SaleStatus = "scheduled" | "live" | "ended";

/** A sale as clients see it. */
export interface Sale {
	id: string;
	name: string;
	startsAt: string;
	endsAt: string;
	holdSeconds: number;
	status: SaleStatus;
	items: Array<Omit<SaleItem, "ofProduct"> & { variantId: string; unitsLeft: number }>;
	createdAt: string;
	updatedAt: string;
}

export interface StockLine {
	productId: string;
	quantity: number;
}

/** A reserved line: a sale line names its sale and the price it was taken at. */
export interface HeldLine extends StockLine {
	saleId?: string;
	unitPrice?: number;
}

export interface StockLevel {
	productId: string;
	variantId: string;
	onHand: number;
	reserved: number;
	available: number;
}

export interface InventoryMethods {
	findStock(productId: string): Promise<StockDoc | null>;
	createStock(productId: string, onHand: number, ofProduct?: string): Promise<void>;
	defaultStock(productId: string): Promise<StockDoc>;
	setOnHand(productId: string, onHand: number): Promise<StockLevel>;
	changed(productIds: string[], saleIds?: string[]): Promise<void>;
	checkLow(productIds?: string[]): Promise<void>;
	pruneReturns(now?: number): Promise<number>;
	relayOutbox(id?: string): Promise<number>;
}

export interface InventoryVars {
	lowTimer?: NodeJS.Timeout;
	holdsTimer?: NodeJS.Timeout;
	sweepingHolds: boolean;
	/** inventory.changed, at most once per CHANGE_WINDOW_MS (lib/throttled-batch.ts). */
	announcer: ThrottledBatch<Promise<void>>;
	/** Sales whose change is announced with the next inventory.changed. */
	changedSales: Set<string>;
}

export type InventoryThis = Service & DbServiceThis & InventoryMethods & InventoryVars;

/** The stores inventory owns besides `stock`. */
export const holdsOf = (svc: InventoryThis): DbAdapter => svc.stores.holds;
export const customersOf = (svc: InventoryThis): DbAdapter => svc.stores.customers;
export const salesOf = (svc: InventoryThis): DbAdapter => svc.stores.sales;

/** Whether a sale's terms are live at `now`, or announced and not started yet. */
export const isLive = (t: Pick<SaleTerms, "startsAt" | "endsAt">, now: number) =>
	t.startsAt <= now && now < t.endsAt;
export const isUpcoming = (t: Pick<SaleTerms, "startsAt">, now: number) => now < t.startsAt;
