/** The clusters a run measures: the bare baseline (bench/baseline/) and FlashMart, one node per service. */
import fs from "node:fs";
import path from "node:path";
import { startEmbeddedS3 } from "../adapters/object-store";
import {
	type Proc,
	ROOT,
	SERVER_JS,
	freePort,
	makeKeyPair,
	spawnNode,
	startNode,
	tempDir,
	uniqueNamespace,
	waitForStatus
} from "../scripts/lib/cluster";
import { whileAlive } from "./child";
import type { Cli } from "./cli";
import { PROFILE_DIR } from "./output";
import { BENCH_ADMIN } from "./scenarios";
import { session } from "./session";

export const START_TIMEOUT_MS = 60_000;

export interface Target {
	/** The first gateway's. */
	url: string;
	/** Every gateway's (`--nodes api=2`): request scenarios spread their connections over them. */
	urls: string[];
	procs: Proc[];
}

/** The bare gateway and echo nodes, answering `GET /echo`. */
export async function startBaseline(natsUrl: string): Promise<Target> {
	const port = await freePort();
	const env = {
		BENCH_NATS_URL: natsUrl,
		BENCH_NAMESPACE: uniqueNamespace("bench-base"),
		BENCH_PORT: String(port)
	};
	const script = (name: string) => path.join(__dirname, "baseline", `${name}.js`);
	const echo = spawnNode("baseline-echo", [script("echo")], env);
	session.started.push(echo);
	const gateway = spawnNode("baseline-gateway", [script("gateway")], env);
	session.started.push(gateway);
	const url = `http://127.0.0.1:${port}`;
	await whileAlive([echo, gateway], waitForStatus(`${url}/echo`, { timeoutMs: START_TIMEOUT_MS }));
	return { url, urls: [url], procs: [gateway, echo] };
}

/**
 * FlashMart: a gateway node plus one node per other service, ready (`GET /ready` 200). `env` goes on top of the
 * bench's environment of every node (the observability rows switch metrics and log shipping with it).
 */
export async function startFlashMart(
	natsUrl: string,
	services: string[],
	cli: Cli,
	env: Record<string, string> = {}
): Promise<Target> {
	const namespace = uniqueNamespace("bench");
	const port = await freePort();
	// The cluster mode never defaults secrets: a throw-away RS256 pair for this run. As in
	// production the gateway only verifies tokens (public key); backends also get the private key.
	const keys = makeKeyPair();
	// The media node needs an object store, as MinIO would be in production.
	if (!session.s3) {
		const s3Dir = tempDir("bench-s3");
		session.tempDirs.push(s3Dir);
		session.s3 = await startEmbeddedS3({ directory: s3Dir });
	}
	const s3 = session.s3;
	const common = {
		TRANSPORTER: natsUrl,
		NAMESPACE: namespace,
		NODE_ENV: "production",
		LOG_FORMAT: "json",
		LOG_LEVEL: "warn",
		METRICS_PORT: "0",
		// Spelled out so that a value in the caller's environment cannot change what "ready" means.
		REQUIRED_SERVICES: services.join(","),
		JWT_PUBLIC_KEY: keys.publicKey,
		// The catalog scenarios read the demo catalog.
		SEED_DEMO: "true",
		MINIO_ENDPOINT: s3.endpoint,
		MINIO_PORT: String(s3.port),
		MINIO_ACCESS_KEY: s3.accessKey,
		MINIO_SECRET_KEY: s3.secretKey,
		// The checkout scenarios create their own products as admin.
		ADMIN_EMAIL: BENCH_ADMIN.email,
		ADMIN_PASSWORD: BENCH_ADMIN.password,
		// Every virtual buyer registers from this one loopback address.
		REGISTER_MAX_PER_WINDOW: "100000",
		...env
	};
	const dataDirs = new Map<string, string>();
	const node = (service: string, instance: number, extra: Record<string, string> = {}): Proc => {
		// A second instance of a service shares the first one's store (as replicas share MongoDB in production):
		// it starts once the first has seeded it, and the bench's reads see the same documents on both.
		let dataDir = dataDirs.get(service);
		if (!dataDir) {
			dataDir = tempDir(`bench-${service}`);
			session.tempDirs.push(dataDir);
			dataDirs.set(service, dataDir);
		}
		const suffix = instance > 0 ? `-${instance + 1}` : "";
		const name = `flashmart-${service}${suffix}`;
		const env = {
			...common,
			NODE_ID: `${namespace}-${service}${suffix}`,
			SERVICES: service,
			DATA_DIR: dataDir,
			...extra
		};
		const profiled = cli.profile.includes(service) || cli.profile.includes("all");
		// Node 20 refuses --cpu-prof in NODE_OPTIONS: node flags go on the command line.
		const nodeArgs = profiled
			? [
					"--cpu-prof",
					`--cpu-prof-dir=${PROFILE_DIR}`,
					`--cpu-prof-name=${name}.${process.pid}.cpuprofile`
				]
			: [];
		if (cli.traceGc.includes(service) || cli.traceGc.includes("all")) nodeArgs.push("--trace-gc");
		const proc = startNode({ name, env, nodeArgs });
		session.started.push(proc);
		return proc;
	};
	if (!fs.existsSync(SERVER_JS)) throw new Error(`${SERVER_JS} is missing: run 'npm run build'`);
	if (cli.profile.length > 0) fs.mkdirSync(path.join(ROOT, PROFILE_DIR), { recursive: true });
	const gatewayEnv = (p: number) => ({ GATEWAY_HOST: "127.0.0.1", GATEWAY_PORT: String(p) });
	const gateway = node("api", 0, gatewayEnv(port));
	const backends = services
		.filter(s => s !== "api")
		.map(s => node(s, 0, { JWT_PRIVATE_KEY: keys.privateKey }));
	const url = `http://127.0.0.1:${port}`;
	const procs = [gateway, ...backends];
	await whileAlive(procs, waitForStatus(`${url}/ready`, { timeoutMs: START_TIMEOUT_MS }));
	// `--nodes`: the extra instances, once the first ones are ready (their stores seeded).
	const urls = [url];
	for (const [service, count] of Object.entries(cli.nodes)) {
		if (!services.includes(service)) continue;
		for (let i = 1; i < count; i++) {
			if (service === "api") {
				const extraPort = await freePort();
				const proc = node("api", i, gatewayEnv(extraPort));
				procs.push(proc);
				const extraUrl = `http://127.0.0.1:${extraPort}`;
				await whileAlive(
					procs,
					waitForStatus(`${extraUrl}/ready`, { timeoutMs: START_TIMEOUT_MS })
				);
				urls.push(extraUrl);
			} else {
				const metricsPort = await freePort();
				const proc = node(service, i, {
					JWT_PRIVATE_KEY: keys.privateKey,
					METRICS_ENABLED: "true",
					METRICS_PORT: String(metricsPort)
				});
				procs.push(proc);
				// Its metrics answer once the broker runs; then a moment for the others to see its services.
				await whileAlive(
					procs,
					waitForStatus(`http://127.0.0.1:${metricsPort}/metrics`, { timeoutMs: START_TIMEOUT_MS })
				);
				await new Promise(resolve => setTimeout(resolve, 3_000));
			}
		}
	}
	return { url, urls, procs };
}
