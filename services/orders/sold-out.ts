/**
 * What this orders node knows to be sold out, from inventory's `inventory.changed` broadcasts (each carries what
 * every changed product can be bought of now) and from its own refused reservations: a checkout naming one of them is
 * 409 OUT_OF_STOCK at once, without a call to inventory, until stock comes back (a broadcast with units again). An
 * entry is trusted for SOLD_OUT_TTL only, so a lost broadcast costs one reservation per product per TTL at most.
 */
export class SoldOut {
	private readonly until = new Map<string, number>();

	constructor(private readonly ttlMs: number) {}

	/** From `inventory.changed`: `levels` maps a variant id (a default variant's is its product's) to the units that can be bought now. */
	update(levels: Record<string, unknown> | undefined): void {
		if (!levels || this.ttlMs === 0) return;
		const until = Date.now() + this.ttlMs;
		for (const [productId, level] of Object.entries(levels)) {
			if (level === 0) this.until.set(productId, until);
			else this.until.delete(productId);
		}
	}

	/** From a refused reservation: its short lines with nothing left. */
	learn(err: unknown): void {
		const lines = (err as { data?: { lines?: unknown } }).data?.lines;
		if (!Array.isArray(lines)) return;
		this.update(
			Object.fromEntries(
				lines
					.filter(l => (l as { available?: unknown }).available === 0)
					.map(l => {
						const line = l as { productId: unknown; variantId?: unknown };
						return [String(line.variantId ?? line.productId), 0];
					})
			)
		);
	}

	/** The lines of these items known to be sold out, shaped as inventory's OUT_OF_STOCK lines. */
	shortLines(
		items: Array<{ productId: string; variantId?: string; quantity: number }>
	): Array<{ productId: string; variantId: string; requested: number; available: number }> {
		const now = Date.now();
		return items
			.map(i => ({ ...i, variantId: i.variantId ?? i.productId }))
			.filter(i => (this.until.get(i.variantId) ?? 0) > now)
			.map(i => ({
				productId: i.productId,
				variantId: i.variantId,
				requested: i.quantity,
				available: 0
			}));
	}
}
