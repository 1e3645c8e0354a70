/**
 * The HTTP binding of every operation a client may call (API.md): method, path, the action behind it, where its
 * parameters travel, and what the document says about it. What a client may send and who may call come from the
 * action itself (its `params` and `permissions`, see action-specs.ts), so this table cannot contradict it.
 * The gateway builds its whitelist of aliases from this table and nothing else; the OpenAPI document comes from it,
 * with the answers' shapes as the named schemas below (`SCHEMAS`), which generated clients turn into named types.
 */
import type { Access, JsonSchema } from "./action-schema";
import { COUNTRY_DESCRIPTION, CURRENCY_DESCRIPTION } from "../../lib/validation";

export type { Access, JsonSchema } from "./action-schema";

/** Gateway handlers (`handle_<name>` methods of the api service) for what no action serves alone. */
export type GatewayHandler =
	| "health"
	| "live"
	| "ready"
	| "metrics"
	| "apiHealth"
	| "openapi"
	| "docs"
	| "docsAsset"
	| "upload";

/** The document's tags, each with the words the docs page shows above its operations. */
export const TAGS = {
	Operations: "Health, readiness, metrics and this document: no token needed.",
	Accounts:
		"Registration, sign-in with rotating refresh tokens, the caller's profile, and user administration.",
	Catalog: "Products, categories and images. Reads are public; changes are for admins.",
	Inventory: "Stock levels per product (admins only).",
	Sales:
		"Flash sales: a window in which products sell at a sale price, from units allotted to the sale, at most a " +
		"number per customer. Admins create them; anyone reads them.",
	Cart: "The signed-in customer's cart, always at current catalog prices.",
	Pricing:
		"Discount codes, shipping methods and tax rates, and how every total is computed. Admins manage them; " +
		"anyone lists the shipping methods of a country. Amounts are integer minor units; the server rounds once " +
		"per line, half up (see the Totals schema), so the parts always add up to the total exactly.",
	Orders: "Checkout, payment, cancellation and fulfilment of orders."
} as const;
export type Tag = keyof typeof TAGS;

export interface Operation {
	method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
	/**
	 * moleculer-web path under the route, `:param` style. An action's other parameters travel in the query string
	 * for GET and DELETE and in the JSON body otherwise. One path has one template: every method on it names its
	 * parameters alike (`pathParams` maps a name to the action's own).
	 */
	path: string;
	/** The action called; its params and permissions are the operation's parameters and access level. */
	action?: string;
	/** A gateway handler that serves the operation (calling `action` itself, if named). */
	handler?: GatewayHandler;
	/** Only for a handler without an action: who may call it. */
	access?: Access;
	/** Path parameters the gateway hands to the action under another name: path name → action parameter. */
	pathParams?: Record<string, string>;
	/** Action parameters the gateway fills in itself (from the upload), not the client. */
	gatewayParams?: string[];
	/**
	 * Words for the document about derived parameters, by action parameter path (`shippingAddress.country`):
	 * descriptions and examples only; types, limits and defaults are the action's.
	 */
	notes?: Record<string, JsonSchema>;
	tag: Tag;
	/** A few words, plain text (the docs page shows it as it is). */
	summary: string;
	/** What the operation does and answers, in full; Markdown. */
	description: string;
	/** Success status code. */
	status?: number;
	/** What the success answer is, in a few words (default: by status). */
	answer?: string;
	/** A request body that is not JSON: content type → schema (e.g. an upload). */
	requestContent?: Record<string, JsonSchema>;
	headers?: Record<string, { schema: JsonSchema; required?: boolean; description: string }>;
	/** The success answer's schema, usually a named one (`ref("Product")`). */
	response?: JsonSchema;
	/**
	 * Error statuses this operation documents beyond the ones every operation may answer, each with what it
	 * means here (the error types it carries), or `""` for the shared wording.
	 */
	errors?: Record<number, string>;
	/** An error status whose body is not (only) the Error shape: status → schema. */
	errorBodies?: Record<number, JsonSchema>;
	/** Response content type when not JSON. */
	contentType?: string;
	/**
	 * A public read the gateway may answer from its read cache (services/api/read-cache.mixin.ts), when the action's
	 * owner declares cache keys for it.
	 */
	cached?: true;
}

export const OPS_ROUTE = "/";
export const API_ROUTE = "/api";

/** The named schemas of the document (`SCHEMAS` below). */
export type SchemaName =
	| "User"
	| "AdminUser"
	| "UserPage"
	| "AuthTokens"
	| "LoginTokens"
	| "Image"
	| "ProductOption"
	| "Variant"
	| "Product"
	| "ProductPage"
	| "Category"
	| "CategoryList"
	| "InventoryLevel"
	| "SaleItem"
	| "Sale"
	| "SalePage"
	| "CartItem"
	| "Cart"
	| "Address"
	| "SavedAddress"
	| "SavedAddressList"
	| "Discount"
	| "DiscountPage"
	| "ShippingMethod"
	| "ShippingMethodList"
	| "TaxRate"
	| "TaxRateList"
	| "OrderStatus"
	| "OrderItem"
	| "Payment"
	| "Order"
	| "OrderPage"
	| "Health"
	| "Liveness"
	| "Readiness"
	| "BackendHealth"
	| "OpenApiDocument"
	| "Error";

/** A reference to one of the named schemas. */
export const ref = (name: SchemaName): JsonSchema => ({ $ref: `#/components/schemas/${name}` });

const STR = { type: "string" } as const;
const INT = { type: "integer" } as const;
const TIME = { type: "string", format: "date-time" } as const;
const MONEY: JsonSchema = { type: "integer", minimum: 0, description: "Minor units (cents)" };
const CURRENCY: JsonSchema = {
	type: "string",
	pattern: "^[A-Z]{3}$",
	default: "USD",
	description: "ISO-4217"
};
const QUANTITY: JsonSchema = { type: "integer", minimum: 1, maximum: 99 };

/** A page of a list, as every list answers (API.md), with an example page of one row. */
const pageOf = (item: SchemaName, description: string, row: unknown): JsonSchema => ({
	type: "object",
	description,
	required: ["rows", "total", "page", "pageSize", "totalPages"],
	properties: {
		rows: { type: "array", items: ref(item) },
		total: { type: "integer", minimum: 0, description: "Rows in the whole list" },
		page: { type: "integer", minimum: 1 },
		pageSize: { type: "integer", minimum: 1, maximum: 100 },
		totalPages: { type: "integer", minimum: 0 }
	},
	examples: [{ rows: [row], total: 1, page: 1, pageSize: 20, totalPages: 1 }]
});

const USER_EXAMPLE = {
	id: "u7Hk2mQp9ZxL4aBc",
	email: "ada@example.com",
	name: "Ada Lovelace",
	roles: ["customer"],
	createdAt: "2026-01-15T09:30:00.000Z"
};
const ADMIN_USER_EXAMPLE = { ...USER_EXAMPLE, disabled: false };
const TOKENS_EXAMPLE = {
	user: USER_EXAMPLE,
	accessToken:
		"eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1N0hrMm1RcDlaeEw0YUJjIn0.c2lnbmF0dXJl",
	refreshToken: "rt_4bW9sX2kQ7mN1pL8vC3dF6gH0jK5zA",
	tokenType: "Bearer",
	expiresIn: 900
};
const IMAGE_EXAMPLE = {
	id: "img_9QwErTy1UiOp2AsD",
	url: "http://localhost:5921/api/images/img_9QwErTy1UiOp2AsD"
};
const PRODUCT_EXAMPLE = {
	id: "p3fYpQk2Lx8aB1cD",
	sku: "MUG-BLUE-350",
	slug: "blue-enamel-mug",
	name: "Blue enamel mug",
	description: "350 ml, dishwasher safe",
	price: 1299,
	currency: "USD",
	category: "kitchen",
	images: [IMAGE_EXAMPLE],
	available: 42,
	options: [],
	variants: [
		{
			id: "p3fYpQk2Lx8aB1cD",
			sku: "MUG-BLUE-350",
			options: {},
			price: 1299,
			currency: "USD",
			available: 42,
			images: [IMAGE_EXAMPLE]
		}
	],
	priceRange: { min: 1299, max: 1299 },
	createdAt: "2026-01-10T08:00:00.000Z",
	updatedAt: "2026-01-12T16:45:00.000Z"
};
const VARIANT_EXAMPLE = {
	id: "v8KqT2mZx4Lp0RsW",
	sku: "TEE-M-RED",
	options: { size: "M", colour: "red" },
	price: 1999,
	currency: "USD",
	available: 12,
	images: [IMAGE_EXAMPLE]
};
const ADDRESS_EXAMPLE = {
	name: "Ada Lovelace",
	line1: "12 St James's Square",
	city: "London",
	postalCode: "SW1Y 4JH",
	country: "GB"
};
const ORDER_ITEM_EXAMPLE = {
	productId: PRODUCT_EXAMPLE.id,
	variantId: PRODUCT_EXAMPLE.id,
	sku: PRODUCT_EXAMPLE.sku,
	name: PRODUCT_EXAMPLE.name,
	options: {},
	unitPrice: 1299,
	quantity: 2,
	lineTotal: 2598
};
const PAYMENT_EXAMPLE = { id: "pay_Zx81Lm0Qa7Rt5Yu3", status: "succeeded", amount: 3097 };
const ORDER_EXAMPLE = {
	id: "o5Gh7Jk9Lm1Nb3Vc",
	userId: USER_EXAMPLE.id,
	status: "paid",
	items: [ORDER_ITEM_EXAMPLE],
	subtotal: 2598,
	discountTotal: 0,
	shippingTotal: 499,
	taxTotal: 0,
	total: 3097,
	currency: "USD",
	shippingAddress: ADDRESS_EXAMPLE,
	shippingMethod: { id: "5b7d9f1h3j5l7n9p1r3t5v7x9z1b3d5f", name: "Standard", price: 499 },
	expiresAt: "2026-01-20T10:15:00.000Z",
	createdAt: "2026-01-20T10:00:00.000Z",
	updatedAt: "2026-01-20T10:01:30.000Z",
	payment: PAYMENT_EXAMPLE
};
const DISCOUNT_EXAMPLE = {
	id: "9a1c3e5g7i9k1m3o5q7s9u1w3y5a7c9e",
	code: "WELCOME10",
	type: "percentage",
	value: 10,
	minSubtotal: 2000,
	startsAt: "2026-12-01T00:00:00.000Z",
	endsAt: "2027-01-01T00:00:00.000Z",
	categories: ["kitchen"],
	usageLimit: 1000,
	perCustomerLimit: 1,
	used: 37,
	createdAt: "2026-11-30T18:00:00.000Z",
	updatedAt: "2026-11-30T18:00:00.000Z"
};
const SHIPPING_EXAMPLE = {
	id: "5b7d9f1h3j5l7n9p1r3t5v7x9z1b3d5f",
	name: "Standard",
	price: 499,
	currency: "USD",
	countries: ["US", "CA"],
	freeAbove: 5000,
	createdAt: "2026-11-30T18:00:00.000Z",
	updatedAt: "2026-11-30T18:00:00.000Z"
};
const SAVED_ADDRESS_EXAMPLE = {
	id: "a2c4e6g8i0k2m4o6q8s0u2w4y6a8c0e2",
	label: "Home",
	name: "Ada Lovelace",
	line1: "12 St James's Square",
	city: "London",
	postalCode: "SW1Y 4JH",
	country: "GB",
	createdAt: "2026-11-30T18:00:00.000Z",
	updatedAt: "2026-11-30T18:00:00.000Z"
};
/** The totals every cart and order shows (API.md "Totals"), each with what it means. */
const TOTALS_PROPERTIES: Record<string, JsonSchema> = {
	subtotal: { ...MONEY, description: "Sum of the lines' totals (unit price × quantity)" },
	discountTotal: {
		...MONEY,
		description:
			"Taken off by the discount code: per line, `round(lineTotal × value / 100)` for a percentage, or the " +
			"fixed amount shared over the lines it applies to in proportion (largest remainder); 0 without a code"
	},
	shippingTotal: {
		...MONEY,
		description:
			"The shipping method's price, 0 once `subtotal - discountTotal` reaches its `freeAbove`; 0 without a method"
	},
	taxTotal: {
		...MONEY,
		description:
			"Per line (and the shipping as one more line at the country's rate), on the amount after discount, " +
			"rounded half up: `round(amount × rate / 10000)` where prices exclude tax (added to `total`), " +
			"`round(amount × rate / (10000 + rate))` where they include it (contained in `total`). Which currencies " +
			"include tax is the TAX_INCLUSIVE_CURRENCIES setting (default EUR, GBP)"
	},
	total: {
		...MONEY,
		description:
			"`subtotal - discountTotal + shippingTotal`, plus `taxTotal` where prices exclude tax; exact to the minor unit"
	}
};
const DINV =
	"an unusable code: DISCOUNT_INVALID with `data.reason` (`unknown`, `expired`, `not_started`, `exhausted`, " +
	"`customer_limit`, `min_subtotal`, `not_applicable`) and `data.code`";
const TOTALS_REQUIRED = ["subtotal", "discountTotal", "shippingTotal", "taxTotal", "total"];
const SALE_EXAMPLE = {
	id: "3f9c0a6b2d4e4c1f8a7b5d3e1c9f0a2b",
	name: "Midnight drop",
	startsAt: "2026-12-01T00:00:00.000Z",
	endsAt: "2026-12-01T01:00:00.000Z",
	holdSeconds: 120,
	status: "live",
	items: [
		{
			productId: PRODUCT_EXAMPLE.id,
			variantId: PRODUCT_EXAMPLE.id,
			salePrice: 999,
			units: 10000,
			perCustomerLimit: 2,
			unitsLeft: 7412
		}
	],
	createdAt: "2026-11-30T18:00:00.000Z",
	updatedAt: "2026-11-30T18:00:00.000Z"
};
const ITEM_ID_NOTE: JsonSchema = {
	description:
		"The line's variant id, or its product's id (a product without options: the same id; with options: the " +
		"product's one line in the cart)"
};
const CART_ITEM_EXAMPLE = {
	productId: PRODUCT_EXAMPLE.id,
	variantId: PRODUCT_EXAMPLE.id,
	sku: PRODUCT_EXAMPLE.sku,
	name: PRODUCT_EXAMPLE.name,
	options: {},
	unitPrice: 1299,
	quantity: 2,
	lineTotal: 2598
};
const CART_EXAMPLE = {
	items: [CART_ITEM_EXAMPLE],
	subtotal: 2598,
	discountTotal: 260,
	shippingTotal: 0,
	taxTotal: 0,
	total: 2338,
	currency: "USD",
	discount: { code: "WELCOME10", amount: 260 }
};

/**
 * The named schemas of every answer: entities and lists. Each carries an example, and generated clients get one
 * named type per entry (`components["schemas"]["Product"]`).
 */
export const SCHEMAS: Record<SchemaName, JsonSchema> = {
	User: {
		type: "object",
		description: "A user as the user sees it: never a password hash or a token",
		required: ["id", "email", "name", "roles", "createdAt"],
		properties: {
			id: STR,
			email: STR,
			name: STR,
			roles: {
				type: "array",
				items: { enum: ["customer", "admin"] },
				minItems: 1,
				uniqueItems: true
			},
			createdAt: TIME
		},
		examples: [USER_EXAMPLE]
	},
	AdminUser: {
		description: "A user as an admin sees it: the profile and whether the account is disabled",
		allOf: [ref("User"), { type: "object", properties: { disabled: { type: "boolean" } } }],
		examples: [ADMIN_USER_EXAMPLE]
	},
	UserPage: pageOf("AdminUser", "A page of users, newest first", ADMIN_USER_EXAMPLE),
	AuthTokens: {
		type: "object",
		description:
			"A signed-in session: the user, a short-lived access token and a one-use refresh token",
		required: ["user", "accessToken", "refreshToken", "tokenType", "expiresIn"],
		properties: {
			user: ref("User"),
			accessToken: {
				type: "string",
				description: "JWT RS256; send as `Authorization: Bearer <accessToken>`"
			},
			refreshToken: {
				type: "string",
				description: "Opaque; works once (rotated on every refresh)"
			},
			tokenType: { const: "Bearer" },
			expiresIn: {
				type: "integer",
				description: "Seconds until the access token expires (at most 900)"
			}
		},
		examples: [TOKENS_EXAMPLE]
	},
	LoginTokens: {
		description:
			"A login's answer: the session, and the device token that exempts this client from its address's throttling",
		allOf: [
			ref("AuthTokens"),
			{
				type: "object",
				required: ["deviceToken"],
				properties: {
					deviceToken: {
						type: "string",
						description:
							"Proof of this successful login from this client (not an access token): send it back as " +
							"`deviceToken` with later logins of this account, so failures of others from the same " +
							"address never lock it out"
					}
				}
			}
		],
		examples: [{ ...TOKENS_EXAMPLE, deviceToken: "dt_Qm8Xw2Ls5Kp9Ra1Vb4Nc7Yz0" }]
	},
	Image: {
		type: "object",
		description: "A product image",
		required: ["id", "url"],
		properties: {
			id: STR,
			url: {
				type: "string",
				format: "uri",
				description: "Absolute, on the PUBLIC_URL setting; fetchable without a token"
			}
		},
		examples: [IMAGE_EXAMPLE]
	},
	ProductOption: {
		type: "object",
		description: "One of a product's options and its values",
		required: ["name", "values"],
		properties: { name: STR, values: { type: "array", items: STR } },
		examples: [{ name: "size", values: ["S", "M", "L"] }]
	},
	Variant: {
		type: "object",
		description:
			"One combination of a product's option values, with its own sku, price and stock. A product without " +
			"options has one variant, its default one, whose id is the product's id and whose `options` is `{}`",
		required: ["id", "sku", "options", "price", "currency", "available", "images"],
		properties: {
			id: STR,
			sku: STR,
			options: {
				type: "object",
				additionalProperties: STR,
				description: "Option name → value; `{}` for a default variant"
			},
			price: MONEY,
			currency: CURRENCY,
			available: { type: "integer", description: "Units of this variant that can be bought now" },
			images: {
				type: "array",
				items: ref("Image"),
				description: "The product's images this variant shows"
			}
		},
		examples: [VARIANT_EXAMPLE]
	},
	Product: {
		type: "object",
		description:
			"A product on sale, with the units that can be bought now. `price` is the lowest price of its variants " +
			"on sale and `available` their units together; `variants` lists the variants on sale",
		required: [
			"id",
			"sku",
			"slug",
			"name",
			"price",
			"currency",
			"category",
			"images",
			"available",
			"options",
			"variants",
			"priceRange"
		],
		properties: {
			id: STR,
			sku: STR,
			slug: {
				type: "string",
				description: "Made from the name, unique; usable in place of the id"
			},
			name: STR,
			description: STR,
			price: MONEY,
			currency: CURRENCY,
			category: STR,
			images: { type: "array", items: ref("Image") },
			available: {
				type: "integer",
				description: "Units that can be bought now, all variants together"
			},
			options: { type: "array", items: ref("ProductOption"), description: "`[]` without options" },
			variants: { type: "array", items: ref("Variant") },
			priceRange: {
				type: "object",
				required: ["min", "max"],
				properties: { min: MONEY, max: MONEY },
				description: "The lowest and highest price of the variants on sale"
			},
			createdAt: TIME,
			updatedAt: TIME
		},
		examples: [PRODUCT_EXAMPLE]
	},
	ProductPage: pageOf("Product", "A page of products", PRODUCT_EXAMPLE),
	Category: {
		type: "object",
		description: "A category and the number of products on sale in it",
		required: ["name", "count"],
		properties: { name: STR, count: { type: "integer", minimum: 0 } },
		examples: [{ name: "kitchen", count: 12 }]
	},
	CategoryList: {
		type: "array",
		description: "Every category with products on sale, by name",
		items: ref("Category"),
		examples: [
			[
				{ name: "books", count: 7 },
				{ name: "kitchen", count: 12 }
			]
		]
	},
	InventoryLevel: {
		type: "object",
		description:
			"A variant's stock: `available = onHand - reserved`, never below 0. A product without options has one " +
			"variant, whose id (`variantId`) is the product's",
		required: ["productId", "variantId", "onHand", "reserved", "available"],
		properties: {
			productId: STR,
			variantId: STR,
			onHand: { type: "integer", description: "Units in the warehouse" },
			reserved: { type: "integer", description: "Units held for unpaid orders" },
			available: { type: "integer", description: "Units that can be bought now" }
		},
		examples: [
			{
				productId: PRODUCT_EXAMPLE.id,
				variantId: PRODUCT_EXAMPLE.id,
				onHand: 50,
				reserved: 8,
				available: 42
			}
		]
	},
	SaleItem: {
		type: "object",
		description:
			"A variant of a sale (a product without options: its one variant, whose id is the product's): its " +
			"sale price (in the product's currency), the units allotted, the most one customer may hold or buy, " +
			"and the units not yet held or sold",
		required: ["productId", "variantId", "salePrice", "units", "perCustomerLimit", "unitsLeft"],
		properties: {
			productId: STR,
			variantId: STR,
			salePrice: MONEY,
			units: { type: "integer", minimum: 1 },
			perCustomerLimit: { type: "integer", minimum: 1 },
			unitsLeft: { type: "integer", minimum: 0 }
		},
		examples: [SALE_EXAMPLE.items[0]]
	},
	Sale: {
		type: "object",
		description:
			"A sale. From its creation until `startsAt` its products are kept back (checkout is 409 " +
			"SALE_NOT_STARTED); while `live` they sell only from the sale's units at the sale price; after `endsAt` " +
			"at their normal price. An unpaid order of a sale item expires after `holdSeconds` and its units go back " +
			"to the sale.",
		required: [
			"id",
			"name",
			"startsAt",
			"endsAt",
			"holdSeconds",
			"status",
			"items",
			"createdAt",
			"updatedAt"
		],
		properties: {
			id: STR,
			name: STR,
			startsAt: TIME,
			endsAt: TIME,
			holdSeconds: {
				type: "integer",
				description: "How long an unpaid order of a sale item holds its units"
			},
			status: { enum: ["scheduled", "live", "ended"] },
			items: { type: "array", items: ref("SaleItem") },
			createdAt: TIME,
			updatedAt: TIME
		},
		examples: [SALE_EXAMPLE]
	},
	SalePage: pageOf("Sale", "A page of sales, latest start first", SALE_EXAMPLE),
	CartItem: {
		type: "object",
		description:
			"A line of the cart: one variant (a product without options: its default one, whose id is the " +
			"product's) at its current price",
		required: [
			"productId",
			"variantId",
			"sku",
			"name",
			"options",
			"unitPrice",
			"quantity",
			"lineTotal"
		],
		properties: {
			productId: STR,
			variantId: STR,
			sku: STR,
			name: STR,
			options: {
				type: "object",
				additionalProperties: STR,
				description: "The variant's option values; `{}` for a product without options"
			},

			unitPrice: MONEY,
			quantity: QUANTITY,
			lineTotal: MONEY,
			saleId: {
				type: "string",
				description:
					"Present when the line is priced by a live sale (`unitPrice` is its sale price)"
			}
		},
		examples: [CART_ITEM_EXAMPLE]
	},
	Cart: {
		type: "object",
		description:
			"The caller's cart; prices are current catalog prices, the applied code and the tax priced again at " +
			"every answer (tax for the TAX_DEFAULT_COUNTRY setting until checkout names the address; no shipping yet)",
		required: ["items", "currency", ...TOTALS_REQUIRED],
		properties: {
			items: { type: "array", items: ref("CartItem") },
			...TOTALS_PROPERTIES,
			currency: CURRENCY,
			discount: {
				type: "object",
				description:
					"The applied discount code and what it takes off; `reason` (a DISCOUNT_INVALID reason) when it " +
					"cannot be used on the cart as it is now, and then it takes nothing off",
				required: ["code", "amount"],
				properties: {
					code: STR,
					amount: MONEY,
					reason: {
						enum: [
							"unknown",
							"expired",
							"not_started",
							"exhausted",
							"customer_limit",
							"min_subtotal",
							"not_applicable"
						]
					}
				}
			}
		},
		examples: [CART_EXAMPLE]
	},
	Address: {
		type: "object",
		description: "A shipping address",
		required: ["name", "line1", "city", "postalCode", "country"],
		properties: {
			name: { type: "string", minLength: 1, maxLength: 100 },
			line1: { type: "string", minLength: 1, maxLength: 200 },
			line2: { type: "string", maxLength: 200 },
			city: { type: "string", minLength: 1, maxLength: 100 },
			postalCode: { type: "string", pattern: "^[A-Za-z0-9 -]{1,20}$" },
			country: {
				type: "string",
				pattern: "^[A-Za-z]{2}$",
				description: COUNTRY_DESCRIPTION
			}
		},
		examples: [ADDRESS_EXAMPLE]
	},
	SavedAddress: {
		description: "One of the caller's saved addresses, usable at checkout as `shippingAddressId`",
		allOf: [
			ref("Address"),
			{
				type: "object",
				required: ["id", "createdAt", "updatedAt"],
				properties: {
					id: STR,
					label: { type: "string", minLength: 1, maxLength: 50 },
					createdAt: TIME,
					updatedAt: TIME
				}
			}
		],
		examples: [SAVED_ADDRESS_EXAMPLE]
	},
	SavedAddressList: {
		type: "array",
		description: "The caller's saved addresses, oldest first (at most 20)",
		items: ref("SavedAddress"),
		examples: [[SAVED_ADDRESS_EXAMPLE]]
	},
	Discount: {
		type: "object",
		description:
			"A discount code. `percentage`: `value` whole percent (1..100) off each line it applies to; `fixed`: " +
			"`value` minor units of `currency` off the lines it applies to. It applies to the lines of `productIds` " +
			"and of `categories` (every line when neither is set), from `startsAt` until `endsAt`, to carts whose " +
			"subtotal reaches `minSubtotal`, at most `usageLimit` orders in all and `perCustomerLimit` per customer " +
			"(counted at checkout; an order cancelled, expired or refunded gives its use back)",
		required: ["id", "code", "type", "value", "used", "createdAt", "updatedAt"],
		properties: {
			id: STR,
			code: {
				type: "string",
				pattern: "^[A-Z0-9_-]{3,32}$",
				description: "Upper-cased; customers type it in any case"
			},
			type: { enum: ["percentage", "fixed"] },
			value: { type: "integer", minimum: 1 },
			currency: CURRENCY,
			minSubtotal: MONEY,
			startsAt: TIME,
			endsAt: TIME,
			productIds: { type: "array", items: STR },
			categories: { type: "array", items: STR },
			usageLimit: { type: "integer", minimum: 1 },
			perCustomerLimit: { type: "integer", minimum: 1 },
			used: { type: "integer", minimum: 0, description: "Orders holding a use of the code now" },
			createdAt: TIME,
			updatedAt: TIME
		},
		examples: [DISCOUNT_EXAMPLE]
	},
	DiscountPage: pageOf("Discount", "A page of discount codes, newest first", DISCOUNT_EXAMPLE),
	ShippingMethod: {
		type: "object",
		description:
			"A way to ship to some countries, at `price` (in `currency`), free once the cart's subtotal after " +
			"discount reaches `freeAbove`",
		required: ["id", "name", "price", "currency", "countries"],
		properties: {
			id: STR,
			name: STR,
			price: MONEY,
			currency: CURRENCY,
			countries: { type: "array", items: { type: "string", pattern: "^[A-Z]{2}$" } },
			freeAbove: MONEY,
			createdAt: TIME,
			updatedAt: TIME
		},
		examples: [SHIPPING_EXAMPLE]
	},
	ShippingMethodList: {
		type: "array",
		description: "Shipping methods, cheapest first",
		items: ref("ShippingMethod"),
		examples: [[SHIPPING_EXAMPLE]]
	},
	TaxRate: {
		type: "object",
		description:
			"A tax rate in basis points (2000 = 20%) for a country, or for one category of products there; a " +
			"category without its own rate, and shipping, take the country's",
		required: ["country", "rate"],
		properties: {
			country: { type: "string", pattern: "^[A-Z]{2}$" },
			category: STR,
			rate: { type: "integer", minimum: 0, maximum: 10000 }
		},
		examples: [{ country: "GB", rate: 2000 }]
	},
	TaxRateList: {
		type: "array",
		description: "Every tax rate, by country then category",
		items: ref("TaxRate"),
		examples: [
			[
				{ country: "DE", rate: 1900 },
				{ country: "DE", category: "books", rate: 700 },
				{ country: "GB", rate: 2000 }
			]
		]
	},
	OrderStatus: {
		description:
			"`pending_payment` → `paid` → `shipped` → `delivered`; `pending_payment` → `cancelled` or `expired`; " +
			"`paid` → `refunded`",
		enum: ["pending_payment", "paid", "shipped", "delivered", "cancelled", "expired", "refunded"],
		examples: ["paid"]
	},
	OrderItem: {
		type: "object",
		description:
			"A line of an order as it was sold: the variant, its sku, the product's name and the option values " +
			"then, at the price it was bought at (later catalog changes leave it alone)",
		properties: {
			productId: STR,
			variantId: STR,
			sku: STR,
			name: STR,
			options: {
				type: "object",
				additionalProperties: STR,
				description: "The variant's option values; `{}` for a product without options"
			},

			unitPrice: MONEY,
			quantity: QUANTITY,
			lineTotal: MONEY,
			saleId: {
				type: "string",
				description: "Present when the line was bought in a sale, at its sale price"
			}
		},
		examples: [ORDER_ITEM_EXAMPLE]
	},
	Payment: {
		type: "object",
		description: "An order's payment: `succeeded`, or `refunded` after a refund",
		properties: {
			id: STR,
			status: { enum: ["succeeded", "refunded"] },
			amount: MONEY
		},
		examples: [PAYMENT_EXAMPLE]
	},
	Order: {
		type: "object",
		description: "An order, built from the cart at checkout",
		required: ["id", "status", "items", ...TOTALS_REQUIRED, "currency", "expiresAt", "createdAt"],
		properties: {
			id: STR,
			userId: STR,
			status: ref("OrderStatus"),
			items: { type: "array", items: ref("OrderItem") },
			...TOTALS_PROPERTIES,
			currency: CURRENCY,
			shippingAddress: ref("Address"),
			discount: {
				type: "object",
				description: "The discount code the order redeemed, and what it took off",
				required: ["code", "amount"],
				properties: { code: STR, amount: MONEY }
			},
			shippingMethod: {
				type: "object",
				description: "The shipping method chosen at checkout, at the price charged",
				required: ["id", "name", "price"],
				properties: { id: STR, name: STR, price: MONEY }
			},
			expiresAt: {
				type: "string",
				format: "date-time",
				description: "When an unpaid order expires and its stock goes back"
			},
			createdAt: TIME,
			updatedAt: TIME,
			payment: { ...ref("Payment"), description: "Present once paid" }
		},
		examples: [ORDER_EXAMPLE]
	},
	OrderPage: pageOf("Order", "A page of orders, newest first", ORDER_EXAMPLE),
	Health: {
		type: "object",
		description: "This gateway node: alive, since when, which version",
		required: ["status", "uptime", "version", "nodeID"],
		properties: {
			status: { const: "ok" },
			uptime: { type: "number", description: "Seconds since the process started" },
			version: STR,
			nodeID: STR
		},
		examples: [{ status: "ok", uptime: 3600.5, version: "0.1.0", nodeID: "gateway-1" }]
	},
	Liveness: {
		type: "object",
		description: "The process runs",
		properties: { status: { const: "ok" } },
		examples: [{ status: "ok" }]
	},
	Readiness: {
		type: "object",
		description: "Whether this cluster can serve, and if not what is missing",
		properties: {
			status: { enum: ["ok", "unavailable"] },
			missing: {
				type: "array",
				items: STR,
				description:
					"`transporter`, `api` (draining) or the names of required services that are down"
			}
		},
		examples: [{ status: "ok" }, { status: "unavailable", missing: ["orders"] }]
	},
	BackendHealth: {
		type: "object",
		description: "Each required backend service, up or down",
		required: ["status", "services"],
		properties: {
			status: { enum: ["ok", "degraded"] },
			services: { type: "object", additionalProperties: { enum: ["up", "down"] } }
		},
		examples: [{ status: "degraded", services: { products: "up", orders: "down" } }]
	},
	OpenApiDocument: {
		type: "object",
		description: "An OpenAPI 3.1 document",
		required: ["openapi", "info", "paths"],
		properties: {
			openapi: { type: "string", pattern: "^3\\.1\\." },
			info: { type: "object" },
			paths: { type: "object" }
		}
	},
	Error: {
		type: "object",
		description:
			"Every error answer: Moleculer's error shape plus the request id. The HTTP status equals `code`; " +
			"branch on `type`, which is stable.",
		required: ["name", "message", "code", "type", "requestId"],
		properties: {
			name: { type: "string", examples: ["ValidationError"] },
			message: { type: "string" },
			code: { type: "integer", description: "Equals the HTTP status." },
			type: { type: "string", examples: ["VALIDATION_ERROR"] },
			data: { description: "Details: for VALIDATION_ERROR a list of { field, type, message }." },
			requestId: { type: "string" }
		},
		examples: [
			{
				name: "ValidationError",
				message: "Parameters validation error!",
				code: 422,
				type: "VALIDATION_ERROR",
				data: [
					{
						field: "quantity",
						type: "numberMax",
						message: "The 'quantity' field must be less than or equal to 99."
					}
				],
				requestId: "3b2f6c1e-8d4a-4f7b-9c2d-1a5e7f9b0c3d"
			}
		]
	}
};

/** Words for derived request parameters (their types and limits are the actions'). */
const EMAIL_NOTE: JsonSchema = {
	description:
		"Trimmed, NFKC-normalised (full-width letters become plain ones) and lower-cased; an address holding an " +
		"invisible or format character (zero-width, soft hyphen, bidi controls) is refused with 422"
};
const MONEY_NOTE: JsonSchema = { description: MONEY.description };
/** What a client may send as a currency (lib/validation currencyRule); answers always hold the upper-case code. */
const CURRENCY_NOTE: JsonSchema = { description: CURRENCY_DESCRIPTION };

const IDEMPOTENCY_HEADER = {
	"Idempotency-Key": {
		required: true,
		description:
			"1-255 visible characters, scoped per user, kept 24 h. Same key + same body: the same answer with " +
			"`Idempotent-Replayed: true`; same key + another body: 422 IDEMPOTENCY_KEY_REUSED; while the first is " +
			"running: 409 IDEMPOTENCY_KEY_IN_USE. Missing or malformed: 400 IDEMPOTENCY_KEY_REQUIRED.",
		schema: { type: "string", minLength: 1, maxLength: 255 }
	}
};
const IDEMPOTENCY_400 =
	"The `Idempotency-Key` header is missing or malformed (IDEMPOTENCY_KEY_REQUIRED)";
const ORDER_STATE_409 = "The order is not in a state that allows this (INVALID_ORDER_STATE)";

/** Cancel takes a key too, optionally: a retry of a cancel that went through is then answered, not refused. */
const OPTIONAL_IDEMPOTENCY_HEADER = {
	"Idempotency-Key": {
		...IDEMPOTENCY_HEADER["Idempotency-Key"],
		required: false,
		description:
			"Optional. With it, a retry with the same key of a cancel that went through (its answer lost) gets " +
			"that answer with `Idempotent-Replayed: true`, instead of 409 for the state it left; rules as on pay."
	}
};

/** Operational endpoints, at the root: no auth, no body. */
export const OPS_OPERATIONS: Operation[] = [
	{
		method: "GET",
		path: "/health",
		handler: "health",
		access: "public",
		tag: "Operations",
		summary: "Gateway health",
		description: "Liveness of this gateway node, with its uptime, version and node id.",
		response: ref("Health")
	},
	{
		method: "GET",
		path: "/live",
		handler: "live",
		access: "public",
		tag: "Operations",
		summary: "Liveness",
		description: "Answers 200 while the process runs (a liveness probe).",
		response: ref("Liveness")
	},
	{
		method: "GET",
		path: "/ready",
		handler: "ready",
		access: "public",
		tag: "Operations",
		summary: "Readiness",
		description:
			"200 when the transporter is connected and every required service is available with its store " +
			'reachable; otherwise 503 with `{ status: "unavailable", missing }` naming what is missing.',
		answer: "Ready",
		errors: { 503: "Not ready: `missing` names what is missing" },
		// The readiness answer, or the Error shape when the check itself could not run.
		errorBodies: { 503: { anyOf: [ref("Readiness"), ref("Error")] } },
		response: ref("Readiness")
	},
	{
		method: "GET",
		path: "/metrics",
		handler: "metrics",
		access: "public",
		tag: "Operations",
		summary: "Prometheus metrics",
		description:
			"Prometheus text exposition of this node's metrics: Moleculer's, the process's, the HTTP metrics " +
			"(`http_requests_total`, `http_request_duration_seconds`) and the `flashmart_` business metrics.",
		contentType: "text/plain; version=0.0.4",
		response: { type: "string" }
	}
];

/** Everything under /api. Later features add their operations here. */
export const API_OPERATIONS: Operation[] = [
	{
		method: "GET",
		path: "/health",
		handler: "apiHealth",
		access: "public",
		tag: "Operations",
		summary: "Backend health",
		description:
			"The backend view: each required service up (registered and its store answering) or down. `status` " +
			"is `degraded` while any is down; the answer is 200 either way.",
		response: ref("BackendHealth")
	},
	{
		method: "POST",
		path: "/auth/register",
		action: "users.register",
		notes: { email: EMAIL_NOTE },
		tag: "Accounts",
		summary: "Register",
		description:
			"Create a customer account and sign in. Fields other than these are ignored (never `roles`): every " +
			"account registered here is a customer. The password is 8-128 characters.",
		status: 201,
		answer: "Registered and signed in",
		response: ref("AuthTokens"),
		errors: {
			409: "The email is already registered (EMAIL_TAKEN)",
			429: "Too many registrations from this client address (RATE_LIMIT_EXCEEDED); see Retry-After"
		}
	},
	{
		method: "POST",
		path: "/auth/login",
		action: "users.login",
		notes: {
			email: EMAIL_NOTE,
			deviceToken: {
				description: "The `deviceToken` an earlier successful login of this account answered"
			}
		},
		tag: "Accounts",
		summary: "Sign in",
		description:
			"Sign in with email and password. Unknown email, wrong password and a disabled account get the same " +
			"401 INVALID_CREDENTIALS. 429 after LOGIN_MAX_FAILURES failures on the account within " +
			"LOGIN_FAILURE_WINDOW (a client with the account's device token counts only its own), or once " +
			"LOGIN_ADDRESS_MAX_ACCOUNTS accounts failed from the client's address within LOGIN_ADDRESS_WINDOW " +
			"(password spraying; device tokens exempt).",
		answer: "Signed in",
		response: ref("LoginTokens"),
		errors: {
			401: "Unknown email, wrong password or disabled account (INVALID_CREDENTIALS)",
			429: "Too many failed logins for this account or from this address (RATE_LIMIT_EXCEEDED)"
		}
	},
	{
		method: "POST",
		path: "/auth/refresh",
		action: "users.refresh",
		tag: "Accounts",
		summary: "Refresh tokens",
		description:
			"New tokens for a refresh token. Each refresh token works once; presenting a used one revokes its whole " +
			"family (401 INVALID_TOKEN). A disabled user's refresh fails at once.",
		answer: "A new session",
		response: ref("AuthTokens"),
		errors: { 401: "Unknown, used, revoked or expired refresh token (INVALID_TOKEN)" }
	},
	{
		method: "POST",
		path: "/auth/logout",
		action: "users.logout",
		tag: "Accounts",
		summary: "Sign out",
		description:
			"End the session of this refresh token: it and its family stop working. 204 whether or not it was known.",
		status: 204
	},
	{
		method: "GET",
		path: "/users/me",
		action: "users.me",
		tag: "Accounts",
		summary: "My profile",
		description: "The caller's profile: never a password hash or a token.",
		response: ref("User")
	},
	{
		method: "PATCH",
		path: "/users/me",
		action: "users.updateMe",
		tag: "Accounts",
		summary: "Update my profile",
		description:
			"Change the caller's name and/or password. A new password needs `currentPassword` (422 naming it when " +
			"missing or wrong) and ends every other session.",
		answer: "The updated profile",
		response: ref("User")
	},
	{
		method: "GET",
		path: "/users/me/addresses",
		action: "users.listAddresses",
		tag: "Accounts",
		summary: "My saved addresses",
		description: "The caller's saved addresses, oldest first.",
		response: ref("SavedAddressList")
	},
	{
		method: "POST",
		path: "/users/me/addresses",
		action: "users.addAddress",
		notes: { country: { description: COUNTRY_DESCRIPTION } },
		tag: "Accounts",
		summary: "Save an address",
		description:
			"Save an address (the checkout address fields and an optional `label`), usable at checkout as " +
			"`shippingAddressId`. At most 20 per customer.",
		status: 201,
		answer: "The saved address",
		response: ref("SavedAddress"),
		errors: { 422: "Invalid fields, or 20 addresses saved already (VALIDATION_ERROR)" }
	},
	{
		method: "PATCH",
		path: "/users/me/addresses/:id",
		action: "users.updateAddress",
		tag: "Accounts",
		summary: "Change a saved address",
		description:
			"Fields not sent stay. Orders already placed keep the address they were shipped to.",
		response: ref("SavedAddress"),
		errors: {
			404: "No such address of the caller's (NOT_FOUND)",
			422: "Invalid fields (VALIDATION_ERROR)"
		}
	},
	{
		method: "DELETE",
		path: "/users/me/addresses/:id",
		action: "users.removeAddress",
		tag: "Accounts",
		summary: "Delete a saved address",
		description: "Orders already placed keep their copy of it.",
		status: 204,
		errors: { 404: "No such address of the caller's (NOT_FOUND)" }
	},
	{
		method: "GET",
		path: "/users",
		action: "users.list",
		tag: "Accounts",
		summary: "List users",
		description: "Admin: all users, newest first, a page at a time.",
		response: ref("UserPage")
	},
	{
		method: "PATCH",
		path: "/users/:id",
		action: "users.update",
		tag: "Accounts",
		summary: "Update a user",
		description:
			"Admin: set roles and/or disable an account. A disabled user cannot sign in or refresh; access tokens " +
			"already issued expire within 15 minutes. Admins cannot demote or disable themselves (422).",
		answer: "The updated user",
		response: ref("AdminUser"),
		errors: { 404: "No such user (NOT_FOUND)" }
	},
	{
		method: "GET",
		path: "/products",
		action: "products.list",
		cached: true,
		tag: "Catalog",
		summary: "List products",
		description:
			"Products on sale (archived ones never appear), filtered, sorted and a page at a time. `q` searches " +
			"name, description and sku (plain text, not a pattern); prices are in minor units. Only these " +
			"parameters exist; any other is ignored.",
		response: ref("ProductPage")
	},
	{
		method: "GET",
		path: "/products/:id",
		action: "products.get",
		pathParams: { id: "idOrSlug" },
		notes: { idOrSlug: { description: "The product's id, or its slug" } },
		cached: true,
		tag: "Catalog",
		summary: "Get a product",
		description:
			"One product by id or by slug (`/api/products/blue-enamel-mug`), with the units available now. " +
			"Archived products answer 404.",
		response: ref("Product"),
		errors: { 404: "No such product, or archived (NOT_FOUND)" }
	},
	{
		method: "GET",
		path: "/categories",
		action: "products.categories",
		cached: true,
		tag: "Catalog",
		summary: "List categories",
		description: "Categories with the number of products on sale in each, by name.",
		response: ref("CategoryList")
	},
	{
		method: "POST",
		path: "/products",
		action: "products.create",
		notes: { price: MONEY_NOTE, currency: CURRENCY_NOTE },
		tag: "Catalog",
		summary: "Create a product",
		description:
			"Admin: create a product. The slug is made from the name (made unique). `stock` sets the units on hand. " +
			"`price` is at least 1 minor unit: a price of 0 is 422 VALIDATION_ERROR (FlashMart sells nothing for " +
			"free, so every order has something to pay).\n\n" +
			"A product with `options` has no default variant: it is sold by its `variants`, each naming one value " +
			"of every option, with its own sku, price (the product's `price` when absent) and stock (`stock` of " +
			"the product is then 422). Without `options` the product has one default variant whose id is the " +
			"product's id, so clients that send only product ids keep working.",
		status: 201,
		answer: "The new product",
		response: ref("Product"),
		errors: {
			409:
				"The sku is taken by a product or variant (SKU_TAKEN), two variants have the same option values " +
				"(VARIANT_EXISTS), or no unique slug could be made (SLUG_TAKEN)"
		}
	},
	{
		method: "PATCH",
		path: "/products/:id",
		action: "products.update",
		notes: {
			id: { description: "The product's id (not its slug)" },
			price: MONEY_NOTE,
			currency: CURRENCY_NOTE
		},
		tag: "Catalog",
		summary: "Update a product",
		description:
			"Admin: change a product (name, description, price, currency, category, sku, options). `price` is at " +
			"least 1 minor unit: 0 is 422 VALIDATION_ERROR. `price` and `sku` of a product without options are its " +
			"default variant's; a product with options has a price per variant (`price` is then 409 " +
			"VARIANT_REQUIRED).\n\n" +
			"`options` replaces the options. Values may be added at any time; an option or value a variant on " +
			"sale uses cannot be removed (409 OPTION_IN_USE: archive the variant first). Giving a product without " +
			"options some takes its default variant off sale (its stock and holds stay for the orders that have " +
			"them); taking every option away (`[]`, with no variant on sale) puts the default variant back.",
		answer: "The updated product",
		response: ref("Product"),
		errors: {
			404: "No such product, or archived (NOT_FOUND)",
			409:
				"Another product or variant has this sku (SKU_TAKEN), a variant on sale uses an option or value " +
				"the change removes (OPTION_IN_USE), or `price` on a product with options (VARIANT_REQUIRED)"
		}
	},
	{
		method: "DELETE",
		path: "/products/:id",
		action: "products.archive",
		notes: { id: { description: "The product's id (not its slug)" } },
		tag: "Catalog",
		summary: "Archive a product",
		description:
			"Admin: archive a product: gone from listings and reads, kept for existing orders.",
		status: 204,
		errors: { 404: "No such product, or already archived (NOT_FOUND)" }
	},
	{
		method: "POST",
		path: "/products/:id/variants",
		action: "products.addVariant",
		notes: { id: { description: "The product's id (not its slug)" }, price: MONEY_NOTE },
		tag: "Catalog",
		summary: "Add a variant",
		description:
			"Admin: add a variant to a product with options: one value of each option (`options`), its own sku " +
			"(unique across the catalog), price (the product's when absent), stock (0 when absent) and, " +
			"optionally, which of the product's images it shows (`imageIds`).",
		status: 201,
		answer: "The new variant",
		response: ref("Variant"),
		errors: {
			404: "No such product, or archived (NOT_FOUND)",
			409:
				"The sku is taken (SKU_TAKEN), another variant on sale has these option values " +
				"(VARIANT_EXISTS), or the product has no options (OPTIONS_REQUIRED)"
		}
	},
	{
		method: "PATCH",
		path: "/products/:id/variants/:variantId",
		action: "products.updateVariant",
		notes: { id: { description: "The product's id (not its slug)" }, price: MONEY_NOTE },
		tag: "Catalog",
		summary: "Update a variant",
		description:
			"Admin: change a variant's sku, option values, price or images. The default variant's sku and price " +
			"are the product's.",
		answer: "The updated variant",
		response: ref("Variant"),
		errors: {
			404: "No such product or variant, or archived (NOT_FOUND)",
			409: "The sku is taken (SKU_TAKEN), or another variant has these option values (VARIANT_EXISTS)"
		}
	},
	{
		method: "DELETE",
		path: "/products/:id/variants/:variantId",
		action: "products.archiveVariant",
		notes: { id: { description: "The product's id (not its slug)" } },
		tag: "Catalog",
		summary: "Archive a variant",
		description:
			"Admin: archive a variant: gone from the product's answers and from new carts, kept for existing " +
			"orders. A product without options keeps its one variant (409 DEFAULT_VARIANT: archive the product).",
		status: 204,
		errors: {
			404: "No such product or variant, or already archived (NOT_FOUND)",
			409: "The product's default variant (DEFAULT_VARIANT)"
		}
	},
	{
		method: "POST",
		path: "/products/:id/images",
		handler: "upload",
		action: "media.upload",
		pathParams: { id: "productId" },
		gatewayParams: ["filename", "declaredType"],
		requestContent: {
			"multipart/form-data": {
				type: "object",
				required: ["file"],
				properties: { file: { type: "string", contentMediaType: "application/octet-stream" } }
			},
			"image/*": {
				type: "string",
				contentMediaType: "image/*",
				description: "The raw image as the body"
			}
		},
		tag: "Catalog",
		summary: "Add a product image",
		description:
			"Admin: add an image, as multipart/form-data field `file` or as the raw body. JPEG, PNG, WebP or GIF " +
			"(decided by the bytes, not the name or the declared type), at most 5 MiB. Stored in the object store.",
		status: 201,
		answer: "The new image",
		response: ref("Image"),
		errors: {
			404: "No such product (NOT_FOUND)",
			413: "The image is over 5 MiB (PAYLOAD_TOO_LARGE)",
			415: "Not a JPEG, PNG, WebP or GIF (UNSUPPORTED_MEDIA_TYPE)"
		}
	},
	{
		method: "DELETE",
		path: "/products/:id/images/:imageId",
		action: "media.remove",
		tag: "Catalog",
		summary: "Remove a product image",
		description: "Admin: remove an image from a product and from the object store.",
		status: 204,
		errors: { 404: "No such product or image (NOT_FOUND)" }
	},
	{
		method: "GET",
		path: "/images/:imageId",
		action: "media.get",
		tag: "Catalog",
		summary: "Get an image",
		description:
			"An image's bytes, with its content type and long-lived cache headers. No token needed: this is the " +
			"`url` of a product's image.",
		answer: "The image",
		contentType: "image/*",
		response: { type: "string", contentMediaType: "image/*" },
		errors: { 404: "No such image (NOT_FOUND)" }
	},
	{
		method: "GET",
		path: "/inventory/:productId",
		action: "inventory.get",
		tag: "Inventory",
		summary: "Get a stock level",
		description:
			"Admin: the stock of a product's default variant (a product without options has one, whose id is the " +
			"product's); `available = onHand - reserved`. A product with options has stock per variant: " +
			"`/api/inventory/variants/{variantId}`.",
		response: ref("InventoryLevel"),
		errors: {
			404: "No stock level for this product (NOT_FOUND)",
			409: "The product has options: name a variant (VARIANT_REQUIRED, its variant ids in `data`)"
		}
	},
	{
		method: "GET",
		path: "/inventory/variants/:variantId",
		action: "inventory.getVariant",
		tag: "Inventory",
		summary: "Get a variant's stock level",
		description: "Admin: the stock of one variant; `available = onHand - reserved`.",
		response: ref("InventoryLevel"),
		errors: { 404: "No stock level for this variant (NOT_FOUND)" }
	},
	{
		method: "PUT",
		path: "/inventory/variants/:variantId",
		action: "inventory.setVariant",
		tag: "Inventory",
		summary: "Set a variant's stock level",
		description:
			"Admin: set one variant's units on hand. Refused with 409 if that would drop below the units reserved " +
			"for unpaid orders.",
		answer: "The new stock level",
		response: ref("InventoryLevel"),
		errors: {
			404: "No stock level for this variant (NOT_FOUND)",
			409: "`onHand` would drop below the units reserved (STOCK_BELOW_RESERVED), or the stock kept changing (STOCK_CHANGED: retry)"
		}
	},
	{
		method: "PUT",
		path: "/inventory/:productId",
		action: "inventory.set",
		tag: "Inventory",
		summary: "Set a stock level",
		description:
			"Admin: set the units on hand. Refused with 409 if that would drop below the units reserved for " +
			"unpaid orders.",
		answer: "The new stock level",
		response: ref("InventoryLevel"),
		errors: {
			404: "No stock level for this product (NOT_FOUND)",
			409: "`onHand` would drop below the units reserved (STOCK_BELOW_RESERVED), the stock kept changing (STOCK_CHANGED: retry), or the product has options (VARIANT_REQUIRED)"
		}
	},
	{
		method: "POST",
		path: "/sales",
		action: "inventory.createSale",
		tag: "Sales",
		summary: "Create a sale",
		description:
			"Admin: a sale of some products between `startsAt` and `endsAt`. Each item names a product, its sale " +
			"price (in the product's currency), the units allotted to the sale and the most one customer may hold " +
			"or buy (`perCustomerLimit`, counted across all their carts, orders and nodes). `holdSeconds` (default " +
			"120) is how long an unpaid order of a sale item keeps its units. From creation until the start the " +
			"products are kept back for the sale.",
		status: 201,
		answer: "The new sale",
		response: ref("Sale"),
		errors: {
			404: "A product inventory does not know (NOT_FOUND)",
			409: "A product is already in a sale whose window overlaps (SALE_OVERLAP), or an item names only a product with options (VARIANT_REQUIRED)",
			422: "Invalid fields, `endsAt` not after `startsAt` or in the past, a product twice, or a limit over the units (VALIDATION_ERROR)"
		}
	},
	{
		method: "GET",
		path: "/sales",
		action: "inventory.listSales",
		tag: "Sales",
		summary: "List sales",
		description: "Every sale, latest start first, with each item's units left.",
		response: ref("SalePage")
	},
	{
		method: "GET",
		path: "/sales/:id",
		action: "inventory.getSale",
		tag: "Sales",
		summary: "Get a sale",
		description:
			"A sale with each item's units left. Served from the gateway's read cache, dropped on every gateway " +
			"when the sale's units change, so it is cheap to poll during a sale.",
		response: ref("Sale"),
		errors: { 404: "No such sale (NOT_FOUND)" },
		cached: true
	},
	{
		method: "PATCH",
		path: "/sales/:id",
		action: "inventory.updateSale",
		tag: "Sales",
		summary: "Change a sale",
		description:
			"Admin: change a sale that has not started; fields not sent stay as they are (`items` is replaced " +
			"whole). A live or ended sale is 409 SALE_STARTED.",
		response: ref("Sale"),
		errors: {
			404: "No such sale, or a product inventory does not know (NOT_FOUND)",
			409: "The sale has started (SALE_STARTED), or a product is in another sale at that time (SALE_OVERLAP), or an item names only a product with options (VARIANT_REQUIRED)",
			422: "Invalid fields (VALIDATION_ERROR)"
		}
	},
	{
		method: "DELETE",
		path: "/sales/:id",
		action: "inventory.removeSale",
		tag: "Sales",
		summary: "Remove a sale",
		description: "Admin: remove a sale that has not started; its products sell as before.",
		status: 204,
		errors: {
			404: "No such sale (NOT_FOUND)",
			409: "The sale has started (SALE_STARTED)"
		}
	},
	{
		method: "POST",
		path: "/discounts",
		action: "pricing.createDiscount",
		tag: "Pricing",
		summary: "Create a discount code",
		description:
			"Admin: a discount code (see the Discount schema for what each field means). A `fixed` code without " +
			"`currency` is in USD. Codes are unique, compared without case.",
		status: 201,
		answer: "The new code",
		response: ref("Discount"),
		errors: {
			409: "A code of that name exists (DISCOUNT_CODE_TAKEN)",
			422: "Invalid fields, a percentage over 100, `endsAt` not after `startsAt`, or `perCustomerLimit` over `usageLimit` (VALIDATION_ERROR)"
		}
	},
	{
		method: "GET",
		path: "/discounts",
		action: "pricing.listDiscounts",
		tag: "Pricing",
		summary: "List discount codes",
		description: "Admin: every discount code, newest first, with the uses held now.",
		response: ref("DiscountPage")
	},
	{
		method: "GET",
		path: "/discounts/:id",
		action: "pricing.getDiscount",
		tag: "Pricing",
		summary: "Get a discount code",
		description: "Admin: one discount code with the uses held now.",
		response: ref("Discount"),
		errors: { 404: "No such code (NOT_FOUND)" }
	},
	{
		method: "PATCH",
		path: "/discounts/:id",
		action: "pricing.updateDiscount",
		tag: "Pricing",
		summary: "Change a discount code",
		description:
			"Admin: change a code's terms (not the code itself); fields not sent stay. Uses already taken stay " +
			"taken; a lower `usageLimit` only stops new ones.",
		response: ref("Discount"),
		errors: { 404: "No such code (NOT_FOUND)", 422: "Invalid fields (VALIDATION_ERROR)" }
	},
	{
		method: "DELETE",
		path: "/discounts/:id",
		action: "pricing.removeDiscount",
		tag: "Pricing",
		summary: "Remove a discount code",
		description:
			"Admin: the code can no longer be applied (carts holding it show `reason: unknown`, checkout is 422); " +
			"orders that redeemed it keep their discount. The code's name can be created again.",
		status: 204,
		errors: { 404: "No such code (NOT_FOUND)" }
	},
	{
		method: "GET",
		path: "/shipping-methods",
		action: "pricing.listShippingMethods",
		notes: {
			country: {
				description:
					"ISO-3166 alpha-2: only the methods that ship there (none for a code no country has)",
				examples: ["GB"]
			}
		},
		tag: "Pricing",
		summary: "List shipping methods",
		description:
			"The shipping methods, cheapest first; with `country`, those an address there can use at checkout " +
			"(`shippingMethodId`). No token needed.",
		response: ref("ShippingMethodList")
	},
	{
		method: "POST",
		path: "/shipping-methods",
		action: "pricing.createShippingMethod",
		tag: "Pricing",
		summary: "Create a shipping method",
		description: "Admin: a shipping method for some countries, in one currency.",
		status: 201,
		answer: "The new method",
		response: ref("ShippingMethod"),
		errors: { 422: "Invalid fields (VALIDATION_ERROR)" }
	},
	{
		method: "GET",
		path: "/shipping-methods/:id",
		action: "pricing.getShippingMethod",
		tag: "Pricing",
		summary: "Get a shipping method",
		description: "One shipping method. No token needed.",
		response: ref("ShippingMethod"),
		errors: { 404: "No such method (NOT_FOUND)" }
	},
	{
		method: "PATCH",
		path: "/shipping-methods/:id",
		action: "pricing.updateShippingMethod",
		tag: "Pricing",
		summary: "Change a shipping method",
		description:
			"Admin: fields not sent stay. Orders already placed keep the price they were charged.",
		response: ref("ShippingMethod"),
		errors: { 404: "No such method (NOT_FOUND)", 422: "Invalid fields (VALIDATION_ERROR)" }
	},
	{
		method: "DELETE",
		path: "/shipping-methods/:id",
		action: "pricing.removeShippingMethod",
		tag: "Pricing",
		summary: "Remove a shipping method",
		description: "Admin: checkout can no longer choose it; orders already placed keep it.",
		status: 204,
		errors: { 404: "No such method (NOT_FOUND)" }
	},
	{
		method: "GET",
		path: "/tax-rates",
		action: "pricing.getTaxRates",
		tag: "Pricing",
		summary: "Get the tax rates",
		description: "Admin: every tax rate, by country then category.",
		response: ref("TaxRateList")
	},
	{
		method: "PUT",
		path: "/tax-rates",
		action: "pricing.putTaxRates",
		tag: "Pricing",
		summary: "Replace the tax rates",
		description:
			"Admin: the whole table of tax rates, replaced in one write (a country or category left out has no " +
			"tax). The body is a JSON array of rates, at most one per country and category. Carts show the new " +
			"rates at once; orders already placed keep theirs.",
		requestContent: {
			"application/json": {
				type: "array",
				maxItems: 2000,
				items: ref("TaxRate"),
				examples: [
					[
						{ country: "GB", rate: 2000 },
						{ country: "GB", category: "books", rate: 0 }
					]
				]
			}
		},
		answer: "The rates as stored",
		response: ref("TaxRateList"),
		errors: {
			413: "The body is over 1 MiB (PAYLOAD_TOO_LARGE)",
			415: "The body is not sent as JSON (UNSUPPORTED_MEDIA_TYPE)",
			422: "A rate invalid, or two for one country and category (VALIDATION_ERROR)"
		}
	},
	{
		method: "GET",
		path: "/cart",
		action: "carts.get",
		tag: "Cart",
		summary: "Get my cart",
		description:
			"The caller's cart at current catalog prices. Lines of products archived since they were added are " +
			"dropped.",
		response: ref("Cart")
	},
	{
		method: "POST",
		path: "/cart/items",
		action: "carts.add",
		tag: "Cart",
		summary: "Add to cart",
		description:
			"Add units of a variant (to its existing line if any; a line holds 1..99 units, more is 422), named by " +
			"`variantId`, or by `productId` alone for a product without options (its default variant; a product " +
			"with options is 409 VARIANT_REQUIRED). One of the two is required (422). Unknown or archived product " +
			"or variant, or a variant of another product: 404. A product in another currency than the cart's: 422 " +
			"CURRENCY_MISMATCH. A client-sent price is never read.",
		answer: "The cart",
		response: ref("Cart"),
		errors: {
			404: "No such product or variant, or archived (NOT_FOUND)",
			409: "The product has options: name a variant (VARIANT_REQUIRED, its variant ids in `data`)",
			422: "Invalid quantity or a line over 99 units (VALIDATION_ERROR), or a product in another currency (CURRENCY_MISMATCH)"
		}
	},
	{
		method: "PATCH",
		path: "/cart/items/:productId",
		action: "carts.update",
		tag: "Cart",
		summary: "Change a cart line",
		notes: { productId: ITEM_ID_NOTE },
		description:
			"Set the quantity of a line (1..99), named by its variant's id or by its product's id (the product's " +
			"one line in the cart). 404 when it is not in the cart.",
		answer: "The cart",
		response: ref("Cart"),
		errors: {
			404: "The variant or product is not in the cart (NOT_FOUND)",
			409: "A product id, and the cart holds several of its variants (VARIANT_REQUIRED)"
		}
	},
	{
		method: "DELETE",
		path: "/cart/items/:productId",
		action: "carts.remove",
		tag: "Cart",
		summary: "Remove a cart line",
		notes: { productId: ITEM_ID_NOTE },
		description:
			"Remove a line, named by its variant's id or by its product's id (the product's one line in the " +
			"cart). 404 when it is not in the cart.",
		answer: "The cart",
		response: ref("Cart"),
		errors: {
			404: "The variant or product is not in the cart (NOT_FOUND)",
			409: "A product id, and the cart holds several of its variants (VARIANT_REQUIRED)"
		}
	},
	{
		method: "DELETE",
		path: "/cart",
		action: "carts.clear",
		tag: "Cart",
		summary: "Empty my cart",
		description: "Remove every line of the caller's cart, and its discount code.",
		status: 204
	},
	{
		method: "POST",
		path: "/cart/discount",
		action: "carts.applyDiscount",
		notes: {
			code: { description: "The code as the customer typed it (any case)", examples: ["WELCOME10"] }
		},
		tag: "Cart",
		summary: "Apply a discount code",
		description:
			"Apply a discount code to the caller's cart (one per cart: it replaces another), checked against the " +
			"cart as it is now. The cart prices it again at every answer: when a later change makes it unusable " +
			"(e.g. the subtotal drops under its minimum), `discount.reason` says why and it takes nothing off. " +
			"The code's uses are taken at checkout, not here.",
		answer: "The cart, with `discount` and the new totals",
		response: ref("Cart"),
		errors: { 422: `Invalid body (VALIDATION_ERROR), or ${DINV}` }
	},
	{
		method: "DELETE",
		path: "/cart/discount",
		action: "carts.removeDiscount",
		tag: "Cart",
		summary: "Remove the discount code",
		description:
			"Take the applied discount code off the caller's cart (a cart without one answers as it is).",
		answer: "The cart",
		response: ref("Cart")
	},
	{
		method: "POST",
		path: "/orders",
		action: "orders.create",
		notes: { "shippingAddress.country": { description: COUNTRY_DESCRIPTION } },
		tag: "Orders",
		summary: "Check out",
		description:
			"Checkout: an order from the cart at current prices, stock reserved for every line (all or nothing: 409 " +
			"OUT_OF_STOCK lists the short lines), the cart emptied. Unpaid orders expire at `expiresAt` and their " +
			"stock goes back.\n\n" +
			"An empty cart is 422 EMPTY_CART; a cart whose total is 0 (products stored with price 0 by an earlier " +
			"version) is 422 ZERO_TOTAL, with nothing reserved. The checkout takes the cart's content once: a second " +
			"checkout of the same content under another Idempotency-Key (on any node), or one racing a change of " +
			"the cart, is 409 CART_CHANGED with nothing reserved; the same key replays the first order (201 with " +
			"`Idempotent-Replayed: true`). A checkout that fails after taking the cart gives its lines back.\n\n" +
			"The address is `shippingAddress`, or `shippingAddressId` naming one of the caller's saved addresses " +
			"(exactly one of the two). `shippingMethodId` (optional) must be a method that ships to the address's " +
			"country in the cart's currency. The cart's discount code is redeemed here, atomically within its usage " +
			"and per-customer limits across every node (used up meanwhile: 422 DISCOUNT_INVALID, nothing reserved); " +
			"an order cancelled, expired or refunded gives its use back once. Tax is the address's country's. A " +
			"checkout without code or method is priced as before: zeros for what it lacks.",
		status: 201,
		answer: "The new order, `pending_payment`",
		headers: IDEMPOTENCY_HEADER,
		response: ref("Order"),
		errors: {
			400: IDEMPOTENCY_400,
			409: "Not enough stock (OUT_OF_STOCK, `data` lists the short lines), a sale item before its sale starts (SALE_NOT_STARTED), over a sale's per-customer limit (PURCHASE_LIMIT_EXCEEDED), the cart changed (CART_CHANGED), or the key's first request still running (IDEMPOTENCY_KEY_IN_USE)",
			503: "More checkouts than the service takes right now (refused at once) or a backend down (SERVICE_UNAVAILABLE); retry after Retry-After",
			422: `Invalid address, no or both addresses, an unknown saved address or a shipping method that cannot ship there (VALIDATION_ERROR), empty cart (EMPTY_CART), zero total, also after a code took everything off (ZERO_TOTAL), ${DINV}, or the key reused with another body (IDEMPOTENCY_KEY_REUSED)`
		}
	},
	{
		method: "GET",
		path: "/orders",
		action: "orders.list",
		notes: { userId: { description: "Admin only; ignored for customers" } },
		tag: "Orders",
		summary: "List orders",
		description:
			"The caller's orders, newest first; an admin sees everyone's, or one user's with `userId`.",
		response: ref("OrderPage")
	},
	{
		method: "GET",
		path: "/orders/:id",
		action: "orders.get",
		tag: "Orders",
		summary: "Get an order",
		description: "One of the caller's orders (someone else's is 404); an admin sees any.",
		response: ref("Order"),
		errors: { 404: "No such order, or someone else's (NOT_FOUND)" }
	},
	{
		method: "POST",
		path: "/orders/:id/pay",
		action: "orders.pay",
		tag: "Orders",
		summary: "Pay an order",
		description:
			"Pay a `pending_payment` order once: 200 with `status: paid` and `payment`, its stock sold. The charge " +
			"is keyed by order at the provider, so no retry ever charges twice.\n\n" +
			"- Declined: 402 PAYMENT_DECLINED (`data.declineCode`); pay again with another token and a new key.\n" +
			"- Provider silent: 504, and a retry with the same key settles the same charge.\n" +
			"- Not pending (paid, expired, cancelled, refunded), past `expiresAt`, or another payment of it in " +
			"progress: 409 INVALID_ORDER_STATE; if a charge went through for an order that meanwhile expired or was " +
			"cancelled, it is refunded.\n" +
			"- A retry with the same key of the request that paid answers the order.\n\n" +
			"Test tokens of the simulated provider: `tok_visa` (succeeds), `tok_chargeDeclined` and " +
			"`tok_insufficientFunds` (402), `tok_timeout` (504).",
		answer: "The paid order",
		headers: IDEMPOTENCY_HEADER,
		response: ref("Order"),
		errors: {
			400: IDEMPOTENCY_400,
			402: "The payment provider declined (PAYMENT_DECLINED, `data.declineCode`)",
			404: "No such order, or someone else's (NOT_FOUND)",
			409: "Not payable now (INVALID_ORDER_STATE), or the key's first request still running (IDEMPOTENCY_KEY_IN_USE)",
			422: "Invalid token (VALIDATION_ERROR), or the key reused with another body (IDEMPOTENCY_KEY_REUSED)"
		}
	},
	{
		method: "POST",
		path: "/orders/:id/cancel",
		action: "orders.cancel",
		tag: "Orders",
		summary: "Cancel an order",
		description:
			"Cancel: an unpaid order becomes `cancelled` and its stock goes back; a paid, unshipped one becomes " +
			"`refunded` (the charge refunded in full, `payment.status: refunded`, its units back in stock). Any " +
			"other state: 409 INVALID_ORDER_STATE.",
		headers: OPTIONAL_IDEMPOTENCY_HEADER,
		answer: "The cancelled or refunded order",
		response: ref("Order"),
		errors: {
			400: "A malformed Idempotency-Key (IDEMPOTENCY_KEY_REQUIRED)",
			404: "No such order, or someone else's (NOT_FOUND)",
			409:
				"The order is not in a state that allows this (INVALID_ORDER_STATE), or a cancel with this key is " +
				"still running (IDEMPOTENCY_KEY_IN_USE)",
			422: "The key was used for another order (IDEMPOTENCY_KEY_REUSED)"
		}
	},
	{
		method: "POST",
		path: "/orders/:id/ship",
		action: "orders.ship",
		tag: "Orders",
		summary: "Ship an order",
		description:
			"Admin: a paid order is shipped (otherwise, or once its refund has begun, 409 INVALID_ORDER_STATE).",
		answer: "The shipped order",
		response: ref("Order"),
		errors: { 404: "No such order (NOT_FOUND)", 409: ORDER_STATE_409 }
	},
	{
		method: "POST",
		path: "/orders/:id/deliver",
		action: "orders.deliver",
		tag: "Orders",
		summary: "Deliver an order",
		description: "Admin: a shipped order is delivered (otherwise 409 INVALID_ORDER_STATE).",
		answer: "The delivered order",
		response: ref("Order"),
		errors: { 404: "No such order (NOT_FOUND)", 409: ORDER_STATE_409 }
	},
	{
		method: "GET",
		path: "/openapi.json",
		handler: "openapi",
		access: "public",
		tag: "Operations",
		summary: "This document",
		description:
			"This OpenAPI 3.1 document. The typed TypeScript client in `client/` is generated from it " +
			"(docs/api.md).",
		response: ref("OpenApiDocument")
	},
	{
		method: "GET",
		path: "/docs",
		handler: "docs",
		access: "public",
		tag: "Operations",
		summary: "Browsable docs",
		description: "A browsable page of this document (Swagger UI), served entirely by this gateway.",
		contentType: "text/html",
		response: { type: "string" }
	},
	{
		method: "GET",
		path: "/docs/:asset",
		handler: "docsAsset",
		access: "public",
		tag: "Operations",
		summary: "Docs page assets",
		description: "Static assets of the documentation page (not part of the document)."
	}
];
