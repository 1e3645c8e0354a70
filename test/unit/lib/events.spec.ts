/** The JetStream connection of the durable events keeps what TRANSPORTER says: every server, and its credentials. */
import { natsConnection } from "../../../lib/events";

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
