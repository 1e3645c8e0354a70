/**
 * The environment deploy/kubernetes gives each node group is one the node accepts and runs with: one node per group
 * (node dist/server.js), each started with exactly the environment the kubelet would make from the prod overlay
 * (its ConfigMaps, test values for its Secrets, `$(VAR)` expanded), until every node and the gateway answer
 * /ready over a real nats-server that checks the credentials of the TRANSPORTER URL.
 *
 * What is substituted, because all of it runs on one machine: the in-cluster host names by loopback addresses (NATS,
 * Redis, the Elasticsearch stand-in, an S3 server in place of MinIO), the ports by free ones (GATEWAY_PORT,
 * METRICS_PORT, which every pod has to itself), DATA_DIR by a temp dir, NAMESPACE by one unique to the run, and
 * EVENT_STREAM_REPLICAS by 1 (one nats-server, where the manifests run three).
 * And MONGO_URI is left out: no MongoDB server runs here, so the nodes keep NeDB files (test/unit/ops/kubernetes.spec.ts
 * checks that config/ accepts the MONGO_URI the manifests make). The machine's Redis takes no password, so the
 * CACHER password is sent but not checked.
 */
import { type EmbeddedS3, startEmbeddedS3 } from "../../adapters/object-store";
import {
	type NatsServer,
	type Proc,
	freePort,
	startNats,
	startNode,
	stopAll,
	tempDir,
	uniqueNamespace,
	waitForStatus
} from "../../scripts/lib/cluster";
import { containerEnv, find, render, testSecrets } from "../../scripts/lib/kubernetes";
import { type EsStandIn, SHIPPER_ENV, startEsStandIn } from "../helpers/es-stand-in";

jest.setTimeout(120000);

const GROUPS = ["users", "catalog", "commerce", "payments", "gateway"];

let nats: NatsServer;
let es: EsStandIn;
let s3: EmbeddedS3;
const nodes = new Map<
	string,
	{ proc: Proc; env: Record<string, string>; metrics: number; http?: number }
>();

beforeAll(async () => {
	const objs = render("prod");
	const secrets = testSecrets();
	// The Secrets' test values, as the servers they belong to are given them.
	secrets["flashmart-elasticsearch"] = { ...SHIPPER_ENV };
	nats = await startNats({
		args: [
			"--user",
			secrets["flashmart-nats"].NATS_USER,
			"--pass",
			secrets["flashmart-nats"].NATS_PASSWORD
		]
	});
	es = await startEsStandIn();
	s3 = await startEmbeddedS3({
		directory: tempDir("k8s-s3"),
		accessKey: secrets["flashmart-minio"].MINIO_ACCESS_KEY,
		secretKey: secrets["flashmart-minio"].MINIO_SECRET_KEY
	});
	const namespace = uniqueNamespace("k8s");
	const hosts: Array<[RegExp, string]> = [
		[/@nats:4222\b/, `@127.0.0.1:${nats.port}`],
		[/@redis:6379\b/, "@127.0.0.1:6379"],
		[/^http:\/\/elasticsearch:9200$/, es.url]
	];
	for (const group of GROUPS) {
		const deployment = find(objs, "Deployment", group)!;
		const container = deployment.spec.template.spec.containers[0];
		const env = containerEnv(objs, container, {
			podName: `${group}-7c9f8-k8s`,
			namespace: "flashmart",
			secrets
		});
		for (const k of Object.keys(env))
			env[k] = hosts.reduce((v, [re, to]) => v.replace(re, to), env[k]);
		if (env.MINIO_ENDPOINT)
			Object.assign(env, { MINIO_ENDPOINT: s3.endpoint, MINIO_PORT: String(s3.port) });
		const metrics = await freePort();
		const http = group === "gateway" ? await freePort() : undefined;
		Object.assign(env, {
			METRICS_PORT: String(metrics),
			DATA_DIR: tempDir(`k8s-${group}`),
			NAMESPACE: namespace
		});
		if (http) env.GATEWAY_PORT = String(http);
		delete env.MONGO_URI;
		// One nats-server here, where the manifests run three: a stream cannot have more copies than servers.
		expect(env.EVENT_STREAM_REPLICAS).toBe("3");
		env.EVENT_STREAM_REPLICAS = "1";
		// Nothing of this process's environment leaks in: only what the manifests give (plus PATH for node).
		const inherited = Object.fromEntries(Object.keys(process.env).map(k => [k, undefined]));
		const proc = startNode({
			name: `k8s-${group}`,
			env: { ...inherited, PATH: process.env.PATH, ...env }
		});
		nodes.set(group, { proc, env, metrics, http });
	}
});

afterAll(async () => {
	await stopAll();
	await es?.close();
	await s3?.close();
});

describe("the prod overlay's environment", () => {
	it.each(GROUPS)("starts a %s node that reaches /ready on its METRICS_PORT", async group => {
		const node = nodes.get(group)!;
		expect(node.env.TRANSPORTER).toMatch(
			/^nats:\/\/test-nats-user:test-nats-password@127\.0\.0\.1:\d+$/
		);
		await waitForStatus(`http://127.0.0.1:${node.metrics}/ready`, {
			proc: node.proc,
			timeoutMs: 60000
		});
	});

	it("serves the gateway's /live and /ready on GATEWAY_PORT with every group behind it", async () => {
		const node = nodes.get("gateway")!;
		await waitForStatus(`http://127.0.0.1:${node.http}/live`, {
			proc: node.proc,
			timeoutMs: 60000
		});
		await waitForStatus(`http://127.0.0.1:${node.http}/ready`, {
			proc: node.proc,
			timeoutMs: 60000
		});
		const res = await fetch(`http://127.0.0.1:${node.http}/api/products`);
		expect(res.status).toBe(200);
	});

	it("names each node after its pod and ships its logs with the manifests' Elasticsearch credentials", async () => {
		for (const [group, node] of nodes) expect(node.proc.output()).toContain(`${group}-7c9f8-k8s`);
		await waitFor(() => es.docs.some(d => d.index.startsWith("logs-flashmart-")));
		// Refused for bad credentials never (the template request is refused to this user's role, as in ES).
		expect(es.refused.filter(r => r.status === 401)).toEqual([]);
	});
});

async function waitFor(cond: () => boolean, timeoutMs = 30000): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!cond()) {
		if (Date.now() > deadline) throw new Error("condition not met in time");
		await new Promise(r => setTimeout(r, 100));
	}
}
