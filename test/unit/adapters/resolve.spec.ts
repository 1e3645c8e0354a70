/** Each port's resolve picks the implementation the configuration names, as Moleculer's cachers' resolve does. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadConfig } from "../../../config";
import { resolveEventsAdapter } from "../../../adapters/events";
import { InProcessAdapter } from "../../../adapters/events/in-process";
import { JetStreamAdapter } from "../../../adapters/events/jetstream";
import { LogShipper, resolveLogShipper } from "../../../adapters/logging";
import { LogSender, resolveNotificationSender } from "../../../adapters/notifications";
import { resolveObjectStore } from "../../../adapters/object-store";
import { SimulatedProvider, resolvePaymentProvider } from "../../../adapters/payment-provider";
import { type DbAdapter, resolveStore } from "../../../adapters/store";

const embedded = loadConfig({});

describe("adapters' resolve", () => {
	it("events: in-process without a transporter, JetStream with one", () => {
		expect(resolveEventsAdapter(embedded)).toBeInstanceOf(InProcessAdapter);
		// Made, not connected: the adapter connects when the broker starts.
		const cluster = { ...embedded, transporter: "nats://127.0.0.1:4222" };
		expect(resolveEventsAdapter(cluster)).toBeInstanceOf(JetStreamAdapter);
	});

	it("log shipping: none without ELASTICSEARCH_URL, the Elasticsearch shipper with it", async () => {
		expect(resolveLogShipper(embedded)).toBeNull();
		const shipper = resolveLogShipper(loadConfig({ ELASTICSEARCH_URL: "http://127.0.0.1:1" }));
		expect(shipper).toBeInstanceOf(LogShipper);
		await shipper!.close(10);
	});

	it("notifications: the log sender", () => {
		const sender = resolveNotificationSender(embedded.notifications, { info: () => undefined });
		expect(sender).toBeInstanceOf(LogSender);
		expect(sender.name).toBe("log");
	});

	it("payment provider: the simulated one on its ledger", () => {
		expect(resolvePaymentProvider(embedded.payments, {} as DbAdapter)).toBeInstanceOf(
			SimulatedProvider
		);
	});

	it("store: a NeDB file under DATA_DIR without MONGO_URI", () => {
		const dir = fs.mkdtempSync(path.join(os.tmpdir(), "flashmart-store-"));
		const adapter = resolveStore({ dataDir: dir, mongoUri: null }, "things") as {
			opts?: { filename?: string };
		};
		expect(adapter.opts?.filename).toBe(path.join(dir, "things.db"));
		fs.rmSync(dir, { recursive: true, force: true });
	});

	it("object store: an embedded S3 server without MINIO_ENDPOINT, MinIO's endpoint with it", async () => {
		const dir = fs.mkdtempSync(path.join(os.tmpdir(), "flashmart-s3-"));
		const local = await resolveObjectStore({ ...embedded, dataDir: dir });
		try {
			expect(local.embedded?.endpoint).toBe("127.0.0.1");
			await local.store.ensureBucket();
			expect(await local.store.reachable()).toBe(true);
		} finally {
			await local.embedded?.close();
			fs.rmSync(dir, { recursive: true, force: true });
		}
		const minio = await resolveObjectStore({
			...embedded,
			objectStore: { ...embedded.objectStore, endpoint: "minio.example" }
		});
		expect(minio.embedded).toBeNull();
		expect(minio.store.bucket).toBe(embedded.objectStore.bucket);
	});
});
