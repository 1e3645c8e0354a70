/**
 * The simulated payment provider on its own ledger (NeDB): one charge per key whatever is retried or raced, the test
 * tokens of API.md, keyed refunds, and `tok_timeout` charged but never answered.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { testConfig } from "../../../helpers/config";

describe("simulated payment provider", () => {
	const cfg = testConfig({
		DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), "flashmart-provider-"))
	});
	// eslint-disable-next-line @typescript-eslint/no-require-imports
	const { ServiceBroker } = require("moleculer") as typeof import("moleculer");
	// eslint-disable-next-line @typescript-eslint/no-require-imports
	const { DbMixin } =
		require("../../../../mixins/db.mixin") as typeof import("../../../../mixins/db.mixin");
	// eslint-disable-next-line @typescript-eslint/no-require-imports
	const lib =
		require("../../../../adapters/payment-provider") as typeof import("../../../../adapters/payment-provider");
	const broker = new ServiceBroker({ logger: false });
	const svc = broker.createService({
		name: "ledger",
		mixins: [DbMixin(cfg, lib.SIMULATED_LEDGER_STORE)]
	}) as unknown as import("../../../../mixins/db.mixin").DbServiceThis;
	let provider: import("../../../../adapters/payment-provider").SimulatedProvider;
	const charge = (key: string, token = "tok_visa") =>
		provider.charge({ key, amount: 1234, currency: "USD", token, reference: key.split(":")[0] });

	beforeAll(async () => {
		await broker.start();
		provider = new lib.SimulatedProvider(svc.adapter);
	});
	afterAll(() => broker.stop());

	it("charges once per key: a retry or 10 racing requests get the same charge", async () => {
		const first = await charge("o1:0");
		expect(first).toMatchObject({
			status: "succeeded",
			amount: 1234,
			currency: "USD",
			reference: "o1"
		});
		expect(await charge("o1:0")).toEqual(first);
		const raced = await Promise.all(Array.from({ length: 10 }, () => charge("o2:0")));
		expect(new Set(raced.map(c => c.id)).size).toBe(1);
		expect(await provider.entries("o2")).toHaveLength(1);
	});

	it("declines the decline tokens and anything unknown, and keeps the decline under its key", async () => {
		expect(await charge("o3:0", "tok_chargeDeclined")).toMatchObject({
			status: "declined",
			declineCode: "card_declined"
		});
		expect(await charge("o3:1", "tok_insufficientFunds")).toMatchObject({
			declineCode: "insufficient_funds"
		});
		expect(await charge("o3:2", "tok_made_up")).toMatchObject({ declineCode: "invalid_token" });
		// The same key answers what it answered, even with another token.
		expect(await charge("o3:0", "tok_visa")).toMatchObject({ status: "declined" });
		expect(await charge("o3:3", "tok_visa")).toMatchObject({ status: "succeeded" });
	});

	it("tok_timeout: the charge stands but the answer never comes; retrieve and a retry find it", async () => {
		await expect(
			lib.withProviderTimeout(charge("o4:0", "tok_timeout"), 100)
		).rejects.toBeInstanceOf(lib.ProviderTimeoutError);
		expect(await provider.retrieve("o4:0")).toMatchObject({ status: "succeeded", amount: 1234 });
		expect(await lib.withProviderTimeout(charge("o4:0", "tok_timeout"), 100)).toMatchObject({
			status: "succeeded"
		});
		expect(await provider.entries("o4")).toHaveLength(1);
		expect(await provider.retrieve("o4:1")).toBeNull();
	});

	it("refunds once per key, never more than was charged, and only succeeded charges", async () => {
		const paid = await charge("o5:0");
		const refund = await provider.refund({
			key: "refund:o5",
			chargeId: paid.id,
			amount: 9999,
			reference: "o5"
		});
		expect(refund).toMatchObject({ amount: 1234, chargeId: paid.id, status: "succeeded" });
		expect(
			await provider.refund({ key: "refund:o5", chargeId: paid.id, amount: 1234, reference: "o5" })
		).toEqual(refund);
		const declined = await charge("o6:0", "tok_chargeDeclined");
		await expect(
			provider.refund({ key: "refund:o6", chargeId: declined.id, amount: 1, reference: "o6" })
		).rejects.toThrow(/No succeeded charge/);
		expect((await provider.entries("o5")).map(e => e.id.slice(0, 3))).toEqual(["ch_", "re_"]);
	});
});
