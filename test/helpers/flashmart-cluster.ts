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
	sleep,
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
	const gatewayIds: string[] = [];
	const launchGateway = (i: number, port: number) => {
		gatewayIds[i] = `gateway${i}-${Date.now()}`;
		gateways[i] = `http://127.0.0.1:${port}`;
		gatewayProcs[i] = startNode({
			name: `gateway${i}`,
			env: {
				...common,
				...opts.envFor?.api,
				NODE_ID: gatewayIds[i],
				SERVICES: "api",
				GATEWAY_HOST: "127.0.0.1",
				GATEWAY_PORT: String(port),
				DATA_DIR: tempDir("gateway")
			}
		});
	};
	/**
	 * Whether gateway `i` came up on its port: its own /health (its node id) and /ready. A backend node's metrics port
	 * is ephemeral and can take the port picked for the gateway first; it answers /ready too, while the gateway exits
	 * (address in use): false then.
	 */
	const gatewayUp = async (i: number): Promise<boolean> => {
		const proc = gatewayProcs[i];
		const deadline = Date.now() + 30000;
		while (Date.now() < deadline) {
			if (proc.child.exitCode !== null || proc.child.signalCode !== null) return false;
			const body = await fetch(`${gateways[i]}/health`, { signal: AbortSignal.timeout(2000) })
				.then(res => res.json())
				.catch(() => null);
			if ((body as { nodeID?: string } | null)?.nodeID === gatewayIds[i]) {
				await waitForStatus(`${gateways[i]}/ready`, { proc, timeoutMs: 30000 });
				return true;
			}
			await sleep(100);
		}
		throw new Error(`${proc.name} did not come up:\n${proc.output().slice(-3000)}`);
	};
	for (let i = 0; i < (opts.gateways ?? 1); i++) launchGateway(i, await freePort());
	for (let i = 0; i < gateways.length; i++) {
		for (let attempt = 1; !(await gatewayUp(i)); attempt++) {
			if (attempt === 3)
				throw new Error(`gateway${i} exited:\n${gatewayProcs[i].output().slice(-3000)}`);
			launchGateway(i, await freePort());
		}
	}
	const startGateway = async (i: number): Promise<Proc> => {
		launchGateway(i, Number(new URL(gateways[i]).port));
		if (!(await gatewayUp(i)))
			throw new Error(`gateway${i} exited:\n${gatewayProcs[i].output().slice(-3000)}`);
		return gatewayProcs[i];
	};

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
