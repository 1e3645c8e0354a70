/**
 * scripts/health-check.sh against real parts where this machine has them and loopback stand-ins where it has not:
 * a real nats-server running the stack's own docker/nats/nats.conf (JetStream, client credentials), a real FlashMart
 * gateway and users node, and one HTTP stand-in answering as Prometheus, Alertmanager, Grafana, Elasticsearch,
 * Kibana, MinIO and mongodb-exporter do. Separately: nodes join the stack's NATS with the TRANSPORTER shape compose
 * gives them (nats://user:password@nats:4222), and nobody joins without the password.
 */
import { type ChildProcess, spawn } from "node:child_process";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import {
	type Proc,
	ROOT,
	findTool,
	freePort,
	makeKeyPair,
	startNats,
	startNode,
	stopAll,
	tempDir,
	uniqueNamespace,
	waitForPort,
	waitForStatus
} from "../../scripts/lib/cluster";

const NATS_USER = "flashmart";
const NATS_PASSWORD = "n4ts-pw-0123456789abcdef";
// A quote and a backslash: the script must hand them to curl intact.
const ELASTIC_PASSWORD = 'el"astic\\pw';

const state = { esStatus: "yellow", mongodbUp: 1, grafanaDb: "ok", prometheus: 200 };
let stub: http.Server;
let stubUrl: string;
let nats: ChildProcess;
let natsPort: number;
let natsMonitor: number;
let gateway: string;
const elasticAuths: string[] = [];

function answer(res: http.ServerResponse, status: number, body: unknown): void {
	res.writeHead(status, { "content-type": "application/json" });
	res.end(typeof body === "string" ? body : JSON.stringify(body));
}

function startStub(): Promise<void> {
	stub = http.createServer((req, res) => {
		const url = new URL(req.url ?? "/", "http://x");
		const authorized =
			req.headers.authorization ===
			`Basic ${Buffer.from(`elastic:${ELASTIC_PASSWORD}`).toString("base64")}`;
		switch (url.pathname) {
			case "/-/healthy":
				return answer(res, state.prometheus, "Healthy.");
			case "/api/health":
				return answer(res, 200, { database: state.grafanaDb, version: "11.3.0" });
			case "/_cluster/health":
				elasticAuths.push(req.headers.authorization ?? "");
				return authorized
					? answer(res, 200, { cluster_name: "docker-cluster", status: state.esStatus })
					: answer(res, 401, { error: "missing authentication credentials" });
			case "/api/status":
				return authorized
					? answer(res, 200, { status: { overall: { level: "available", summary: "ok" } } })
					: answer(res, 401, {});
			case "/minio/health/live":
				return answer(res, 200, "");
			case "/metrics":
				return answer(
					res,
					200,
					`# TYPE mongodb_up gauge\nmongodb_up{cluster_role="mongod"} ${state.mongodbUp}\n`
				);
			default:
				return answer(res, 404, {});
		}
	});
	return new Promise(resolve =>
		stub.listen(0, "127.0.0.1", () => {
			stubUrl = `http://127.0.0.1:${(stub.address() as AddressInfo).port}`;
			resolve();
		})
	);
}

/** nats-server with the compose stack's config file; only the addresses and the store move to this machine. */
async function startStackNats(): Promise<void> {
	natsPort = await freePort();
	natsMonitor = await freePort();
	const bin = findTool("nats-server", [
		"/usr/sbin/nats-server",
		"/usr/bin/nats-server",
		"/usr/local/bin/nats-server"
	]);
	nats = spawn(
		bin,
		[
			"-c",
			path.join(ROOT, "docker", "nats", "nats.conf"),
			"-a",
			"127.0.0.1",
			"-p",
			String(natsPort),
			"-m",
			String(natsMonitor),
			"-sd",
			tempDir("nats-conf")
		],
		{ env: { ...process.env, NATS_USER, NATS_PASSWORD }, stdio: "ignore" }
	);
	await waitForPort(natsPort, 10000);
}

interface Run {
	code: number | null;
	stdout: string;
	stderr: string;
}

function healthCheck(env: Record<string, string> = {}): Promise<Run> {
	return new Promise((resolve, reject) => {
		const child = spawn("bash", [path.join(ROOT, "scripts", "health-check.sh")], {
			env: {
				PATH: process.env.PATH,
				HEALTH_GATEWAY_URL: gateway,
				HEALTH_PROMETHEUS_URL: stubUrl,
				HEALTH_GRAFANA_URL: stubUrl,
				HEALTH_ALERTMANAGER_URL: stubUrl,
				HEALTH_ELASTICSEARCH_URL: stubUrl,
				HEALTH_KIBANA_URL: stubUrl,
				HEALTH_MINIO_URL: stubUrl,
				HEALTH_NATS_URL: `http://127.0.0.1:${natsMonitor}`,
				HEALTH_MONGODB_EXPORTER_URL: stubUrl,
				HEALTH_TIMEOUT: "3",
				ELASTIC_PASSWORD,
				...env
			}
		});
		let stdout = "";
		let stderr = "";
		child.stdout.on("data", d => (stdout += d));
		child.stderr.on("data", d => (stderr += d));
		child.on("error", reject);
		child.on("close", code => resolve({ code, stdout, stderr }));
	});
}

/** COMPONENT → STATUS from the printed table. */
function table(stdout: string): Record<string, string> {
	const rows: Record<string, string> = {};
	for (const line of stdout.split("\n").slice(1)) {
		const m = line.match(/^(.{22}) (UP|DOWN)\s/);
		if (m) rows[m[1].trim()] = m[2];
	}
	return rows;
}

const COMPONENTS = [
	"gateway /health",
	"gateway /api/health",
	"prometheus",
	"alertmanager",
	"grafana",
	"elasticsearch",
	"kibana",
	"minio",
	"nats (jetstream)",
	"mongodb"
];

beforeAll(async () => {
	await startStub();
	await startStackNats();
	gateway = await startGatewayAndUsers((await startNats()).url, "hc");
}, 60000);

const authNodes: Proc[] = [];

/** A users node and a gateway over `transporter`; answers the gateway's base URL once /ready is 200. */
async function startGatewayAndUsers(transporter: string, name: string): Promise<string> {
	const keys = makeKeyPair();
	const namespace = uniqueNamespace(name);
	const common = {
		NODE_ENV: "test",
		NAMESPACE: namespace,
		TRANSPORTER: transporter,
		METRICS_PORT: "0",
		LOG_LEVEL: "warn",
		REQUIRED_SERVICES: "users",
		JWT_PRIVATE_KEY: keys.privateKey,
		JWT_PUBLIC_KEY: keys.publicKey
	};
	const users = startNode({
		name: `${name}-users`,
		env: {
			...common,
			SERVICES: "users",
			NODE_ID: `${name}-users-${process.pid}`,
			DATA_DIR: tempDir(`${name}-users`)
		}
	});
	const port = await freePort();
	const proc = startNode({
		name: `${name}-gateway`,
		env: {
			...common,
			SERVICES: "api",
			NODE_ID: `${name}-gateway-${process.pid}`,
			GATEWAY_HOST: "127.0.0.1",
			GATEWAY_PORT: String(port),
			DATA_DIR: tempDir(`${name}-gw`)
		}
	});
	if (name === "hc-auth") authNodes.push(proc, users);
	const base = `http://127.0.0.1:${port}`;
	await waitForStatus(`${base}/ready`, { proc, timeoutMs: 30000 });
	return base;
}

afterAll(async () => {
	await stopAll();
	nats?.kill("SIGTERM");
	await new Promise<void>(resolve => stub?.close(() => resolve()));
});

describe("the stack's NATS configuration", () => {
	it("lets nodes in with the credentials compose puts in TRANSPORTER (transporter and JetStream events)", async () => {
		// /ready needs the users node through the gateway over this server: both logged in, with their events.
		const base = await startGatewayAndUsers(
			`nats://${NATS_USER}:${NATS_PASSWORD}@127.0.0.1:${natsPort}`,
			"hc-auth"
		);
		expect((await fetch(`${base}/ready`)).status).toBe(200);
		// Each node opens two connections: the transporter's and the durable events' (`<nodeID>-events`). /ready can
		// answer before the second one is up, so wait for both nodes' events connections, or for a node to die.
		const deadline = Date.now() + 15000;
		let names: string[] = [];
		while (Date.now() < deadline) {
			const connz = (await (await fetch(`http://127.0.0.1:${natsMonitor}/connz`)).json()) as {
				connections?: Array<{ name?: string }>;
			};
			names = (connz.connections ?? [])
				.map(c => c.name ?? "")
				.filter(n => n.startsWith("hc-auth-"));
			const dead = authNodes.find(p => p.child.exitCode !== null || p.child.signalCode !== null);
			if (dead) throw new Error(`${dead.name} exited:\n${dead.output().slice(-1500)}`);
			if (names.filter(n => n.endsWith("-events")).length >= 2) break;
			await new Promise(r => setTimeout(r, 200));
		}
		expect(names.filter(n => n.endsWith("-events")).sort()).toEqual([
			expect.stringMatching(/^hc-auth-gateway-\d+-events$/),
			expect.stringMatching(/^hc-auth-users-\d+-events$/)
		]);
		await new Promise(r => setTimeout(r, 1000));
		expect(authNodes.map(p => p.child.exitCode)).toEqual([null, null]);
	});

	it("refuses a node with a wrong password", async () => {
		const varz = (await (await fetch(`http://127.0.0.1:${natsMonitor}/varz`)).json()) as {
			auth_required: boolean;
			jetstream?: { config?: { store_dir?: string } };
		};
		expect(varz.auth_required).toBe(true);
		const refused = startNode({
			name: "intruder",
			env: {
				NODE_ENV: "test",
				NAMESPACE: uniqueNamespace("hc"),
				TRANSPORTER: `nats://${NATS_USER}:wrong-password@127.0.0.1:${natsPort}`,
				SERVICES: "users",
				METRICS_PORT: "0",
				JWT_PRIVATE_KEY: makeKeyPair().privateKey,
				DATA_DIR: tempDir("hc-intruder")
			}
		});
		const deadline = Date.now() + 15000;
		while (
			Date.now() < deadline &&
			!/Authorization Violation|AUTHORIZATION_VIOLATION/i.test(refused.output())
		) {
			await new Promise(r => setTimeout(r, 200));
		}
		expect(refused.output()).toMatch(/Authorization Violation|AUTHORIZATION_VIOLATION/i);
		await refused.stop("SIGKILL", 2000);
	});
});

describe("scripts/health-check.sh", () => {
	it("prints a row per component and exits 0 when everything is up", async () => {
		const r = await healthCheck();
		expect(r.stderr).toBe("");
		expect(r.code).toBe(0);
		expect(r.stdout.split("\n")[0]).toMatch(/^COMPONENT\s+STATUS\s+DETAIL$/);
		expect(table(r.stdout)).toEqual(Object.fromEntries(COMPONENTS.map(c => [c, "UP"])));
		expect(r.stdout).toMatch(/elasticsearch\s+UP\s+cluster yellow/);
		expect(r.stdout).toMatch(/all 10 checks passed/);
		// Logged in to Elasticsearch with the password exactly as set.
		expect(elasticAuths.at(-1)).toBe(
			`Basic ${Buffer.from(`elastic:${ELASTIC_PASSWORD}`).toString("base64")}`
		);
	});

	it("exits 1 and marks the parts that are down", async () => {
		state.esStatus = "red";
		state.mongodbUp = 0;
		state.prometheus = 503;
		try {
			const r = await healthCheck({ HEALTH_MINIO_URL: `http://127.0.0.1:${await freePort()}` });
			expect(r.code).toBe(1);
			const rows = table(r.stdout);
			expect(rows).toMatchObject({
				elasticsearch: "DOWN",
				mongodb: "DOWN",
				prometheus: "DOWN",
				// One stand-in answers /-/healthy for both.
				alertmanager: "DOWN",
				minio: "DOWN",
				"gateway /health": "UP",
				"nats (jetstream)": "UP",
				grafana: "UP"
			});
			expect(r.stdout).toMatch(/minio\s+DOWN\s+.* -> 000/);
			expect(r.stderr).toMatch(/5 of 10 checks failed/);
		} finally {
			Object.assign(state, { esStatus: "yellow", mongodbUp: 1, prometheus: 200 });
		}
	});

	it("reports NATS down when it stops", async () => {
		nats.kill("SIGTERM");
		await new Promise(resolve => nats.once("exit", resolve));
		const r = await healthCheck();
		expect(r.code).toBe(1);
		expect(table(r.stdout)["nats (jetstream)"]).toBe("DOWN");
	});
});
