/**
 * The answers issue 24 found confusing, over HTTP against the embedded default: each says what happened, and the
 * OpenAPI document says what each parameter means. The node is started without ADMIN_EMAIL, so its generated admin
 * password comes from the file the log names.
 */
import fs from "node:fs";
import path from "node:path";
import { type Proc, stopAll, tempDir } from "../../scripts/lib/cluster";
import { startEmbedded } from "../helpers/embedded";
import { api } from "../helpers/flashmart-cluster";
import { ADDRESS, expectError, unique } from "../helpers/shop";

const PUBLIC_URL = "https://shop.example.test/store";
/** A 1x1 PNG. */
const PNG = Buffer.from(
	"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
	"base64"
);

describe("clear answers (issue 24)", () => {
	let node: Proc;
	let base: string;
	let dataDir: string;
	let admin: string;

	const product = async (body: Record<string, unknown>) => {
		const res = await api(base, "POST", "/api/products", {
			token: admin,
			body: { sku: unique("ANS"), name: "Answer Item", price: 1000, ...body }
		});
		expect(res.status).toBe(201);
		return res.body;
	};
	const customer = async () =>
		(
			await api(base, "POST", "/api/auth/register", {
				body: { email: `${unique("ans")}@example.com`, password: "buyer-password", name: "B" }
			})
		).body.accessToken as string;

	beforeAll(async () => {
		dataDir = tempDir("answers");
		({ node, base } = await startEmbedded("answers", {
			DATA_DIR: dataDir,
			ADMIN_EMAIL: undefined,
			ADMIN_PASSWORD: undefined,
			PUBLIC_URL,
			SEED_DEMO: "false",
			LOGIN_MAX_FAILURES: "2"
		}));
	}, 60_000);
	afterAll(() => stopAll());

	describe("the embedded admin's generated password", () => {
		const file = () => path.join(dataDir, "admin-password.txt");

		it("is in DATA_DIR/admin-password.txt, readable by its owner only, and the log names the file, not the password", () => {
			expect(fs.statSync(file()).mode & 0o777).toBe(0o600);
			const password = /^password=(.+)$/m.exec(fs.readFileSync(file(), "utf8"))![1];
			expect(node.output()).toContain(file());
			expect(node.output()).not.toContain(password);
		});

		it("signs the admin in", async () => {
			const text = fs.readFileSync(file(), "utf8");
			const email = /^email=(.+)$/m.exec(text)![1];
			const password = /^password=(.+)$/m.exec(text)![1];
			const res = await api(base, "POST", "/api/auth/login", { body: { email, password } });
			expect(res.status).toBe(200);
			expect(res.body.user.roles).toContain("admin");
			admin = res.body.accessToken;
		});
	});

	it("answers a JSON body sent without Content-Type with 415, not 422 for missing fields", async () => {
		const token = await customer();
		for (const headers of [{}, { "Content-Type": "text/plain" }] as Array<Record<string, string>>) {
			const res = await fetch(`${base}/api/cart/items`, {
				method: "POST",
				headers: { Authorization: `Bearer ${token}`, ...headers },
				// Bytes, not a string: fetch would label a string text/plain.
				body: Buffer.from(JSON.stringify({ productId: "x", quantity: 1 }))
			});
			expect(res.status).toBe(415);
			expect(await res.json()).toMatchObject({
				name: "UnsupportedMediaTypeError",
				type: "UNSUPPORTED_MEDIA_TYPE",
				code: 415
			});
		}
		// An unknown path stays 404 whatever it is sent.
		expect((await fetch(`${base}/api/nothing`, { method: "POST", body: "x" })).status).toBe(404);
	});

	it("names the sort value given and the allowed ones", async () => {
		const res = await api(base, "GET", "/api/products?sort=foo");
		expectError(res, 422, "VALIDATION_ERROR");
		expect(res.body.data[0]).toMatchObject({ field: "sort", type: "enumValue" });
		expect(res.body.data[0].message).toBe(
			"'foo' is not a valid sort; allowed values: price, -price, name, -createdAt"
		);
	});

	it("reads inStock=false as out of stock only, inStock=true as in stock only", async () => {
		const category = unique("stockcat").toLowerCase();
		const full = await product({ category, stock: 3 });
		const empty = await product({ category, stock: 0 });
		const ids = async (q: string) =>
			(await api(base, "GET", `/api/products?category=${category}${q}`)).body.rows.map(
				(p: { id: string }) => p.id
			);
		expect(await ids("&inStock=false")).toEqual([empty.id]);
		expect(await ids("&inStock=true")).toEqual([full.id]);
		expect((await ids("")).sort()).toEqual([full.id, empty.id].sort());
	});

	it("keeps categories lower-cased, matches any case, and says so in the document", async () => {
		const name = unique("Garden Tools");
		const created = await product({ category: name, stock: 1 });
		expect(created.category).toBe(name.toLowerCase());
		const rows = (
			await api(base, "GET", `/api/products?category=${encodeURIComponent(name.toUpperCase())}`)
		).body.rows;
		expect(rows.map((p: { id: string }) => p.id)).toEqual([created.id]);
		const doc = (await api(base, "GET", "/api/openapi.json")).body;
		const param = doc.paths["/api/products"].get.parameters.find(
			(p: { name: string }) => p.name === "category"
		);
		expect(param.description).toMatch(/lower-cased/);
	});

	it("filters an admin's order list by ?status=, validated against the order states", async () => {
		const token = await customer();
		const { id: productId } = await product({ category: "answers", stock: 5 });
		const place = async () => {
			await api(base, "POST", "/api/cart/items", { token, body: { productId, quantity: 1 } });
			const res = await api(base, "POST", "/api/orders", {
				token,
				body: { shippingAddress: ADDRESS },
				headers: { "Idempotency-Key": unique("k") }
			});
			expect(res.status).toBe(201);
			return res.body.id as string;
		};
		const pending = await place();
		const cancelled = await place();
		expect((await api(base, "POST", `/api/orders/${cancelled}/cancel`, { token })).status).toBe(
			200
		);
		const listed = async (status: string) =>
			(
				await api(base, "GET", `/api/orders?status=${status}&pageSize=100`, { token: admin })
			).body.rows.map((o: { id: string; status: string }) => [o.id, o.status]);
		const cancelledRows = await listed("cancelled");
		expect(cancelledRows).toContainEqual([cancelled, "cancelled"]);
		expect(cancelledRows.every(([, s]: string[]) => s === "cancelled")).toBe(true);
		expect((await listed("pending_payment")).map(([id]: string[]) => id)).toContain(pending);
		const bad = await api(base, "GET", "/api/orders?status=shipping", { token: admin });
		expectError(bad, 422, "VALIDATION_ERROR");
		expect(bad.body.data[0].message).toMatch(
			/^'shipping' is not a valid status; allowed values: pending_payment, /
		);
	});

	it("names the 429 TooManyRequestsError, with Retry-After", async () => {
		const email = `${unique("throttled")}@example.com`;
		await api(base, "POST", "/api/auth/register", {
			body: { email, password: "right-password", name: "T" }
		});
		for (let i = 0; i < 2; i++)
			await api(base, "POST", "/api/auth/login", { body: { email, password: "wrong-password" } });
		const res = await api(base, "POST", "/api/auth/login", {
			body: { email, password: "wrong-password" }
		});
		expectError(res, 429, "RATE_LIMIT_EXCEEDED");
		expect(res.body.name).toBe("TooManyRequestsError");
		expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
	});

	it("answers and documents CURRENCY_MISMATCH on adding to the cart", async () => {
		const token = await customer();
		const usd = await product({ category: "answers", stock: 5 });
		const eur = await product({ category: "answers", stock: 5, currency: "EUR" });
		await api(base, "POST", "/api/cart/items", { token, body: { productId: usd.id, quantity: 1 } });
		const res = await api(base, "POST", "/api/cart/items", {
			token,
			body: { productId: eur.id, quantity: 1 }
		});
		expectError(res, 422, "CURRENCY_MISMATCH");
		expect(res.body.data[0]).toMatchObject({ expected: "USD", actual: "EUR" });
		const doc = (await api(base, "GET", "/api/openapi.json")).body;
		expect(doc.paths["/api/cart/items"].post.responses["422"].description).toMatch(
			/CURRENCY_MISMATCH: /
		);
	});

	it("gives image URLs absolute on PUBLIC_URL, in the upload's answer and in the product", async () => {
		const { id } = await product({ category: "answers", stock: 1 });
		const res = await fetch(`${base}/api/products/${id}/images`, {
			method: "POST",
			headers: { Authorization: `Bearer ${admin}`, "Content-Type": "image/png" },
			body: PNG
		});
		expect(res.status).toBe(201);
		const image = (await res.json()) as { id: string; url: string };
		expect(image.url).toBe(`${PUBLIC_URL}/api/images/${image.id}`);
		const listed = (await api(base, "GET", `/api/products/${id}`)).body.images;
		expect(listed).toEqual([image]);
		// The path under PUBLIC_URL is the gateway's: fetched here without a token.
		const bytes = await fetch(`${base}${new URL(image.url).pathname.replace(/^\/store/, "")}`);
		expect(bytes.status).toBe(200);
		expect(Buffer.from(await bytes.arrayBuffer()).equals(PNG)).toBe(true);
	});
});
