/**
 * `npm run cluster`: a local multi-process cluster on this machine for demos and tests: a nats-server (JetStream,
 * free port unless NATS_PORT is set), the gateway node, and one node per backend service, each with its own
 * DATA_DIR under ./data/cluster/<service>. Output is prefixed per node; Ctrl-C stops every process cleanly.
 */
import path from "node:path";
import { ALL_SERVICES } from "../config";
import {
	ROOT,
	type Proc,
	startNats,
	startNode,
	stopAll,
	uniqueNamespace,
	waitForStatus
} from "./lib/cluster";

async function main(): Promise<void> {
	const nats = await startNats({
		echo: false,
		port: process.env.NATS_PORT ? Number(process.env.NATS_PORT) : undefined
	});
	const namespace = process.env.NAMESPACE ?? uniqueNamespace("cluster");
	const port = process.env.GATEWAY_PORT ?? "5921";
	console.log(
		`nats-server on ${nats.url} (monitoring http://127.0.0.1:${nats.monitorPort}), namespace '${namespace}'`
	);

	const nodes: Proc[] = [];
	let metricsPort = Number(process.env.METRICS_PORT_BASE ?? 3031);
	for (const service of ALL_SERVICES) {
		nodes.push(
			startNode({
				name: service,
				echo: true,
				env: {
					TRANSPORTER: nats.url,
					NAMESPACE: namespace,
					NODE_ID: `${service}-1`,
					SERVICES: service,
					GATEWAY_PORT: port,
					METRICS_PORT: String(metricsPort++),
					DATA_DIR: path.join(ROOT, "data", "cluster", service)
				}
			})
		);
	}

	let stopping = false;
	const shutdown = async (code: number) => {
		if (stopping) return;
		stopping = true;
		console.log("Stopping the cluster...");
		await Promise.all(nodes.map(n => n.stop("SIGTERM", 15000)));
		await nats.stop();
		await stopAll();
		process.exit(code);
	};
	process.on("SIGINT", () => void shutdown(0));
	process.on("SIGTERM", () => void shutdown(0));
	for (const n of nodes)
		void n.exited.then(code => !stopping && console.error(`[${n.name}] exited with ${code}`));

	await waitForStatus(`http://127.0.0.1:${port}/ready`, { timeoutMs: 60000 });
	console.log(
		`Cluster ready: http://127.0.0.1:${port} (${ALL_SERVICES.length} nodes). Ctrl-C stops it.`
	);
	console.log(`Join it with a REPL: TRANSPORTER=${nats.url} NAMESPACE=${namespace} npm run repl`);
}

main().catch(async err => {
	console.error(err instanceof Error ? err.message : err);
	await stopAll();
	process.exit(1);
});
