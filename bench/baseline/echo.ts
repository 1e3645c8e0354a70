/** Baseline backend: a bare Moleculer node with one `echo.hello` action, all else default. */
import { ServiceBroker } from "moleculer";

const url = process.env.BENCH_NATS_URL;
const namespace = process.env.BENCH_NAMESPACE;
if (!url || !namespace) {
	console.error("echo: BENCH_NATS_URL and BENCH_NAMESPACE are required");
	process.exit(1);
}

// Nothing but these options: the point is the defaults. Its own SIGTERM handler stops the broker.
const broker = new ServiceBroker({
	namespace,
	nodeID: `baseline-echo-${process.pid}`,
	transporter: { type: "NATS", options: { url } },
	logger: false
});

broker.createService({
	name: "echo",
	actions: {
		hello: () => ({ hello: "world" })
	}
});

broker.start().catch((err: unknown) => {
	console.error("echo: cannot start", err);
	process.exit(1);
});
