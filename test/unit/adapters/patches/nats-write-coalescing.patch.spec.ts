import fs from "node:fs";
import path from "node:path";
import { connect, StringCodec, type NatsConnection } from "nats";
import {
	TARGET,
	coalesceNatsWrites,
	probe
} from "../../../../adapters/patches/nats-write-coalescing.patch";
import { outOfRange } from "../../../../adapters/patches/target";
import { type NatsServer, startNats } from "../../../../scripts/lib/cluster";

/** The socket writes of a connection (nats.js internals: its transport's `send`). */
function countWrites(nc: NatsConnection): { count: number } {
	const transport = (nc as unknown as { protocol: { transport: { send(b: Uint8Array): void } } })
		.protocol.transport;
	const counter = { count: 0 };
	const send = transport.send.bind(transport);
	transport.send = (b: Uint8Array) => {
		counter.count++;
		send(b);
	};
	return counter;
}

describe("nats-write-coalescing (real nats-server)", () => {
	let nats: NatsServer;
	let a: NatsConnection;
	let b: NatsConnection;
	const sc = StringCodec();

	beforeAll(async () => {
		expect(coalesceNatsWrites()).toBe(true);
		nats = await startNats();
		a = await connect({ servers: nats.url });
		b = await connect({ servers: nats.url });
	});
	afterAll(async () => {
		await a?.close();
		await b?.close();
		await nats?.stop();
		if (nats) fs.rmSync(nats.storeDir, { recursive: true, force: true });
	});

	it("sends what separate callbacks of one event-loop turn publish in one write, in order", async () => {
		const received: string[] = [];
		const sub = b.subscribe("coalesce.test", { max: 20 });
		const done = (async () => {
			for await (const m of sub) received.push(sc.decode(m.data));
		})();
		await b.flush();
		const writes = countWrites(a);
		// Twenty callbacks of the same turn, as twenty HTTP requests read in one poll would be.
		await new Promise<void>(resolve => {
			for (let i = 0; i < 20; i++) {
				setImmediate(() => {
					a.publish("coalesce.test", sc.encode(String(i)));
					if (i === 19) resolve();
				});
			}
		});
		await a.flush();
		await done;
		expect(received).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
		// One write for the twenty messages, one for the flush's PING (nats.js's own flushing: one per callback).
		expect(writes.count).toBeLessThanOrEqual(2);
	});

	it("request and reply still work", async () => {
		const sub = b.subscribe("coalesce.echo");
		(async () => {
			for await (const m of sub) m.respond(m.data);
		})();
		await b.flush();
		const replies = await Promise.all(
			Array.from({ length: 10 }, (_, i) =>
				a.request("coalesce.echo", sc.encode(`r${i}`), { timeout: 5000 })
			)
		);
		expect(replies.map(r => sc.decode(r.data))).toEqual(
			Array.from({ length: 10 }, (_, i) => `r${i}`)
		);
		sub.unsubscribe();
	});
});

describe("nats-write-coalescing: the nats.js it was written against", () => {
	it("targets the installed nats.js", () => {
		expect(TARGET.package).toBe("nats");
		expect(outOfRange(TARGET)).toBeNull();
	});

	it("finds ProtocolHandler.sendCommand as it expects (buffer, flush in a microtask or past the limit)", () => {
		const found = probe();
		expect(typeof found === "string" ? found : null).toBeNull();
	});

	it("patches the nats.js Moleculer's transporter and the channels adapter load", () => {
		const here = require.resolve("nats");
		for (const user of ["moleculer", "@moleculer/channels"]) {
			expect(require.resolve("nats", { paths: [path.dirname(require.resolve(user))] })).toBe(here);
		}
	});
});

describe("nats-write-coalescing outside its range", () => {
	afterEach(() => jest.restoreAllMocks());

	it("warns and leaves nats.js as it is", () => {
		const warn = jest.spyOn(process, "emitWarning").mockImplementation(() => undefined);
		jest.isolateModules(() => {
			jest.doMock("../../../../adapters/patches/target", () => ({
				...jest.requireActual("../../../../adapters/patches/target"),
				outOfRange: () => "nats 9.0.0 is outside ~2.29.3"
			}));
			const patch =
				require("../../../../adapters/patches/nats-write-coalescing.patch") as typeof import("../../../../adapters/patches/nats-write-coalescing.patch");
			// The prototype the patch would change (nats.js as Node loads it, not a jest module copy).
			const { proto } = patch.probe() as Exclude<ReturnType<typeof probe>, string>;
			const before = proto.sendCommand;
			expect(patch.coalesceNatsWrites()).toBe(false);
			expect(proto.sendCommand).toBe(before);
		});
		expect(warn).toHaveBeenCalledWith(
			expect.stringContaining("nats 9.0.0 is outside ~2.29.3"),
			expect.objectContaining({ code: "FLASHMART_PATCH_SKIPPED" })
		);
	});
});
