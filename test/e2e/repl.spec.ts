/**
 * The operator commands of the REPL (repl/commands/, docs/repl.md) through moleculer-repl itself: `node dist/server.js
 * --repl` on the embedded default, commands typed on its stdin, answers read from its stdout. Data is made over HTTP
 * as a client would; a fixture consumer that fails until healed gives a dead letter to list and replay.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import path from "node:path";
import { ALL_SERVICES } from "../../config";
import { ROOT, SERVER_JS, freePort, tempDir, waitForStatus } from "../../scripts/lib/cluster";
import { api } from "../helpers/flashmart-cluster";
import { ADDRESS, eventually, unique } from "../helpers/shop";

const ADMIN = { email: "repl-admin@flashmart.test", password: "repl-admin-password" };
const FIXTURE = path.join(ROOT, "dist", "test", "fixtures", "failing-consumer.service.js");

/** A REPL process: `run` types one command and answers its printed JSON (or the `>> ERROR:` line as `{ error }`). */
function startRepl(env: Record<string, string>) {
	const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [SERVER_JS, "--repl"], {
		cwd: ROOT,
		env: { ...process.env, ...env },
		stdio: ["pipe", "pipe", "pipe"]
	});
	let out = "";
	child.stdout.on("data", d => (out += String(d)));
	child.stderr.on("data", d => (out += String(d)));
	return {
		child,
		output: () => out,
		async run(command: string): Promise<any> {
			const from = out.length;
			child.stdin.write(`${command}\n`);
			return eventually(async () => {
				const text = out.slice(from).replaceAll("flashmart $ ", "").trim();
				const error = /^>> ERROR: (.*)$/m.exec(text);
				if (error) return { error: error[1] };
				try {
					return { value: JSON.parse(text) };
				} catch {
					return null;
				}
			}, 20_000).then(r => ("value" in r ? r.value : r));
		}
	};
}

describe("the operator REPL on the embedded default", () => {
	let repl: ReturnType<typeof startRepl>;
	let base: string;
	let adminToken: string;
	let productId: string;
	let orderId: string;
	let customer: string;

	beforeAll(async () => {
		const port = await freePort();
		base = `http://127.0.0.1:${port}`;
		const dataDir = tempDir("repl");
		repl = startRepl({
			NODE_ENV: "test",
			GATEWAY_PORT: String(port),
			GATEWAY_HOST: "127.0.0.1",
			METRICS_PORT: "0",
			DATA_DIR: dataDir,
			HOME: dataDir,
			LOG_LEVEL: "fatal",
			EVENT_MAX_RETRIES: "0",
			SEED_DEMO: "false",
			ADMIN_EMAIL: ADMIN.email,
			ADMIN_PASSWORD: ADMIN.password,
			SERVICES: [...ALL_SERVICES, FIXTURE].join(",")
		});
		repl.child.on("exit", code => {
			if (code) console.error(repl.output().slice(-3000));
		});
		await waitForStatus(`${base}/ready`, { timeoutMs: 30_000 });
		adminToken = (await api(base, "POST", "/api/auth/login", { body: ADMIN })).body.accessToken;
		const product = await api(base, "POST", "/api/products", {
			token: adminToken,
			body: { sku: unique("REPL"), name: "Repl Item", price: 1500, category: "testing", stock: 5 }
		});
		productId = product.body.id;
		const buyer = await api(base, "POST", "/api/auth/register", {
			body: { email: `${unique("repl")}@example.com`, password: "buyer-password", name: "B" }
		});
		customer = buyer.body.accessToken;
		await api(base, "POST", "/api/cart/items", {
			token: customer,
			body: { productId, quantity: 2 }
		});
		const order = await api(base, "POST", "/api/orders", {
			token: customer,
			body: { shippingAddress: ADDRESS },
			headers: { "Idempotency-Key": unique("k") }
		});
		expect(order.status).toBe(201);
		orderId = order.body.id;
	}, 60_000);

	afterAll(async () => {
		if (repl.child.exitCode === null) {
			const exited = new Promise(resolve => repl.child.once("exit", resolve));
			repl.child.kill("SIGTERM");
			await exited;
		}
	});

	it("stock <productId> shows the levels and the order holding units", async () => {
		const answer = await repl.run(`stock ${productId}`);
		expect(answer.stock).toEqual({
			productId,
			variantId: productId,
			onHand: 5,
			reserved: 2,
			available: 3
		});
		expect(answer.product).toMatchObject({ id: productId, archived: false });
		expect(answer.holds).toEqual([{ orderId, quantity: 2 }]);
	});

	it("stock of a product with options shows each variant's levels; of a variant id, that variant's", async () => {
		const sku = unique("REPLTEE");
		const tee = await api(base, "POST", "/api/products", {
			token: adminToken,
			body: {
				sku,
				name: "Repl Tee",
				price: 1500,
				category: "testing",
				options: [{ name: "size", values: ["S", "M"] }],
				variants: [
					{ sku: `${sku}-S`, options: { size: "S" }, stock: 3 },
					{ sku: `${sku}-M`, options: { size: "M" }, stock: 7 }
				]
			}
		});
		expect(tee.status).toBe(201);
		const [small, medium] = tee.body.variants;
		const answer = await repl.run(`stock ${tee.body.id}`);
		expect(answer.product).toMatchObject({ id: tee.body.id, defaultVariantId: null });
		expect(answer.variants).toEqual(
			expect.arrayContaining([
				{
					variantId: small.id,
					sku: `${sku}-S`,
					options: { size: "S" },
					stock: {
						productId: tee.body.id,
						variantId: small.id,
						onHand: 3,
						reserved: 0,
						available: 3
					},
					holds: []
				},
				expect.objectContaining({
					variantId: medium.id,
					stock: expect.objectContaining({ onHand: 7, available: 7 })
				})
			])
		);
		const one = await repl.run(`stock ${medium.id}`);
		expect(one.stock).toEqual({
			productId: tee.body.id,
			variantId: medium.id,
			onHand: 7,
			reserved: 0,
			available: 7
		});
		expect(one.product).toMatchObject({ id: tee.body.id });
	});

	it("deadletters lists the event the failing consumer gave up on", async () => {
		const letters = await eventually(async () => {
			const list = (await repl.run("deadletters")) as any[];
			return list.find(d => d.payload?.orderId === orderId) ? list : null;
		});
		const letter = letters.find(d => d.payload.orderId === orderId);
		expect(letter).toMatchObject({
			channel: "flashmart.orders.created",
			group: "failing-consumer",
			eventId: expect.any(String)
		});
	});

	it("order <id> shows the order, its holds and its events, the dead-lettered one included", async () => {
		const answer = await repl.run(`order ${orderId}`);
		expect(answer.order).toMatchObject({ id: orderId, status: "pending_payment" });
		expect(answer.holds).toEqual([{ productId, quantity: 2 }]);
		expect(answer.events.emitted).toEqual(["orders.created"]);
		expect(answer.events.deadLettered).toHaveLength(1);
		expect(answer.payment.error).toMatch(/NOT_FOUND/);
	});

	it("as <role> call runs admin actions as an admin and refuses them as a customer", async () => {
		expect(await repl.run(`as admin call inventory.get --productId ${productId}`)).toMatchObject({
			productId,
			reserved: 2
		});
		const refused = await repl.run(`as customer call inventory.get '{"productId":"${productId}"}'`);
		expect(refused.error).toMatch(/FORBIDDEN/);
		expect((await repl.run(`as nobody call inventory.get`)).error).toMatch(/role must be/);
	});

	it("replay <eventId> delivers the dead letter again and takes it off the list", async () => {
		const letter = ((await repl.run("deadletters")) as any[]).find(
			d => d.payload.orderId === orderId
		);
		expect(await repl.run("as admin call failingConsumer.heal")).toEqual({ healed: true });
		expect((await repl.run(`replay ${letter.eventId}`)).replayed.eventId).toBe(letter.eventId);
		await eventually(async () =>
			((await repl.run("as admin call failingConsumer.taken")) as string[]).includes(letter.eventId)
		);
		const left = (await repl.run("deadletters")) as any[];
		expect(left.find(d => d.eventId === letter.eventId)).toBeUndefined();
		expect((await repl.run(`replay ${letter.eventId}`)).error).toMatch(/No dead letter/);
	});

	it("ledger <orderId> and order <id> show the charge once the order is paid", async () => {
		const paid = await api(base, "POST", `/api/orders/${orderId}/pay`, {
			token: customer,
			body: { paymentToken: "tok_visa" },
			headers: { "Idempotency-Key": unique("p") }
		});
		expect(paid.status).toBe(200);
		const ledger = await repl.run(`ledger ${orderId}`);
		expect(ledger.payment).toMatchObject({ orderId, status: "succeeded", amount: 3000 });
		expect(ledger.entries.length).toBeGreaterThanOrEqual(1);
		const answer = await repl.run(`order ${orderId}`);
		expect(answer.order.status).toBe("paid");
		expect(answer.events.emitted).toEqual(["orders.created", "orders.paid"]);
		expect(answer.holds).toEqual([]);
	});

	it("sale <id> shows a live sale's units left, held and sold, and its open holds", async () => {
		const product = await api(base, "POST", "/api/products", {
			token: adminToken,
			body: { sku: unique("SALE"), name: "Sale Item", price: 2000, category: "testing", stock: 10 }
		});
		const sale = await api(base, "POST", "/api/sales", {
			token: adminToken,
			body: {
				name: "repl sale",
				startsAt: new Date(Date.now() - 1000).toISOString(),
				endsAt: new Date(Date.now() + 3_600_000).toISOString(),
				items: [{ productId: product.body.id, salePrice: 900, units: 4, perCustomerLimit: 2 }]
			}
		});
		expect(sale.status).toBe(201);
		await api(base, "POST", "/api/cart/items", {
			token: customer,
			body: { productId: product.body.id, quantity: 2 }
		});
		const order = await api(base, "POST", "/api/orders", {
			token: customer,
			body: { shippingAddress: ADDRESS },
			headers: { "Idempotency-Key": unique("sale") }
		});
		expect(order.status).toBe(201);
		const answer = await repl.run(`sale ${sale.body.id}`);
		expect(answer).toMatchObject({
			id: sale.body.id,
			status: "live",
			items: [{ productId: product.body.id, salePrice: 900, units: 4, left: 2, held: 2, sold: 0 }],
			holdsOpen: 1
		});
	});
});
