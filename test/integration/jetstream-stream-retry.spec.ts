/**
 * A durable-event stream whose creation failed, over a real nats-server: the users node's first `users.registered`
 * meets a JetStream account at its stream limit (the creation is refused), stays in the outbox and shows in the
 * backlog gauges; once the limit is raised (a config reload, no restart of anything) the next relay creates the
 * stream and the events flow to a consumer that subscribes afterwards. Then the same for a stream that existed and
 * was lost (deleted, or a NATS that came back with an empty store).
 */
import { connect } from "nats";
import { freePort } from "../../scripts/lib/cluster";
import { type TestCluster, api, startCluster } from "../helpers/flashmart-cluster";
import { streamLimit, streamMessages, streamNames } from "../helpers/jetstream-limits";
import { until } from "../helpers/monitoring";
import { type Probe, startProbe } from "../helpers/shop";

describe("a durable-event stream that could not be created", () => {
	const limit = streamLimit();
	let cluster: TestCluster;
	let metricsUrl: string;
	let probe: Probe | undefined;
	let stream: string;

	beforeAll(async () => {
		const metricsPort = await freePort();
		metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
		cluster = await startCluster({
			services: ["users"],
			natsArgs: limit.args,
			env: { OUTBOX_RELAY_INTERVAL: "250" },
			envFor: { users: { METRICS_PORT: String(metricsPort) } }
		});
		stream = `${cluster.namespace}.users.registered`.split(".").join("_");
	}, 60_000);
	afterAll(async () => {
		await probe?.stop();
		await cluster?.stop();
	});

	/** The users node's outbox gauges, as Prometheus would scrape them. */
	async function outbox(): Promise<{ pending: number; oldest: number }> {
		const text = await (await fetch(metricsUrl)).text();
		const gauge = (name: string) =>
			Number(
				text
					.split("\n")
					.find(l => l.startsWith(`${name}{`) && l.includes('service="users"'))
					?.split(" ")
					.pop() ?? NaN
			);
		return {
			pending: gauge("flashmart_outbox_pending_events"),
			oldest: gauge("flashmart_outbox_oldest_pending_seconds")
		};
	}

	const register = async (tag: string) => {
		const res = await api(cluster.base, "POST", "/api/auth/register", {
			body: { email: `${tag}-${Date.now()}@example.com`, password: "stream-retry-pw", name: tag }
		});
		expect(res.status).toBe(201);
		return res.body.user.id as string;
	};
	const refusals = () =>
		cluster.nodes
			.get("users")!
			.output()
			.split("\n")
			.filter(l => l.includes(`The stream ${stream} of`) && l.includes("could not be created"))
			.length;

	it("keeps the event in the outbox while JetStream refuses the stream, then publishes it once it is allowed", async () => {
		const users = cluster.nodes.get("users")!;
		const pid = users.child.pid;
		const before = await limit.refuseNewStreams(cluster.nats);
		expect(before).not.toContain(stream);

		const first = await register("refused");
		// Refused on the request's own relay and again on later rounds: retried, not remembered as made.
		await until("the creation refused twice", 15000, () => (refusals() >= 2 ? true : undefined));
		expect(await streamNames(cluster.nats)).not.toContain(stream);
		const stuck = await until("the outbox gauges to show it", 10000, async () => {
			const o = await outbox();
			return o.pending >= 1 && o.oldest > 0 ? o : undefined;
		});
		expect(stuck.pending).toBe(1);

		await limit.set(cluster.nats, 0);
		await until("the stream made, holding the event", 15000, async () =>
			(await streamMessages(cluster.nats, stream)) === 1 ? true : undefined
		);
		await until("the outbox empty", 10000, async () => {
			const o = await outbox();
			return o.pending === 0 && o.oldest === 0 ? true : undefined;
		});

		// A consumer subscribing now gets the stored event, and the next one as it is published.
		probe = await startProbe(cluster, { consume: true });
		const second = await register("allowed");
		const delivered = await until("both users.registered at the consumer", 15000, () => {
			const ids = probe!.events
				.filter(e => e.event === "users.registered")
				.map(e => e.payload.userId as string);
			return ids.includes(first) && ids.includes(second) ? ids : undefined;
		});
		expect(delivered.sort()).toEqual([first, second].sort());
		// The same process all along.
		expect(users.child.exitCode).toBeNull();
		expect(users.child.pid).toBe(pid);
	}, 90_000);

	it("makes the stream again when it is lost under a running node (deleted, or a NATS back with an empty store)", async () => {
		const nc = await connect({ servers: `127.0.0.1:${cluster.nats.port}` });
		await (await nc.jetstreamManager()).streams.delete(stream);
		await nc.close();
		expect(await streamMessages(cluster.nats, stream)).toBeUndefined();
		await register("after-loss");
		// The consumers went with the stream; what is shown is that the publisher made it again and stored the event.
		await until("the stream made again, holding the event", 20000, async () =>
			(await streamMessages(cluster.nats, stream)) === 1 ? true : undefined
		);
		await until("the outbox empty", 10000, async () =>
			(await outbox()).pending === 0 ? true : undefined
		);
	}, 60_000);
});
