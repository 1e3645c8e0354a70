/**
 * The built-in simulated provider. It keeps its own ledger (a store of its own, never written by anything else) and
 * knows the test tokens of API.md: `tok_visa` succeeds; `tok_chargeDeclined` and `tok_insufficientFunds` are
 * declined; `tok_timeout` is charged but the answer never comes (the caller times out, the charge stands). Any other
 * token is declined as `invalid_token`.
 */
import { randomUUID } from "node:crypto";
import { type DbAdapter, type IndexSpec, isDuplicateKeyError } from "../store";
import type {
	ChargeRequest,
	PaymentProvider,
	ProviderCharge,
	ProviderRefund,
	RefundRequest
} from "./port";

const DECLINES: Record<string, string> = {
	tok_chargeDeclined: "card_declined",
	tok_insufficientFunds: "insufficient_funds"
};
const SUCCEEDS = new Set(["tok_visa", "tok_timeout"]);

interface LedgerDoc {
	_id: string;
	kind: "charge" | "refund";
	key: string;
	reference: string;
	status: "succeeded" | "declined";
	amount: number;
	currency?: string;
	chargeId?: string;
	declineCode?: string;
	token?: string;
	createdAt: string;
}

export const SIMULATED_LEDGER_STORE: { collection: string; indexes: IndexSpec[] } = {
	collection: "simulated_provider_ledger",
	indexes: [{ fields: { key: 1 }, unique: true }, { fields: { reference: 1 } }]
};

const toCharge = (d: LedgerDoc): ProviderCharge => ({
	id: d._id,
	key: d.key,
	reference: d.reference,
	status: d.status,
	amount: d.amount,
	currency: d.currency!,
	...(d.declineCode ? { declineCode: d.declineCode } : {}),
	createdAt: d.createdAt
});

export class SimulatedProvider implements PaymentProvider {
	constructor(private readonly ledger: DbAdapter) {}

	async charge(req: ChargeRequest): Promise<ProviderCharge> {
		const declineCode = SUCCEEDS.has(req.token)
			? undefined
			: (DECLINES[req.token] ?? "invalid_token");
		const doc: LedgerDoc = {
			_id: `ch_${randomUUID().replace(/-/g, "")}`,
			kind: "charge",
			key: req.key,
			reference: req.reference,
			status: declineCode ? "declined" : "succeeded",
			amount: req.amount,
			currency: req.currency,
			...(declineCode ? { declineCode } : {}),
			token: req.token,
			createdAt: new Date().toISOString()
		};
		const { stored, fresh } = await this.once(doc);
		// A key seen before answers the charge already made under it (never a second one), and at once.
		if (!fresh) return toCharge(stored);
		// The charge stands, but the answer is lost on the way back.
		if (req.token === "tok_timeout") return new Promise<never>(() => undefined);
		return toCharge(stored);
	}

	async retrieve(key: string): Promise<ProviderCharge | null> {
		const doc = (await this.ledger.findOne({ key, kind: "charge" })) as LedgerDoc | null;
		return doc ? toCharge(doc) : null;
	}

	async refund(req: RefundRequest): Promise<ProviderRefund> {
		const charge = (await this.ledger.findById(req.chargeId)) as LedgerDoc | null;
		if (!charge || charge.status !== "succeeded") {
			throw new Error(`No succeeded charge ${req.chargeId} to refund`);
		}
		const doc: LedgerDoc = {
			_id: `re_${randomUUID().replace(/-/g, "")}`,
			kind: "refund",
			key: req.key,
			reference: req.reference,
			status: "succeeded",
			amount: Math.min(req.amount, charge.amount),
			chargeId: req.chargeId,
			currency: charge.currency,
			createdAt: new Date().toISOString()
		};
		return this.toRefund((await this.once(doc)).stored);
	}

	/** Writes `doc` unless its key is known (unique index); answers what the ledger holds under the key. */
	private async once(doc: LedgerDoc): Promise<{ stored: LedgerDoc; fresh: boolean }> {
		try {
			await this.ledger.insert(doc);
			return { stored: doc, fresh: true };
		} catch (err) {
			if (!isDuplicateKeyError(err)) throw err;
			return { stored: (await this.ledger.findOne({ key: doc.key })) as LedgerDoc, fresh: false };
		}
	}

	/** The ledger's entries (charges and refunds) for one reference, or all: what the provider would bill. */
	async entries(reference?: string): Promise<Array<ProviderCharge | ProviderRefund>> {
		const docs = (await this.ledger.find({ query: reference ? { reference } : {} })) as LedgerDoc[];
		return docs
			.sort((a, b) => a.createdAt.localeCompare(b.createdAt))
			.map(d => (d.kind === "charge" ? toCharge(d) : this.toRefund(d)));
	}

	private toRefund(d: LedgerDoc): ProviderRefund {
		return {
			id: d._id,
			key: d.key,
			reference: d.reference,
			chargeId: d.chargeId!,
			amount: d.amount,
			status: "succeeded",
			createdAt: d.createdAt
		};
	}
}
