/**
 * The outbox and the in-process event adapter (the embedded mode): an event written with a state change reaches its
 * consumer and leaves the outbox; one left behind by a crash is relayed by the periodic relay; a consumer that keeps
 * failing is retried, then its message is dead-lettered and counted; an event written before the adapter is up waits
 * without a warning (a start's own writes), one that fails later is warned about.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { ServiceBroker } from "moleculer";
import { EventsNotReadyError, eventsMiddleware } from "../../../adapters/events";
import { InProcessAdapter } from "../../../adapters/events/in-process";
import { METRIC } from "../../../lib/metric-names";
import BusinessMetrics from "../../../middlewares/business-metrics.middleware";
import { DbMixin } from "../../../mixins/db.mixin";
import * as outbox from "../../../mixins/outbox.mixin";
import { testConfig } from "../../helpers/config";

describe("outbox and in-process events", () => {
	const cfg = testConfig({
		DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), "flashmart-outbox-")),
		OUTBOX_RELAY_INTERVAL: "100",
		EVENT_MAX_RETRIES: "2"
	});

	const received: Array<{ event: string; payload: any }> = [];
	let failures = 0;
	const broker = new ServiceBroker({
		logger: false,
		metrics: { enabled: true, reporter: [] },
		middlewares: [BusinessMetrics, eventsMiddleware(cfg)]
	});
	const things = broker.createService({
		name: "things",
		mixins: [
			DbMixin(cfg, { collection: "things", indexes: [outbox.OUTBOX_INDEX] }),
			outbox.OutboxMixin(cfg)
		],
		actions: {
			async make(this: any, ctx: any) {
				const doc = await this.adapter.insert({
					_id: ctx.params.id,
					...outbox.outboxFields([outbox.outboxEvent("things.made", { thingId: ctx.params.id })])
				});
				if (ctx.params.relay) await this.relayOutbox(doc._id);
				return doc._id;
			}
		}
	} as never) as any;
	broker.createService({
		name: "watcher",
		channels: {
			"things.made": {
				group: "watcher",
				handler: async (ctx: any) =>
					void received.push({ event: "things.made", payload: ctx.params })
			},
			"things.poison": {
				group: "watcher",
				handler: async () => {
					failures++;
					throw new Error("cannot handle this");
				}
			}
		}
	} as never);

	const waitFor = async (check: () => boolean, ms = 3000) => {
		const until = Date.now() + ms;
		while (!check() && Date.now() < until) await new Promise(r => setTimeout(r, 20));
		return check();
	};

	beforeAll(() => broker.start());
	afterAll(async () => {
		await broker.stop();
	});

	it("delivers an event written with its document, with eventId and occurredAt, and empties the outbox", async () => {
		await broker.call("things.make", { id: "t1", relay: true });
		expect(received.filter(r => r.payload.thingId === "t1")).toEqual([
			{
				event: "things.made",
				payload: { thingId: "t1", eventId: expect.any(String), occurredAt: expect.any(String) }
			}
		]);
		// Nothing left to publish: out of the relay's sparse index altogether (no pending count of 0).
		const relayed = (await things.adapter.findById("t1")) as Record<string, unknown>;
		expect(relayed).toMatchObject({ _outbox: [] });
		expect(relayed).not.toHaveProperty("_outboxPending");
	});

	it("relays an event a crash left in the outbox (written, never published) on the next relay round", async () => {
		await broker.call("things.make", { id: "t2", relay: false });
		expect(await waitFor(() => received.some(r => r.payload.thingId === "t2"))).toBe(true);
		expect(received.filter(r => r.payload.thingId === "t2")).toHaveLength(1);
		expect(await waitFor(() => false, 300)).toBe(false); // and not again
		expect(received.filter(r => r.payload.thingId === "t2")).toHaveLength(1);
	});

	it("retries a failing consumer, then dead-letters the message and counts it", async () => {
		const send = (broker as any).sendToChannel as (c: string, p: object) => Promise<void>;
		await send("things.poison", { eventId: "p1", occurredAt: new Date().toISOString() });
		expect(failures).toBe(3); // the first delivery and EVENT_MAX_RETRIES more
		const metric = broker.metrics.getMetric(METRIC.EVENTS_DEAD_LETTERED)!;
		// Every channel the node consumes has its series from the start (at 0), as the dead-letter channel names it.
		expect(metric.snapshot()).toEqual([
			expect.objectContaining({ labels: { channel: `${cfg.namespace}.things.made` }, value: 0 }),
			expect.objectContaining({
				labels: { channel: `${cfg.namespace}.things.poison` },
				value: 1
			})
		]);
	});

	it("reports the backlog per service: pending events and the age of the oldest, back to 0 once relayed", async () => {
		const gauge = (name: string) =>
			(
				broker.metrics.getMetric(name) as unknown as {
					snapshot(): Array<{ labels: { service: string }; value: number }>;
				}
			)
				.snapshot()
				.find(v => v.labels.service === "things")?.value;
		const send = jest
			.spyOn(broker as unknown as { sendToChannel(): Promise<void> }, "sendToChannel")
			.mockRejectedValue(new Error("stream unavailable"));
		try {
			const stuck = outbox.outboxEvent("things.made", { thingId: "stuck" });
			stuck.payload.occurredAt = new Date(Date.now() - 600_000).toISOString();
			await things.adapter.insert({ _id: "stuck", ...outbox.outboxFields([stuck]) });
			expect(await waitFor(() => (gauge(METRIC.OUTBOX_OLDEST_PENDING) ?? 0) >= 600)).toBe(true);
			expect(gauge(METRIC.OUTBOX_PENDING)).toBe(1);
		} finally {
			send.mockRestore();
		}
		expect(await waitFor(() => gauge(METRIC.OUTBOX_PENDING) === 0)).toBe(true);
		expect(gauge(METRIC.OUTBOX_OLDEST_PENDING)).toBe(0);
		expect(received.some(r => r.payload.thingId === "stuck")).toBe(true);
	});

	it("keeps an event written before the adapter is up without a warning, and warns of any other failure", async () => {
		// The in-process adapter before its consumers are subscribed (a start seeding the demo catalog).
		await expect(new InProcessAdapter().publish("things.made", {})).rejects.toBeInstanceOf(
			EventsNotReadyError
		);
		const logger = things.logger as { warn(): void; debug(): void };
		const warn = jest.spyOn(logger, "warn").mockImplementation(() => undefined);
		const debug = jest.spyOn(logger, "debug").mockImplementation(() => undefined);
		const send = jest.spyOn(
			broker as unknown as { sendToChannel(): Promise<void> },
			"sendToChannel"
		);
		try {
			send.mockRejectedValue(new EventsNotReadyError());
			await broker.call("things.make", { id: "early", relay: true });
			expect(warn).not.toHaveBeenCalled();
			expect(debug).toHaveBeenCalledWith(
				"Event things.made not published yet; it stays in the outbox",
				expect.objectContaining({ error: expect.stringContaining("not started yet") })
			);
			send.mockRejectedValue(new Error("stream unavailable"));
			await broker.call("things.make", { id: "late", relay: true });
			expect(warn).toHaveBeenCalledWith(
				"Event things.made not published yet; it stays in the outbox",
				expect.objectContaining({ error: "stream unavailable" })
			);
		} finally {
			send.mockRestore();
			warn.mockRestore();
			debug.mockRestore();
		}
		// Both are published once the adapter takes them: the periodic relay.
		expect(
			await waitFor(() =>
				["early", "late"].every(id => received.some(r => r.payload.thingId === id))
			)
		).toBe(true);
	});
});
