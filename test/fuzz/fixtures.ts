/**
 * What the generated requests point at: real tokens for a customer and the admin, and pools of real ids (products,
 * orders, images, users, refresh tokens) made through the API before the run and harvested from its answers.
 * Destructive operations get spare entities of their own, so an archive or a role change cannot starve the run.
 */
import fc from "fast-check";
import { type Hints, PNG, type Persona, Ref, ref } from "./generate";

export const ADMIN = { email: "fuzz-admin@flashmart.test", password: "fuzz-admin-password" };
const PASSWORD = "fuzz-customer-password";

export type Pools = Record<string, string[]>;

export const HINTS: Hints = {
	productId: ref("product"),
	"products.get id": fc.oneof(ref("product"), ref("slug"), ref("createdProduct")),
	imageId: ref("image"),
	userId: ref("user"),
	refreshToken: ref("refreshToken"),
	paymentToken: fc.constantFrom("tok_visa", "tok_chargeDeclined", "tok_insufficientFunds"),
	email: fc.nat().map(n => `fuzz-${n}@example.com`),
	currentPassword: ref("password"),
	currency: fc.constant("USD"),
	category: fc.constantFrom("fuzz", "books", "kitchen"),
	"users.login body": fc.nat().map(n => ({
		email: new Ref("loginEmail", n),
		password: new Ref("loginPassword", n)
	})),
	"users.update id": ref("spareUser"),
	"products.update id": fc.oneof(ref("product"), ref("createdProduct")),
	"products.archive id": ref("spareProduct"),
	"gateway.upload id": ref("product"),
	"media.remove id": ref("imageProduct"),
	"orders.get id": ref("order"),
	"orders.pay id": ref("order"),
	"orders.cancel id": ref("order"),
	"orders.ship id": ref("order"),
	"orders.deliver id": ref("order")
};

/** Successful operations that feed a pool: [operation, "answer" or "request" body, field, pool]. */
const HARVEST: Array<[string, "answer" | "request", string, string]> = [
	["users.register", "answer", "refreshToken", "refreshToken"],
	["users.login", "answer", "refreshToken", "refreshToken"],
	["users.refresh", "answer", "refreshToken", "refreshToken"],
	// A changed password is the current one from now on (access tokens outlive the change).
	["users.updateMe", "request", "password", "password"],
	["products.create", "answer", "id", "createdProduct"],
	["orders.create", "answer", "id", "order"],
	["gateway.upload", "answer", "id", "image"]
];

export function harvest(pools: Pools, opId: string, bodies: Record<"answer" | "request", unknown>) {
	for (const [op, from, field, pool] of HARVEST) {
		const value = (bodies[from] as Record<string, unknown> | null)?.[field];
		if (op === opId && typeof value === "string") pools[pool].push(value);
	}
}

async function call(
	base: string,
	method: string,
	path: string,
	opts: { body?: unknown; token?: string; headers?: Record<string, string> } = {}
): Promise<any> {
	const res = await fetch(`${base}${path}`, {
		method,
		headers: {
			...(opts.body === undefined ? {} : { "Content-Type": "application/json" }),
			...(opts.token ? { Authorization: `Bearer ${opts.token}` } : {}),
			...opts.headers
		},
		body: opts.body === undefined ? undefined : JSON.stringify(opts.body)
	});
	const text = await res.text();
	if (!res.ok) throw new Error(`fixture ${method} ${path}: ${res.status} ${text}`);
	return text ? JSON.parse(text) : null;
}

export async function prepare(
	base: string
): Promise<{ tokens: Record<Persona, string | undefined>; pools: Pools }> {
	const pools: Pools = Object.fromEntries(
		[
			"product",
			"createdProduct",
			"slug",
			"spareProduct",
			"imageProduct",
			"image",
			"order",
			"user",
			"spareUser"
		]
			.concat(["refreshToken", "loginEmail", "loginPassword", "password"])
			.map(name => [name, [] as string[]])
	);
	const admin = (await call(base, "POST", "/api/auth/login", { body: ADMIN })).accessToken;
	pools.password.push(ADMIN.password, PASSWORD);
	const register = async (tag: string) =>
		call(base, "POST", "/api/auth/register", {
			body: {
				email: `fuzz-${tag}-${Date.now()}@example.com`,
				password: PASSWORD,
				name: `Fuzz ${tag}`
			}
		});
	const customer = await register("customer");
	pools.user.push(customer.user.id);
	// Spare accounts: targets of role changes and of logins (whose failures throttle that email).
	for (let i = 0; i < 3; i++) {
		const spare = await register(`spare${i}`);
		pools.spareUser.push(spare.user.id);
		pools.user.push(spare.user.id);
		pools.refreshToken.push(spare.refreshToken);
		pools.loginEmail.push(spare.user.email, spare.user.email);
		pools.loginPassword.push(PASSWORD, "not-the-password");
	}
	const product = (i: number, pool: string) =>
		call(base, "POST", "/api/products", {
			token: admin,
			body: {
				sku: `FUZZ-${pool}-${i}-${Date.now()}`,
				name: `Fuzz ${pool} ${i}`,
				price: 1000 + i,
				category: "fuzz",
				stock: 100000
			}
		}).then((p: { id: string; slug: string }) => {
			pools[pool].push(p.id);
			pools.slug.push(p.slug);
			return p;
		});
	for (let i = 0; i < 3; i++) await product(i, "product");
	for (let i = 0; i < 3; i++) await product(i, "spareProduct");
	const withImages = await product(0, "imageProduct");
	await uploadImages(base, admin, withImages.id, pools);
	const address = {
		name: "Fuzz",
		line1: "1 Fuzz St",
		city: "Testville",
		postalCode: "F1 1ZZ",
		country: "GB"
	};
	for (let i = 0; i < 3; i++) {
		await call(base, "POST", "/api/cart/items", {
			token: customer.accessToken,
			body: { productId: pools.product[i], quantity: 1 }
		});
		const order = await call(base, "POST", "/api/orders", {
			token: customer.accessToken,
			headers: { "Idempotency-Key": `fuzz-setup-${i}-${Date.now()}` },
			body: { shippingAddress: address }
		});
		pools.order.push(order.id);
	}
	await call(base, "POST", `/api/orders/${pools.order[0]}/pay`, {
		token: customer.accessToken,
		headers: { "Idempotency-Key": `fuzz-setup-pay-${Date.now()}` },
		body: { paymentToken: "tok_visa" }
	});
	await call(base, "POST", "/api/cart/items", {
		token: customer.accessToken,
		body: { productId: pools.product[0], quantity: 2 }
	});
	return { tokens: { anonymous: undefined, customer: customer.accessToken, admin }, pools };
}

async function uploadImages(base: string, token: string, productId: string, pools: Pools) {
	for (let i = 0; i < 3; i++) {
		const res = await fetch(`${base}/api/products/${productId}/images`, {
			method: "POST",
			headers: { Authorization: `Bearer ${token}`, "Content-Type": "image/png" },
			body: PNG
		});
		const text = await res.text();
		if (res.status !== 201) throw new Error(`fixture image upload: ${res.status} ${text}`);
		pools.image.push(JSON.parse(text).id);
	}
}
