import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { testConfig } from "../../helpers/config";

describe("db.mixin on NeDB", () => {
	const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "flashmart-db-"));
	// This suite checks NeDB specifics (the file); store-contract.spec.ts covers MongoDB.
	const cfg = testConfig({ DATA_DIR: dataDir });
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
			DbMixin(cfg, {
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
