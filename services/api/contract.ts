/**
 * The HTTP binding of every operation a client may call (API.md): method, path, the action behind it, where its
 * parameters travel, and what the document says about it. What a client may send and who may call come from the
 * action itself (its `params` and `permissions`, see action-specs.ts), so this table cannot contradict it.
 * The gateway builds its whitelist of aliases from this table and nothing else; the OpenAPI document comes from it.
 */
import type { Access, JsonSchema } from "./action-schema";

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

export interface Operation {
	method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
	/**
	 * moleculer-web path under the route, `:param` style. An action's other parameters travel in the query string
	 * for GET and DELETE and in the JSON body otherwise.
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
	 * Words for the document about derived parameters, by parameter path (`shippingAddress.country`): descriptions
	 * and examples only; types, limits and defaults are the action's.
	 */
	notes?: Record<string, JsonSchema>;
	tag: string;
	summary: string;
	/** Success status code. */
	status?: number;
	/** A request body that is not JSON: content type → schema (e.g. an upload). */
	requestContent?: Record<string, JsonSchema>;
	headers?: Record<string, { schema: JsonSchema; required?: boolean; description: string }>;
	response?: JsonSchema;
	/** Error statuses this operation documents beyond the ones every operation may answer. */
	errors?: number[];
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

const STR = { type: "string" } as const;
const INT = { type: "integer" } as const;

const pageOf = (items: JsonSchema): JsonSchema => ({
	type: "object",
	required: ["rows", "total", "page", "pageSize", "totalPages"],
	properties: {
		rows: { type: "array", items },
		total: INT,
		page: INT,
		pageSize: INT,
		totalPages: INT
	}
});

const ROLES: JsonSchema = {
	type: "array",
	items: { enum: ["customer", "admin"] },
	minItems: 1,
	uniqueItems: true
};
const USER: JsonSchema = {
	type: "object",
	required: ["id", "email", "name", "roles", "createdAt"],
	properties: {
		id: STR,
		email: STR,
		name: STR,
		roles: ROLES,
		createdAt: { type: "string", format: "date-time" }
	}
};
const ADMIN_USER: JsonSchema = {
	...USER,
	properties: { ...(USER.properties as object), disabled: { type: "boolean" } }
};
const TOKEN_BUNDLE: JsonSchema = {
	type: "object",
	required: ["user", "accessToken", "refreshToken", "tokenType", "expiresIn"],
	properties: {
		user: USER,
		accessToken: {
			type: "string",
			description: "JWT RS256; send as `Authorization: Bearer <accessToken>`"
		},
		refreshToken: { type: "string", description: "Opaque; works once (rotated on every refresh)" },
		tokenType: { const: "Bearer" },
		expiresIn: {
			type: "integer",
			description: "Seconds until the access token expires (at most 900)"
		}
	}
};
/** A login's answer: the tokens, and the device token that exempts this client from its address's throttling. */
const LOGIN_BUNDLE: JsonSchema = {
	...TOKEN_BUNDLE,
	required: [...(TOKEN_BUNDLE.required as string[]), "deviceToken"],
	properties: {
		...(TOKEN_BUNDLE.properties as Record<string, JsonSchema>),
		deviceToken: {
			type: "string",
			description:
				"Proof of this successful login from this client (not an access token): send it back as `deviceToken` " +
				"with later logins of this account, so failures of others from the same address never lock it out"
		}
	}
};
const MONEY: JsonSchema = { type: "integer", minimum: 0, description: "Minor units (cents)" };
const CURRENCY: JsonSchema = {
	type: "string",
	pattern: "^[A-Z]{3}$",
	default: "USD",
	description: "ISO-4217"
};
/** Words for derived request parameters (their types and limits are the actions'). */
const EMAIL_NOTE: JsonSchema = {
	description:
		"Trimmed, NFKC-normalised (full-width letters become plain ones) and lower-cased; an address holding an " +
		"invisible or format character (zero-width, soft hyphen, bidi controls) is refused with 422"
};
const MONEY_NOTE: JsonSchema = { description: MONEY.description };
const CURRENCY_NOTE: JsonSchema = { description: CURRENCY.description };

const IMAGE: JsonSchema = {
	type: "object",
	required: ["id", "url"],
	properties: {
		id: STR,
		url: {
			type: "string",
			format: "uri",
			description: "Absolute, on the PUBLIC_URL setting; fetchable without a token"
		}
	}
};
const PRODUCT: JsonSchema = {
	type: "object",
	required: ["id", "sku", "slug", "name", "price", "currency", "category", "images", "available"],
	properties: {
		id: STR,
		sku: STR,
		slug: STR,
		name: STR,
		description: STR,
		price: MONEY,
		currency: CURRENCY,
		category: STR,
		images: { type: "array", items: IMAGE },
		available: { type: "integer", description: "Units that can be bought now" },
		createdAt: { type: "string", format: "date-time" },
		updatedAt: { type: "string", format: "date-time" }
	}
};
const STOCK_LEVEL: JsonSchema = {
	type: "object",
	required: ["productId", "onHand", "reserved", "available"],
	properties: { productId: STR, onHand: INT, reserved: INT, available: INT }
};

const QUANTITY: JsonSchema = { type: "integer", minimum: 1, maximum: 99 };
const CART: JsonSchema = {
	type: "object",
	required: ["items", "subtotal", "currency"],
	properties: {
		items: {
			type: "array",
			items: {
				type: "object",
				required: ["productId", "name", "unitPrice", "quantity", "lineTotal"],
				properties: {
					productId: STR,
					name: STR,
					unitPrice: MONEY,
					quantity: QUANTITY,
					lineTotal: MONEY
				}
			}
		},
		subtotal: MONEY,
		currency: CURRENCY
	}
};

const ORDER_STATUS: JsonSchema = {
	enum: ["pending_payment", "paid", "shipped", "delivered", "cancelled", "expired", "refunded"]
};
const ADDRESS: JsonSchema = {
	type: "object",
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
			description: "ISO-3166 alpha-2, upper-cased"
		}
	}
};
const ORDER: JsonSchema = {
	type: "object",
	required: ["id", "status", "items", "subtotal", "total", "currency", "expiresAt", "createdAt"],
	properties: {
		id: STR,
		userId: STR,
		status: ORDER_STATUS,
		items: {
			type: "array",
			items: {
				type: "object",
				properties: {
					productId: STR,
					sku: STR,
					name: STR,
					unitPrice: MONEY,
					quantity: QUANTITY,
					lineTotal: MONEY
				}
			}
		},
		subtotal: MONEY,
		total: MONEY,
		currency: CURRENCY,
		shippingAddress: ADDRESS,
		expiresAt: { type: "string", format: "date-time" },
		createdAt: { type: "string", format: "date-time" },
		updatedAt: { type: "string", format: "date-time" },
		payment: {
			type: "object",
			description: "Present once paid: `status` is `succeeded`, or `refunded` after a refund",
			properties: { id: STR, status: { enum: ["succeeded", "refunded"] }, amount: MONEY }
		}
	}
};
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
		summary: "Liveness of this gateway node with its version",
		response: {
			type: "object",
			required: ["status", "uptime", "version", "nodeID"],
			properties: { status: { const: "ok" }, uptime: { type: "number" }, version: STR, nodeID: STR }
		}
	},
	{
		method: "GET",
		path: "/live",
		handler: "live",
		access: "public",
		tag: "Operations",
		summary: "200 while the process runs",
		response: { type: "object", properties: { status: { const: "ok" } } }
	},
	{
		method: "GET",
		path: "/ready",
		handler: "ready",
		access: "public",
		tag: "Operations",
		summary:
			"200 when the transporter is connected and every required service is available with its store reachable; " +
			"503 naming what is missing",
		errors: [503],
		response: {
			type: "object",
			properties: {
				status: { enum: ["ok", "unavailable"] },
				missing: { type: "array", items: STR }
			}
		}
	},
	{
		method: "GET",
		path: "/metrics",
		handler: "metrics",
		access: "public",
		tag: "Operations",
		summary: "Prometheus text exposition of this node's metrics",
		contentType: "text/plain; version=0.0.4"
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
		summary: "The backend view: each required service up or down",
		response: {
			type: "object",
			required: ["status", "services"],
			properties: {
				status: { enum: ["ok", "degraded"] },
				services: { type: "object", additionalProperties: { enum: ["up", "down"] } }
			}
		}
	},
	{
		method: "POST",
		path: "/auth/register",
		action: "users.register",
		notes: { email: EMAIL_NOTE },
		tag: "Accounts",
		summary:
			"Create a customer account and sign in. Fields other than these are ignored (never `roles`).",
		status: 201,
		response: TOKEN_BUNDLE,
		errors: [409]
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
		summary:
			"Sign in. Unknown email, wrong password and a disabled account get the same 401 INVALID_CREDENTIALS. " +
			"429 after LOGIN_MAX_FAILURES failures on the account within LOGIN_FAILURE_WINDOW (a client with the " +
			"account's device token counts only its own), or once LOGIN_ADDRESS_MAX_ACCOUNTS accounts failed from " +
			"the client's address within LOGIN_ADDRESS_WINDOW (password spraying; device tokens exempt).",
		response: LOGIN_BUNDLE,
		errors: [401]
	},
	{
		method: "POST",
		path: "/auth/refresh",
		action: "users.refresh",
		tag: "Accounts",
		summary:
			"New tokens for a refresh token. Each refresh token works once; presenting a used one revokes its whole " +
			"family (401 INVALID_TOKEN). A disabled user's refresh fails at once.",
		response: TOKEN_BUNDLE,
		errors: [401]
	},
	{
		method: "POST",
		path: "/auth/logout",
		action: "users.logout",
		tag: "Accounts",
		summary: "End the session of this refresh token (204 whether or not it was known).",
		status: 204
	},
	{
		method: "GET",
		path: "/users/me",
		action: "users.me",
		tag: "Accounts",
		summary: "The caller's profile",
		response: USER
	},
	{
		method: "PATCH",
		path: "/users/me",
		action: "users.updateMe",
		tag: "Accounts",
		summary:
			"Change the caller's name and/or password. A new password needs `currentPassword` (422 naming it when " +
			"missing or wrong) and ends every other session.",
		response: USER
	},
	{
		method: "GET",
		path: "/users",
		action: "users.list",
		tag: "Accounts",
		summary: "Admin: all users, newest first",
		response: pageOf(ADMIN_USER)
	},
	{
		method: "PATCH",
		path: "/users/:id",
		action: "users.update",
		tag: "Accounts",
		summary:
			"Admin: set roles and/or disable an account. A disabled user cannot sign in or refresh; access tokens " +
			"already issued expire within 15 minutes. Admins cannot demote or disable themselves (422).",
		response: ADMIN_USER,
		errors: [404]
	},
	{
		method: "GET",
		path: "/products",
		action: "products.list",
		cached: true,
		tag: "Catalog",
		summary:
			"Products on sale (archived ones never appear). `q` searches name, description and sku (plain text, not a " +
			"pattern); prices in minor units. Only these parameters exist; any other is ignored.",
		response: pageOf(PRODUCT)
	},
	{
		method: "GET",
		path: "/products/:idOrSlug",
		action: "products.get",
		cached: true,
		tag: "Catalog",
		summary: "One product by id or slug (archived products answer 404)",
		response: PRODUCT,
		errors: [404]
	},
	{
		method: "GET",
		path: "/categories",
		action: "products.categories",
		cached: true,
		tag: "Catalog",
		summary: "Categories with the number of products on sale in each, by name",
		response: {
			type: "array",
			items: { type: "object", required: ["name", "count"], properties: { name: STR, count: INT } }
		}
	},
	{
		method: "POST",
		path: "/products",
		action: "products.create",
		notes: { price: MONEY_NOTE, currency: CURRENCY_NOTE },
		tag: "Catalog",
		summary:
			"Admin: create a product. The slug is made from the name (made unique). `stock` sets the units on hand. " +
			"`price` is at least 1 minor unit: a price of 0 is 422 VALIDATION_ERROR (FlashMart sells nothing for free, " +
			"so every order has something to pay).",
		status: 201,
		response: PRODUCT,
		errors: [409]
	},
	{
		method: "PATCH",
		path: "/products/:id",
		action: "products.update",
		notes: { price: MONEY_NOTE, currency: CURRENCY_NOTE },
		tag: "Catalog",
		summary:
			"Admin: change a product (name, description, price, currency, category, sku). `price` is at least 1 minor " +
			"unit: 0 is 422 VALIDATION_ERROR.",
		response: PRODUCT,
		errors: [404, 409]
	},
	{
		method: "DELETE",
		path: "/products/:id",
		action: "products.archive",
		tag: "Catalog",
		summary: "Admin: archive a product: gone from listings and reads, kept for existing orders",
		status: 204,
		errors: [404]
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
		summary:
			"Admin: add an image, as multipart/form-data field `file` or as the raw body. JPEG, PNG, WebP or GIF " +
			"(decided by the bytes), at most 5 MiB.",
		status: 201,
		response: IMAGE,
		errors: [404, 413, 415]
	},
	{
		method: "DELETE",
		path: "/products/:id/images/:imageId",
		action: "media.remove",
		tag: "Catalog",
		summary: "Admin: remove an image",
		status: 204,
		errors: [404]
	},
	{
		method: "GET",
		path: "/images/:imageId",
		action: "media.get",
		tag: "Catalog",
		summary:
			"An image's bytes, with its content type and long-lived cache headers (no token needed)",
		contentType: "image/*",
		errors: [404]
	},
	{
		method: "GET",
		path: "/inventory/:productId",
		action: "inventory.get",
		tag: "Inventory",
		summary: "Admin: stock of a product; available = onHand - reserved",
		response: STOCK_LEVEL,
		errors: [404]
	},
	{
		method: "PUT",
		path: "/inventory/:productId",
		action: "inventory.set",
		tag: "Inventory",
		summary: "Admin: set the units on hand; 409 if that would drop below the units reserved",
		response: STOCK_LEVEL,
		errors: [404, 409]
	},
	{
		method: "GET",
		path: "/cart",
		action: "carts.get",
		tag: "Cart",
		summary:
			"The caller's cart at current catalog prices. Lines of products archived since they were added are dropped.",
		response: CART
	},
	{
		method: "POST",
		path: "/cart/items",
		action: "carts.add",
		tag: "Cart",
		summary:
			"Add units of a product (to its existing line if any; a line holds 1..99 units, more is 422). " +
			"Unknown or archived product: 404. A product in another currency than the cart's: 422 CURRENCY_MISMATCH.",
		response: CART,
		errors: [404]
	},
	{
		method: "PATCH",
		path: "/cart/items/:productId",
		action: "carts.update",
		tag: "Cart",
		summary: "Set the quantity of a line (404 when the product is not in the cart)",
		response: CART,
		errors: [404]
	},
	{
		method: "DELETE",
		path: "/cart/items/:productId",
		action: "carts.remove",
		tag: "Cart",
		summary: "Remove a line (404 when the product is not in the cart)",
		response: CART,
		errors: [404]
	},
	{
		method: "DELETE",
		path: "/cart",
		action: "carts.clear",
		tag: "Cart",
		summary: "Empty the cart",
		status: 204
	},
	{
		method: "POST",
		path: "/orders",
		action: "orders.create",
		notes: { "shippingAddress.country": { description: "ISO-3166 alpha-2, upper-cased" } },
		tag: "Orders",
		summary:
			"Checkout: an order from the cart at current prices, stock reserved for every line (all or nothing: 409 " +
			"OUT_OF_STOCK lists the short lines), the cart emptied. Unpaid orders expire at `expiresAt` and their stock " +
			"goes back. An empty cart is 422 EMPTY_CART; a cart whose total is 0 (products stored with price 0 by an " +
			"earlier version) is 422 ZERO_TOTAL, with nothing reserved. The checkout takes the cart's content once: a " +
			"second checkout of the same content under another Idempotency-Key (on any node), or one racing a change " +
			"of the cart, is 409 CART_CHANGED with nothing reserved; the same key replays the first order. A checkout " +
			"that fails after taking the cart gives its lines back.",
		status: 201,
		headers: IDEMPOTENCY_HEADER,
		response: ORDER,
		errors: [400, 409, 422]
	},
	{
		method: "GET",
		path: "/orders",
		action: "orders.list",
		notes: { userId: { description: "Admin only; ignored for customers" } },
		tag: "Orders",
		summary:
			"The caller's orders, newest first; an admin sees everyone's, or one user's with `userId`",
		response: pageOf(ORDER)
	},
	{
		method: "GET",
		path: "/orders/:id",
		action: "orders.get",
		tag: "Orders",
		summary: "One of the caller's orders (someone else's is 404); an admin sees any",
		response: ORDER,
		errors: [404]
	},
	{
		method: "POST",
		path: "/orders/:id/pay",
		action: "orders.pay",
		tag: "Orders",
		summary:
			"Pay a `pending_payment` order once: 200 with `status: paid` and `payment`, its stock sold. The charge is " +
			"keyed by order at the provider, so no retry ever charges twice. Declined: 402 PAYMENT_DECLINED " +
			"(`data.declineCode`; pay again with another token and a new key). Provider silent: 504, and a retry " +
			"with the same key settles the same charge. Not pending (paid, expired, cancelled, refunded), past " +
			"`expiresAt`, or another payment of it in progress: 409 INVALID_ORDER_STATE; if a charge went through " +
			"for an order that meanwhile expired or was cancelled, it is refunded. A retry with the same key of the " +
			"request that paid answers the order. Test tokens: tok_visa, tok_chargeDeclined, " +
			"tok_insufficientFunds, tok_timeout.",
		headers: IDEMPOTENCY_HEADER,
		response: ORDER,
		errors: [400, 402, 404, 409, 422]
	},
	{
		method: "POST",
		path: "/orders/:id/cancel",
		action: "orders.cancel",
		tag: "Orders",
		summary:
			"Cancel: an unpaid order becomes `cancelled` and its stock goes back; a paid, unshipped one becomes " +
			"`refunded` (the charge refunded in full, `payment.status: refunded`, its units back in stock). Any " +
			"other state: 409 INVALID_ORDER_STATE.",
		headers: OPTIONAL_IDEMPOTENCY_HEADER,
		response: ORDER,
		errors: [400, 404, 409, 422]
	},
	{
		method: "POST",
		path: "/orders/:id/ship",
		action: "orders.ship",
		tag: "Orders",
		summary:
			"Admin: a paid order is shipped (otherwise, or once its refund has begun, 409 INVALID_ORDER_STATE)",
		response: ORDER,
		errors: [404, 409]
	},
	{
		method: "POST",
		path: "/orders/:id/deliver",
		action: "orders.deliver",
		tag: "Orders",
		summary: "Admin: a shipped order is delivered (otherwise 409 INVALID_ORDER_STATE)",
		response: ORDER,
		errors: [404, 409]
	},
	{
		method: "GET",
		path: "/openapi.json",
		handler: "openapi",
		access: "public",
		tag: "Operations",
		summary: "This OpenAPI 3.1 document"
	},
	{
		method: "GET",
		path: "/docs",
		handler: "docs",
		access: "public",
		tag: "Operations",
		summary: "A browsable page of this document",
		contentType: "text/html"
	},
	{
		method: "GET",
		path: "/docs/:asset",
		handler: "docsAsset",
		access: "public",
		tag: "Operations",
		summary: "Static assets of the documentation page"
	}
];
