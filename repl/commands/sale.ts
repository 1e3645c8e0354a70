/** `sale <id>`: a flash sale's state: its window, and per item the price, units, left, held, sold and limit. */
import type { ServiceBroker } from "moleculer";
import { type ReplArgs, type ReplCommand, callAs, report } from "../operator";

interface SaleItem {
	productId: string;
	salePrice: number;
	currency: string;
	units: number;
	perCustomerLimit: number;
	unitsLeft: number;
}

/** What inventory.saleStats answers: the sale as `GET /api/sales/:id` shows it, and inventory's counts per item. */
export interface SaleStats {
	sale: {
		id: string;
		name: string;
		startsAt: string;
		endsAt: string;
		holdSeconds: number;
		status: "scheduled" | "live" | "ended";
		items: SaleItem[];
	};
	items: Array<{ productId: string; unitsLeft: number; held: number; sold: number }>;
	holdsOpen: number;
}

export async function inspectSale(broker: ServiceBroker, id: string) {
	const { sale, items, holdsOpen } = await callAs<SaleStats>(
		broker,
		"admin",
		"inventory.saleStats",
		{ id }
	);
	const counts = new Map(items.map(i => [i.productId, i]));
	return {
		id: sale.id,
		name: sale.name,
		status: sale.status,
		window: { startsAt: sale.startsAt, endsAt: sale.endsAt, holdSeconds: sale.holdSeconds },
		// Left, held and sold all from inventory's counts (not the sale's own unitsLeft), so the three are one
		// reading; an item without counts shows null rather than a guess.
		items: sale.items.map(item => {
			const c = counts.get(item.productId);
			return {
				productId: item.productId,
				salePrice: item.salePrice,
				currency: item.currency,
				units: item.units,
				left: c?.unitsLeft ?? null,
				held: c?.held ?? null,
				sold: c?.sold ?? null,
				perCustomerLimit: item.perCustomerLimit
			};
		}),
		holdsOpen
	};
}

export const saleCommand: ReplCommand = {
	command: "sale <id>",
	description:
		"A flash sale: status, window, and per item the sale price, units, left, held, sold and per-customer limit; holds open",
	async action(broker: ServiceBroker, args: ReplArgs) {
		await report(() => inspectSale(broker, String(args.id)));
	}
};
