/** Baseline gateway: a bare moleculer-web gateway with one alias, all else default. */
import type { ServiceSchema } from "moleculer";
import { ServiceBroker } from "moleculer";
import ApiGateway from "moleculer-web";

const url = process.env.BENCH_NATS_URL;
const namespace = process.env.BENCH_NAMESPACE;
const port = Number(process.env.BENCH_PORT);
if (!url || !namespace || !Number.isInteger(port) || port <= 0) {
	console.error("gateway: BENCH_NATS_URL, BENCH_NAMESPACE and BENCH_PORT are required");
	process.exit(1);
}

// Nothing but these options: the point is the defaults. Its own SIGTERM handler stops the broker.
const broker = new ServiceBroker({
	namespace,
	nodeID: `baseline-gateway-${process.pid}`,
	transporter: { type: "NATS", options: { url } },
	logger: false
});

broker.createService({
	name: "api",
	mixins: [ApiGateway as ServiceSchema],
	// Port and loopback address are the only settings besides the route.
	settings: {
		port,
		ip: "127.0.0.1",
		routes: [{ path: "/", aliases: { "GET /echo": "echo.hello" } }]
	}
});

broker.start().catch((err: unknown) => {
	console.error("gateway: cannot start", err);
	process.exit(1);
});
