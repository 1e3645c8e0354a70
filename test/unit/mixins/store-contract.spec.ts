/**
 * The store contract FlashMart's services rely on, through moleculer-db's adapter API: conditional updates that
 * return how many documents they changed, and the operators both backends support. It runs against NeDB always,
 * and against MongoDB whenever MONGO_URI is set (operators: `MONGO_URI=mongodb://... npm test`).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { testConfig } from "../../helpers/config";

const backend = process.env.MONGO_URI ? "MongoDB" : "NeDB";

describe(`store contract on ${backend}`, () => {
	const cfg = testConfig({
		DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), "flashmart-contract-")),
		MONGO_URI: process.env.MONGO_URI
	});
	// eslint-disable-next-line @typescript-eslint/no-require-imports
	const { ServiceBroker } = require("moleculer") as typeof import("moleculer");
	// eslint-disable-next-line @typescript-eslint/no-require-imports
	const { DbMixin } =
		require("../../../mixins/db.mixin") as typeof import("../../../mixins/db.mixin");
	// eslint-disable-next-line @typescript-eslint/no-require-imports
	const { isDuplicateKeyError } =
		require("../../../adapters/store") as typeof import("../../../adapters/store");
	const collection = `contract_${process.pid}_${Date.now()}`;
	const broker = new ServiceBroker({ logger: false });
	const svc = broker.createService({
		name: "contract",
		mixins: [
			DbMixin(cfg, {
				collection,
				indexes: [{ fields: { key: 1 }, unique: true }],
				stores: {
					extra: {
						collection: `${collection}_extra`,
						indexes: [{ fields: { ref: 1 }, unique: true }]
					}
				}
			})
		]
	}) as unknown as import("../../../mixins/db.mixin").DbServiceThis;

	beforeAll(() => broker.start());
	afterAll(async () => {
		await svc.adapter.clear();
		await svc.stores.extra.clear();
		await broker.stop();
	});

	it("refuses a second document with the same unique key", async () => {
		await svc.adapter.insert({ key: "k1", available: 5 });
		const err = await svc.adapter.insert({ key: "k1", available: 1 }).catch(e => e);
		expect(isDuplicateKeyError(err)).toBe(true);
	});

	it("applies a conditional $inc only while the condition holds, and says how many it changed", async () => {
		await svc.adapter.insert({ key: "stock", available: 3, reserved: 0 });
		const take = () =>
			svc.adapter.updateMany(
				{ key: "stock", available: { $gte: 2 } },
				{ $inc: { available: -2, reserved: 2 } }
			);
		expect(await take()).toBe(1);
		expect(await take()).toBe(0);
		expect(await svc.adapter.findOne({ key: "stock" })).toMatchObject({
			available: 1,
			reserved: 2
		});
	});

	it("takes a keyed hold once ($exists, dotted $set), releases it once ($unset)", async () => {
		await svc.adapter.insert({ key: "held", available: 10, holds: {} });
		const take = () =>
			svc.adapter.updateMany(
				{ key: "held", available: { $gte: 3 }, "holds.order1": { $exists: false } },
				{ $inc: { available: -3 }, $set: { "holds.order1": 3 } }
			);
		const release = () =>
			svc.adapter.updateMany(
				{ key: "held", "holds.order1": 3 },
				{ $inc: { available: 3 }, $unset: { "holds.order1": true } }
			);
		expect(await take()).toBe(1);
		expect(await take()).toBe(0);
		expect(await svc.adapter.findOne({ key: "held" })).toMatchObject({
			available: 7,
			holds: { order1: 3 }
		});
		expect(await release()).toBe(1);
		expect(await release()).toBe(0);
		const doc = (await svc.adapter.findOne({ key: "held" })) as {
			available: number;
			holds: object;
		};
		expect(doc.available).toBe(10);
		expect(doc.holds).toEqual({});
	});

	it("pushes to and pulls from arrays, and finds by $in and by a case-insensitive pattern", async () => {
		await svc.adapter.insert({ key: "list", items: [] });
		await svc.adapter.updateMany({ key: "list" }, { $push: { items: { id: "a", n: 1 } } });
		await svc.adapter.updateMany({ key: "list" }, { $push: { items: { id: "b", n: 2 } } });
		expect(
			await svc.adapter.updateMany(
				{ key: "list", "items.id": "a" },
				{ $pull: { items: { id: "a" } } }
			)
		).toBe(1);
		expect(await svc.adapter.findOne({ key: "list" })).toMatchObject({
			items: [{ id: "b", n: 2 }]
		});
		const found = await svc.adapter.find({
			query: { key: { $in: ["k1", "list", "nope"] } },
			sort: ["key"]
		});
		expect(found.map(d => (d as { key: string }).key)).toEqual(["k1", "list"]);
		const pattern = await svc.adapter.find({ query: { key: { $regex: /^LI/i } } });
		expect(pattern).toHaveLength(1);
	});

	it("writes a state change and its outbox events in one update, and removes a published event once", async () => {
		// eslint-disable-next-line @typescript-eslint/no-require-imports
		const { withEvents, outboxEvent } =
			require("../../../mixins/outbox.mixin") as typeof import("../../../mixins/outbox.mixin");
		await svc.adapter.insert({ key: "outboxed", status: "a" });
		const events = [outboxEvent("x.one", { id: 1 }), outboxEvent("x.two", { id: 2 })];
		const move = () =>
			svc.adapter.updateMany(
				{ key: "outboxed", status: "a", flag: { $ne: true } },
				withEvents({ $set: { status: "b" }, $push: { history: "b" } }, events)
			);
		expect(await move()).toBe(1);
		expect(await move()).toBe(0); // the status moved on: neither the change nor its events happen twice
		const pending = await svc.adapter.find({ query: { _outboxPending: { $gt: 0 } } });
		expect(pending.map(d => (d as { key: string }).key)).toEqual(["outboxed"]);
		expect(pending[0]).toMatchObject({
			status: "b",
			history: ["b"],
			_outboxPending: 2,
			_outbox: [{ event: "x.one" }, { event: "x.two" }]
		});
		const publish = (eventId: string) =>
			svc.adapter.updateMany(
				{ key: "outboxed", "_outbox.eventId": eventId },
				{ $pull: { _outbox: { eventId } }, $inc: { _outboxPending: -1 } }
			);
		expect(await publish(events[0].eventId)).toBe(1);
		expect(await publish(events[0].eventId)).toBe(0); // a second relay of the same event changes nothing
		expect(await publish(events[1].eventId)).toBe(1);
		expect(await svc.adapter.count({ query: { _outboxPending: { $gt: 0 } } })).toBe(0);
		expect(await svc.adapter.findOne({ key: "outboxed" })).toMatchObject({
			_outbox: [],
			_outboxPending: 0
		});
	});

	it("gives a service extra collections of its own", async () => {
		await svc.stores.extra.insert({ ref: "r1" });
		expect(isDuplicateKeyError(await svc.stores.extra.insert({ ref: "r1" }).catch(e => e))).toBe(
			true
		);
		expect(await svc.stores.extra.count({ query: { ref: "r1" } })).toBe(1);
		expect(await svc.adapter.count({ query: { ref: "r1" } })).toBe(0);
	});
});
