/**
 * The demo catalog: 240 realistic products over 10 categories, with stock, and 4 more sold in sizes and colours
 * (variants). Deterministic (the same every run), so seeding twice finds every sku already there and changes nothing.
 */
import type { ProductOption } from "../types/catalog";

export interface DemoVariant {
	sku: string;
	options: Record<string, string>;
	price: number;
	stock: number;
}

export interface DemoProduct {
	sku: string;
	name: string;
	description: string;
	price: number;
	currency: string;
	category: string;
	/** Units of a product without options; one with options has them per variant. */
	stock?: number;
	options?: ProductOption[];
	variants?: DemoVariant[];
}

/** Products with options: every combination of their values is a variant, priced from `price` up by `step`. */
const WITH_OPTIONS: Array<{
	sku: string;
	name: string;
	category: string;
	price: number;
	step: number;
	options: ProductOption[];
}> = [
	{
		sku: "CLO-TEE",
		name: "Organic Cotton T-Shirt",
		category: "clothing",
		price: 1999,
		step: 0,
		options: [
			{ name: "size", values: ["S", "M", "L", "XL"] },
			{ name: "colour", values: ["Black", "White", "Red"] }
		]
	},
	{
		sku: "CLO-HOOD",
		name: "Merino Hoodie",
		category: "clothing",
		price: 7999,
		step: 500,
		options: [
			{ name: "size", values: ["S", "M", "L"] },
			{ name: "colour", values: ["Grey", "Navy"] }
		]
	},
	{
		sku: "SPO-SHOE",
		name: "Trail Running Shoes",
		category: "sports",
		price: 11999,
		step: 0,
		options: [{ name: "size", values: ["40", "41", "42", "43", "44", "45"] }]
	},
	{
		sku: "KIT-MUGS",
		name: "Stoneware Mug Set",
		category: "kitchen",
		price: 2999,
		step: 1000,
		options: [{ name: "pieces", values: ["2", "4", "6"] }]
	}
];

/** Every combination of the options' values, in the order the values are listed. */
function combinations(options: ProductOption[]): Array<Record<string, string>> {
	return options.reduce<Array<Record<string, string>>>(
		(acc, option) => acc.flatMap(c => option.values.map(value => ({ ...c, [option.name]: value }))),
		[{}]
	);
}

const CATEGORIES: Record<string, { items: string[]; from: number; to: number }> = {
	electronics: {
		items: [
			"Wireless Earbuds",
			"Bluetooth Speaker",
			"USB-C Charger",
			"Smart Watch",
			"Power Bank",
			"Webcam"
		],
		from: 1999,
		to: 24999
	},
	books: {
		items: [
			"Cookbook",
			"Travel Guide",
			"Mystery Novel",
			"Poetry Collection",
			"Field Notebook",
			"Atlas"
		],
		from: 899,
		to: 4999
	},
	kitchen: {
		items: [
			"Chef's Knife",
			"Cast Iron Skillet",
			"French Press",
			"Cutting Board",
			"Spice Rack",
			"Kettle"
		],
		from: 1299,
		to: 15999
	},
	garden: {
		items: [
			"Pruning Shears",
			"Watering Can",
			"Seed Starter Kit",
			"Garden Gloves",
			"Planter Box",
			"Hose Reel"
		],
		from: 699,
		to: 8999
	},
	sports: {
		items: [
			"Yoga Mat",
			"Jump Rope",
			"Water Bottle",
			"Resistance Bands",
			"Running Cap",
			"Foam Roller"
		],
		from: 999,
		to: 7999
	},
	toys: {
		items: ["Building Blocks", "Puzzle", "Plush Bear", "Kite", "Board Game", "Wooden Train"],
		from: 799,
		to: 6999
	},
	clothing: {
		items: ["Wool Socks", "Rain Jacket", "Linen Shirt", "Beanie", "Denim Jeans", "Hoodie"],
		from: 1499,
		to: 12999
	},
	beauty: {
		items: ["Face Cream", "Lip Balm", "Shampoo Bar", "Hand Soap", "Sunscreen", "Bath Salts"],
		from: 499,
		to: 4999
	},
	office: {
		items: [
			"Desk Lamp",
			"Fountain Pen",
			"Monitor Stand",
			"Sticky Notes",
			"Desk Organizer",
			"Stapler"
		],
		from: 399,
		to: 9999
	},
	pets: {
		items: ["Dog Leash", "Cat Scratcher", "Pet Bed", "Chew Toy", "Food Bowl", "Grooming Brush"],
		from: 599,
		to: 8999
	}
};

const VARIANTS = ["Classic", "Pro"] as const;
const COLOURS = ["Black", "Green"] as const;

/** A small deterministic pseudo-random sequence (mulberry32), so prices and stock are the same every run. */
function sequence(seed: number): () => number {
	let a = seed;
	return () => {
		a = (a + 0x6d2b79f5) | 0;
		let t = Math.imul(a ^ (a >>> 15), 1 | a);
		t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

export function demoCatalog(): DemoProduct[] {
	const random = sequence(42);
	const products: DemoProduct[] = [];
	for (const [category, spec] of Object.entries(CATEGORIES)) {
		spec.items.forEach((item, i) => {
			for (const variant of VARIANTS) {
				for (const colour of COLOURS) {
					const n = products.length + 1;
					const price = Math.round((spec.from + random() * (spec.to - spec.from)) / 100) * 100 - 1;
					products.push({
						sku: `${category.slice(0, 3).toUpperCase()}-${String(i + 1).padStart(2, "0")}-${variant[0]}${colour[0]}`,
						name: `${item} ${variant} ${colour}`,
						description: `${variant} ${item.toLowerCase()} in ${colour.toLowerCase()}, from the ${category} range (demo item ${n}).`,
						price,
						currency: "USD",
						category,
						stock: random() < 0.1 ? 0 : Math.floor(random() * 200) + 1
					});
				}
			}
		});
	}
	const withOptions: DemoProduct[] = [];
	for (const p of WITH_OPTIONS) {
		withOptions.push({
			sku: p.sku,
			name: p.name,
			description: `${p.name}, in ${p.options.map(o => `${o.values.length} ${o.name}s`).join(" and ")} (demo item with variants).`,
			price: p.price,
			currency: "USD",
			category: p.category,
			options: p.options,
			variants: combinations(p.options).map((combination, i) => ({
				sku: [p.sku, ...Object.values(combination)].join("-").toUpperCase(),
				options: combination,
				price: p.price + p.step * (i % p.options[0].values.length),
				// Some sold out, so a shop front shows a variant out of stock beside buyable siblings.
				stock: random() < 0.15 ? 0 : Math.floor(random() * 50) + 1
			}))
		});
	}
	// Created first, so the newest-first default listing starts with products a client can add by product id alone
	// (a product with options is 409 VARIANT_REQUIRED without a variant id). The values are drawn as before.
	return [...withOptions, ...products];
}
