/**
 * What FlashMart asks of a payment provider. A charge is keyed at the provider (`key`, like a real provider's idempotency key): charging again with a key the
 * provider knows answers the charge it already made, so a retry after a timeout, a duplicate request or a crash
 * between the charge and our record never charges twice. `retrieve(key)` is what reconciliation asks when an
 * outcome was unknown.
 */

export interface ChargeRequest {
	/** Idempotency key at the provider: one charge per key, whatever is retried. */
	key: string;
	amount: number;
	currency: string;
	token: string;
	/** Our reference (the order id), kept with the charge as a real provider keeps metadata. */
	reference: string;
}

export interface ProviderCharge {
	id: string;
	key: string;
	reference: string;
	status: "succeeded" | "declined";
	amount: number;
	currency: string;
	declineCode?: string;
	createdAt: string;
}

export interface ProviderRefund {
	id: string;
	key: string;
	reference: string;
	chargeId: string;
	amount: number;
	status: "succeeded";
	createdAt: string;
}

export interface PaymentProvider {
	charge(req: ChargeRequest): Promise<ProviderCharge>;
	/** The charge made under `key`, or null if the provider never made one. */
	retrieve(key: string): Promise<ProviderCharge | null>;
	/** Refunds (part of) a charge; keyed like a charge, so a retried refund refunds once. */
	refund(req: RefundRequest): Promise<ProviderRefund>;
}

export interface RefundRequest {
	key: string;
	chargeId: string;
	amount: number;
	reference: string;
}

/** The provider did not answer in time: the charge may or may not have happened. */
export class ProviderTimeoutError extends Error {
	constructor(ms: number) {
		super(`The payment provider did not answer within ${ms} ms`);
		this.name = "ProviderTimeoutError";
	}
}

/** `work`, or ProviderTimeoutError after `ms`. */
export async function withProviderTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
	let timer: NodeJS.Timeout | undefined;
	const timeout = new Promise<never>((_, reject) => {
		timer = setTimeout(() => reject(new ProviderTimeoutError(ms)), ms);
	});
	try {
		return await Promise.race([work, timeout]);
	} finally {
		clearTimeout(timer);
	}
}
