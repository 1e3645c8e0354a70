/**
 * The JetStream connection of the durable events keeps what TRANSPORTER says: every server, and its credentials; a
 * delivery's `working()` only goes out for a consumer that is still busy.
 */
import { connect } from "nats";
import { deferWorking, eventsConnectionOptions, natsConnection } from "../../../../adapters/events";
import { Adapters } from "../../../../adapters/events/channels";
import { JetStreamAdapter } from "../../../../adapters/events/jetstream";
import { freePort, sleep, startNats } from "../../../../scripts/lib/cluster";

describe("natsConnection", () => {
	it("keeps the user and password of the URL (URL-decoded)", () => {
		expect(natsConnection("nats://flashmart:s%40cret@nats:4222")).toEqual({
			servers: ["nats:4222"],
			user: "flashmart",
			pass: "s@cret"
		});
	});

	it("takes every server of a comma-separated list; no credentials when none are given", () => {
		expect(natsConnection("nats://a:4222, nats://b:4223")).toEqual({
			servers: ["a:4222", "b:4223"]
		});
	});
});

describe("deferWorking", () => {
	const message = () => {
		const sent: string[] = [];
		return {
			sent,
			seq: 7,
			working: () => sent.push("working"),
			ack: () => sent.push("ack"),
			nak: () => sent.push("nak"),
			term: () => sent.push("term")
		};
	};
	const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

	it("sends no working() for a handler that acks within the interval", async () => {
		const m = message();
		const seen = deferWorking(m, 40);
		seen.working();
		seen.ack();
		await sleep(100);
		expect(m.sent).toEqual(["ack"]);
		expect(seen.seq).toBe(7);
	});

	it("keeps a slow handler's message from redelivery: working() every interval until it settles", async () => {
		const m = message();
		const seen = deferWorking(m, 30);
		seen.working();
		await sleep(100);
		seen.nak();
		const settled = m.sent.length;
		await sleep(80);
		expect(m.sent.filter(s => s === "working").length).toBeGreaterThanOrEqual(2);
		expect(m.sent[m.sent.length - 1]).toBe("nak");
		expect(m.sent.length).toBe(settled);
	});
});

describe("eventsConnectionOptions (real nats-server)", () => {
	it("waits for a NATS that is down when the node starts (a restart at that moment) instead of failing", async () => {
		const port = await freePort();
		const opts = eventsConnectionOptions(`nats://127.0.0.1:${port}`, "starting-node");
		let settled: "connected" | "failed" | null = null;
		const connecting = connect(opts).then(
			nc => {
				settled = "connected";
				return nc;
			},
			err => {
				settled = "failed";
				throw err;
			}
		);
		await sleep(1200);
		expect(settled).toBeNull(); // still trying: nothing listens on the port yet
		const nats = await startNats({ port });
		try {
			const nc = await connecting;
			expect(settled).toBe("connected");
			expect(nc.getServer()).toContain(String(port));
			await nc.close();
		} finally {
			await nats.stop();
		}
	});

	it("fails at once without it, as nats.js does by default (the node's start would fail)", async () => {
		const port = await freePort();
		const { waitOnFirstConnect: _, ...plain } = eventsConnectionOptions(
			`nats://127.0.0.1:${port}`,
			"starting-node"
		);
		await expect(connect(plain)).rejects.toThrow();
	});
});

describe("JetStreamAdapter.publish", () => {
	/** The adapter with the library's stream manager and publish stubbed: `failures` creations fail first. */
	function adapter(failures: number) {
		const a = new JetStreamAdapter({}, 1000);
		let left = failures;
		const created: string[] = [];
		const internals = a as unknown as {
			createStream(name: string): Promise<unknown>;
			manager: { streams: { info(name: string): Promise<unknown> } };
		};
		// As the library's: a failure is logged and swallowed (undefined), success answers the stream's info.
		internals.createStream = async (name: string) => {
			if (left-- > 0) return undefined;
			created.push(name);
			return { config: { name } };
		};
		internals.manager = {
			streams: {
				info: async (name: string) => {
					if (!created.includes(name)) throw new Error("stream not found");
					return { config: { name } };
				}
			}
		};
		return { a, created };
	}
	const published = jest
		.spyOn(Adapters.NATS.prototype as unknown as { publish(): Promise<void> }, "publish")
		.mockResolvedValue(undefined);
	afterAll(() => published.mockRestore());

	it("refuses the publish while the stream could not be created, and creates it on the next", async () => {
		const { a, created } = adapter(1);
		published.mockClear();
		await expect(a.publish("orders.paid", { eventId: "e1" })).rejects.toThrow(
			/stream orders_paid of orders.paid could not be created/
		);
		expect(published).not.toHaveBeenCalled();
		await a.publish("orders.paid", { eventId: "e1" });
		expect(created).toEqual(["orders_paid"]);
		expect(published).toHaveBeenCalledTimes(1);
		// Created once: not asked again.
		await a.publish("orders.paid", { eventId: "e2" });
		expect(created).toEqual(["orders_paid"]);
		expect(published).toHaveBeenCalledTimes(2);
	});
});
