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

/**
 * The service groups docker-compose.yaml and deploy/kubernetes run, one node each (their SERVICES): what `--groups`
 * starts. Calls inside a group stay in its process. test/unit/bench/launch.spec.ts holds this to both files.
 */
export const SERVICE_GROUPS: Record<string, string[]> = {
	api: ["api"],
	users: ["users"],
	catalog: ["products", "media"],
	commerce: ["inventory", "carts", "orders", "pricing"],
	payments: ["payments", "notifications"]
};

/** The nodes a cluster of `services` has: one per service, or (`--groups`) one per group holding any of them. */
export function nodesOf(
	services: string[],
	groups: boolean
): Array<{ name: string; services: string[] }> {
	if (!groups) return services.map(service => ({ name: service, services: [service] }));
	const grouped = Object.entries(SERVICE_GROUPS)
		.map(([name, members]) => ({ name, services: members.filter(m => services.includes(m)) }))
		.filter(group => group.services.length > 0);
	const loose = services.filter(s => !grouped.some(g => g.services.includes(s)));
	return [...grouped, ...nodesOf(loose, false)];
}

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
	/** A node named `name` running `members` (a service, or a group's services). */
	const node = (
		name: string,
		members: string[],
		instance: number,
		extra: Record<string, string> = {}
	): Proc => {
		// A second instance of a service shares the first one's store (as replicas share MongoDB in production):
		// it starts once the first has seeded it, and the bench's reads see the same documents on both.
		let dataDir = dataDirs.get(name);
		if (!dataDir) {
			dataDir = tempDir(`bench-${name}`);
			session.tempDirs.push(dataDir);
			dataDirs.set(name, dataDir);
		}
		const suffix = instance > 0 ? `-${instance + 1}` : "";
		const procName = `flashmart-${name}${suffix}`;
		const env = {
			...common,
			NODE_ID: `${namespace}-${name}${suffix}`,
			SERVICES: members.join(","),
			DATA_DIR: dataDir,
			...extra
		};
		const named = (list: string[]) =>
			list.includes("all") || list.includes(name) || members.some(m => list.includes(m));
		// Node 20 refuses --cpu-prof in NODE_OPTIONS: node flags go on the command line.
		const nodeArgs = named(cli.profile)
			? [
					"--cpu-prof",
					`--cpu-prof-dir=${PROFILE_DIR}`,
					`--cpu-prof-name=${procName}.${process.pid}.cpuprofile`
				]
			: [];
		if (named(cli.traceGc)) nodeArgs.push("--trace-gc");
		const proc = startNode({ name: procName, env, nodeArgs });
		session.started.push(proc);
		return proc;
	};
	if (!fs.existsSync(SERVER_JS)) throw new Error(`${SERVER_JS} is missing: run 'npm run build'`);
	if (cli.profile.length > 0) fs.mkdirSync(path.join(ROOT, PROFILE_DIR), { recursive: true });
	const gatewayEnv = (p: number) => ({ GATEWAY_HOST: "127.0.0.1", GATEWAY_PORT: String(p) });
	const gateway = node("api", ["api"], 0, gatewayEnv(port));
	const backends = nodesOf(
		services.filter(s => s !== "api"),
		cli.groups
	).map(n => node(n.name, n.services, 0, { JWT_PRIVATE_KEY: keys.privateKey }));
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
				const proc = node("api", ["api"], i, gatewayEnv(extraPort));
				procs.push(proc);
				const extraUrl = `http://127.0.0.1:${extraPort}`;
				await whileAlive(
					procs,
					waitForStatus(`${extraUrl}/ready`, { timeoutMs: START_TIMEOUT_MS })
				);
				urls.push(extraUrl);
			} else {
				const metricsPort = await freePort();
				const proc = node(service, [service], i, {
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
