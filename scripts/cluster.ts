/**
 * `npm run cluster`: a local multi-process cluster on this machine for demos and tests: a nats-server (JetStream,
 * a free port unless NATS_PORT is set), an S3 server for the media node (as MinIO would be), the gateway node and one
 * node per backend service, each with its own DATA_DIR under ./data/cluster/<service>. The cluster mode never
 * defaults secrets, so this script makes a JWT key pair for the run and an admin password unless ADMIN_EMAIL and
 * ADMIN_PASSWORD are set. Output is prefixed per node; Ctrl-C stops every process cleanly.
 */
import { randomBytes } from "node:crypto";
import path from "node:path";
import { ALL_SERVICES } from "../config";
import { startEmbeddedS3 } from "../adapters/object-store";
import {
	ROOT,
	type Proc,
	makeKeyPair,
	startNats,
	startNode,
	stopAll,
	uniqueNamespace,
	waitForStatus
} from "./lib/cluster";

async function main(): Promise<void> {
	const dataRoot = path.join(ROOT, "data", "cluster");
	const nats = await startNats({
		port: process.env.NATS_PORT ? Number(process.env.NATS_PORT) : undefined
	});
	const s3 = await startEmbeddedS3({ directory: path.join(dataRoot, "s3") });
	const namespace = process.env.NAMESPACE ?? uniqueNamespace("cluster");
	const port = process.env.GATEWAY_PORT ?? "5921";
	const keys = makeKeyPair();
	const adminEmail = process.env.ADMIN_EMAIL ?? "admin@flashmart.local";
	const adminPassword = process.env.ADMIN_PASSWORD ?? randomBytes(12).toString("base64url");
	console.log(
		`nats-server on ${nats.url} (monitoring http://127.0.0.1:${nats.monitorPort}), namespace '${namespace}'`
	);
	console.log(`S3 server on http://127.0.0.1:${s3.port} for the media node`);

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
					DATA_DIR: path.join(dataRoot, service),
					JWT_PUBLIC_KEY: keys.publicKey,
					JWT_PRIVATE_KEY: service === "users" ? keys.privateKey : undefined,
					ADMIN_EMAIL: adminEmail,
					ADMIN_PASSWORD: adminPassword,
					SEED_DEMO: process.env.SEED_DEMO ?? "true",
					MINIO_ENDPOINT: s3.endpoint,
					MINIO_PORT: String(s3.port),
					MINIO_ACCESS_KEY: s3.accessKey,
					MINIO_SECRET_KEY: s3.secretKey
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
		await s3.close();
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
	console.log(
		`Admin: ${adminEmail} / ${process.env.ADMIN_PASSWORD ? "(from ADMIN_PASSWORD)" : adminPassword}`
	);
	console.log(`Join it with a REPL: TRANSPORTER=${nats.url} NAMESPACE=${namespace} npm run repl`);
}

main().catch(async err => {
	console.error(err instanceof Error ? err.message : err);
	await stopAll();
	process.exit(1);
});
