import fs from "node:fs";
import os from "node:os";
import path from "node:path";

describe("db.mixin on NeDB", () => {
	const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "flashmart-db-"));
	const saved = { DATA_DIR: process.env.DATA_DIR, MONGO_URI: process.env.MONGO_URI };
	process.env.DATA_DIR = dataDir;
	// This suite checks NeDB specifics (the file); store-contract.spec.ts covers MongoDB.
	delete process.env.MONGO_URI;
	// Required after DATA_DIR is set: config is read once.
	// eslint-disable-next-line @typescript-eslint/no-require-imports
	const { ServiceBroker } = require("moleculer") as typeof import("moleculer");
	// eslint-disable-next-line @typescript-eslint/no-require-imports
	const { DbMixin } =
		require("../../../mixins/db.mixin") as typeof import("../../../mixins/db.mixin");

	let seeded = 0;
	const broker = new ServiceBroker({ logger: false });
	broker.createService({
		name: "things",
		mixins: [
			DbMixin({
				collection: "things",
				indexes: [{ fields: { sku: 1 }, unique: true }],
				async seed() {
					seeded++;
					await this.adapter.insert({ sku: "seed-1" });
				}
			})
		],
		actions: {
			add: {
				params: { sku: "string" },
				handler(ctx) {
					return this.adapter.insert({ sku: ctx.params.sku });
				}
			}
		}
	});

	beforeAll(() => broker.start());
	afterAll(async () => {
		await broker.stop();
		Object.assign(process.env, saved);
		if (saved.DATA_DIR === undefined) delete process.env.DATA_DIR;
		if (saved.MONGO_URI === undefined) delete process.env.MONGO_URI;
	});

	it("seeds an empty collection once", async () => {
		expect(seeded).toBe(1);
		await broker.call("things.add", { sku: "a" });
		expect(fs.existsSync(path.join(dataDir, "things.db"))).toBe(true);
	});

	it("enforces unique indexes in the store", async () => {
		await expect(broker.call("things.add", { sku: "a" })).rejects.toThrow(/unique/i);
	});

	it("switches off moleculer-db's generated CRUD actions", async () => {
		for (const action of ["find", "list", "get", "create", "insert", "update", "remove", "count"]) {
			await expect(broker.call(`things.${action}`)).rejects.toMatchObject({
				type: "SERVICE_NOT_FOUND"
			});
		}
	});

	it("answers its health check while the store is reachable", async () => {
		await expect(broker.call("things.health")).resolves.toEqual({ status: "up" });
	});
});
