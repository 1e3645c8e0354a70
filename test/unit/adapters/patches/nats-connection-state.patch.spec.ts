import { Transporters } from "moleculer";
import {
	TARGET,
	natsDisconnected,
	probe,
	trackNatsConnection
} from "../../../../adapters/patches/nats-connection-state.patch";
import { installedVersion, satisfies } from "../../../../adapters/patches/target";

describe("nats-connection-state patch", () => {
	it("targets the installed Moleculer", () => {
		expect(satisfies(installedVersion(TARGET.package) as string, TARGET.range)).toBe(true);
	});

	it("finds the transporter's connect reading the client's status events", () => {
		expect(probe()).toBeNull();
	});

	it("wraps connect once and keeps the original reachable for the probe", () => {
		const proto = (Transporters as unknown as { NATS: { prototype: { connect: unknown } } }).NATS
			.prototype;
		const before = proto.connect;
		expect(trackNatsConnection()).toBe(true);
		const wrapped = proto.connect;
		expect(wrapped).not.toBe(before);
		expect(trackNatsConnection()).toBe(true);
		expect(proto.connect).toBe(wrapped);
		expect(probe()).toBeNull();
	});

	it("reads a transporter without the mark as connected", () => {
		expect(natsDisconnected(undefined)).toBe(false);
		expect(natsDisconnected({})).toBe(false);
	});
});
