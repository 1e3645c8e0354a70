/**
 * A FlashMart cluster for integration tests: a real nats-server, gateway node(s) and one node per backend service,
 * each a separate process with its own DATA_DIR, a namespace per run, and a JWT key pair made for the run
 * (the cluster mode never defaults secrets).
 */
import {
	type NatsServer,
	type Proc,
	freePort,
	makeKeyPair,
	startNats,
	startNode,
	stopAll,
	tempDir,
	uniqueNamespace,
	waitForStatus
} from "../../scripts/lib/cluster";

export { makeKeyPair };

export interface ClusterOptions {
	/** Backend services, one node each (e.g. ["users"]). */
	services: string[];
	/** How many gateway nodes (default 1). */
	gateways?: number;
	/** Environment for every node. */
	env?: Record<string, string>;
	/** Environment per service name (or "api" for gateways). */
	envFor?: Record<string, Record<string, string>>;
	/** More nats-server flags (e.g. `-c <file>` for JetStream account limits). */
	natsArgs?: string[];
}

export interface TestCluster {
	nats: NatsServer;
	namespace: string;
	/** Base URLs of the gateways, e.g. http://127.0.0.1:41234 */
	gateways: string[];
	base: string;
	nodes: Map<string, Proc>;
	gatewayProcs: Proc[];
	keys: { privateKey: string; publicKey: string };
	/**
	 * Starts (again) the node of a service, e.g. after kill9, with `env` on top of its usual environment (a NODE_ID
	 * there restarts it under that name; otherwise each start is a new node).
	 */
	startService(name: string, env?: Record<string, string>): Promise<Proc>;
	/** Starts gateway `i` again on its port (after it was stopped), once it is ready. */
	startGateway(i: number): Promise<Proc>;
	stop(): Promise<void>;
}

export async function startCluster(opts: ClusterOptions): Promise<TestCluster> {
	const nats = await startNats({ args: opts.natsArgs });
	const namespace = uniqueNamespace("it");
	const keys = makeKeyPair();
	const common: Record<string, string> = {
		NODE_ENV: "test",
		TRANSPORTER: nats.url,
		NAMESPACE: namespace,
		LOG_FORMAT: "json",
		LOG_LEVEL: "info",
		METRICS_PORT: "0",
		REQUEST_TIMEOUT: "5000",
		HEARTBEAT_INTERVAL: "1",
		HEARTBEAT_TIMEOUT: "3",
		JWT_PRIVATE_KEY: keys.privateKey,
		JWT_PUBLIC_KEY: keys.publicKey,
		REQUIRED_SERVICES: opts.services.join(","),
		// Suites register their buyers from one loopback address; registration throttling has its own suite
		// (hardening-accounts.spec.ts).
		REGISTER_MAX_PER_WINDOW: "100000",
		...opts.env
	};
	const dataDirs = new Map<string, string>();
	const nodes = new Map<string, Proc>();

	const startService = async (name: string, env: Record<string, string> = {}): Promise<Proc> => {
		if (!dataDirs.has(name)) dataDirs.set(name, tempDir(name));
		const proc = startNode({
			name,
			env: {
				...common,
				...opts.envFor?.[name],
				// A node restarted under its old name (as a container keeps its hostname) when the caller names it.
				NODE_ID: `${name}-${Date.now()}`,
				...env,
				SERVICES: name,
				DATA_DIR: dataDirs.get(name)
			}
		});
		nodes.set(name, proc);
		return proc;
	};

	for (const name of opts.services) await startService(name);

	const gateways: string[] = [];
	const gatewayProcs: Proc[] = [];
	const launchGateway = (i: number, port: number) =>
		startNode({
			name: `gateway${i}`,
			env: {
				...common,
				...opts.envFor?.api,
				NODE_ID: `gateway${i}-${Date.now()}`,
				SERVICES: "api",
				GATEWAY_HOST: "127.0.0.1",
				GATEWAY_PORT: String(port),
				DATA_DIR: tempDir("gateway")
			}
		});
	for (let i = 0; i < (opts.gateways ?? 1); i++) {
		const port = await freePort();
		gateways.push(`http://127.0.0.1:${port}`);
		gatewayProcs.push(launchGateway(i, port));
	}
	const startGateway = async (i: number): Promise<Proc> => {
		gatewayProcs[i] = launchGateway(i, Number(new URL(gateways[i]).port));
		await waitForStatus(`${gateways[i]}/ready`, { proc: gatewayProcs[i], timeoutMs: 30000 });
		return gatewayProcs[i];
	};
	for (let i = 0; i < gateways.length; i++) {
		await waitForStatus(`${gateways[i]}/ready`, { proc: gatewayProcs[i], timeoutMs: 30000 });
	}

	return {
		nats,
		namespace,
		gateways,
		base: gateways[0],
		nodes,
		gatewayProcs,
		keys,
		startService,
		startGateway,
		stop: () => stopAll()
	};
}

/** fetch with a JSON body; answers status, headers and the parsed body. */
export async function api(
	base: string,
	method: string,
	path: string,
	opts: {
		body?: unknown;
		token?: string;
		headers?: Record<string, string>;
		signal?: AbortSignal;
	} = {}
): Promise<{ status: number; headers: Headers; body: any }> {
	const headers: Record<string, string> = { ...opts.headers };
	if (opts.body !== undefined) headers["Content-Type"] = "application/json";
	if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
	const res = await fetch(`${base}${path}`, {
		method,
		headers,
		body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
		signal: opts.signal
	});
	const text = await res.text();
	let body: unknown = text;
	try {
		body = text ? JSON.parse(text) : null;
	} catch {
		// not JSON: keep the text
	}
	return { status: res.status, headers: res.headers, body };
}
