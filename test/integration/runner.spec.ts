/**
 * moleculer-runner, the ecosystem's standard way to start services, loads moleculer.config.ts's default export: it
 * must build the broker `npm start` builds (the same middlewares and call options), in both modes.
 */
import fs from "node:fs";
import path from "node:path";
import {
	ROOT,
	type NatsServer,
	type Proc,
	freePort,
	makeKeyPair,
	spawnNode,
	startNats,
	startNode,
	stopAll,
	tempDir,
	uniqueNamespace
} from "../../scripts/lib/cluster";

const RUNNER = path.join(ROOT, "node_modules", "moleculer", "bin", "moleculer-runner.js");
const FIXTURE = path.join(ROOT, "dist", "test", "fixtures", "introspect.service.js");

async function factsOf(start: (env: Record<string, string>) => Proc, env: Record<string, string>) {
	const out = path.join(tempDir("introspect"), "facts.json");
	const node = start({ ...env, INTROSPECT_OUT: out });
	const deadline = Date.now() + 30_000;
	while (!fs.existsSync(out)) {
		if (node.child.exitCode !== null || Date.now() > deadline)
			throw new Error(`${node.name} wrote nothing:\n${node.output().slice(-3000)}`);
		await new Promise(resolve => setTimeout(resolve, 100));
	}
	await node.stop();
	return JSON.parse(fs.readFileSync(out, "utf8"));
}

const viaServer = (env: Record<string, string>) => startNode({ name: "server", env });
const viaRunner = (env: Record<string, string>) =>
	spawnNode("runner", [RUNNER, "--config", path.join(ROOT, "dist", "moleculer.config.js")], {
		MALLOC_ARENA_MAX: "2",
		SERVICEDIR: path.join(ROOT, "dist", "services"),
		...env
	});

describe("moleculer-runner with moleculer.config", () => {
	let nats: NatsServer;
	beforeAll(async () => {
		nats = await startNats();
	});
	afterAll(async () => {
		await stopAll();
		await nats?.stop();
	});

	it("starts the embedded broker npm start starts: same middlewares, options and services", async () => {
		const env = {
			NODE_ENV: "test",
			NODE_ID: "introspected",
			DATA_DIR: tempDir("runner-embedded"),
			GATEWAY_PORT: String(await freePort()),
			GATEWAY_HOST: "127.0.0.1",
			METRICS_PORT: "0",
			SERVICES: `products,inventory,${FIXTURE}`
		};
		const server = await factsOf(viaServer, env);
		const runner = await factsOf(viaRunner, { ...env, DATA_DIR: tempDir("runner-embedded") });
		expect(server.middlewares).toContain("Permissions");
		expect(server.requestTimeout).toBeGreaterThan(0);
		expect(server.hasConfig).toBe(true);
		expect(runner).toEqual(server);
	});

	it("joins a cluster over NATS with the same transporter options", async () => {
		const keys = makeKeyPair();
		const env = {
			NODE_ENV: "test",
			NODE_ID: "introspected",
			NAMESPACE: uniqueNamespace("runner"),
			TRANSPORTER: nats.url,
			CACHER: "redis://127.0.0.1:6379",
			JWT_PRIVATE_KEY: keys.privateKey,
			JWT_PUBLIC_KEY: keys.publicKey,
			METRICS_PORT: "0",
			SERVICES: `users,${FIXTURE}`,
			REQUIRED_SERVICES: "users"
		};
		const server = await factsOf(viaServer, { ...env, DATA_DIR: tempDir("runner-cluster") });
		const runner = await factsOf(viaRunner, { ...env, DATA_DIR: tempDir("runner-cluster") });
		expect(server.transporter).toBe("NatsTransporter");
		expect(server.transporterOptions).toMatchObject({ url: nats.url, reconnectTimeWait: 500 });
		expect(server.cacher).toBe("RedisCacher");
		expect(runner).toEqual(server);
	});
});
