/**
 * The embedded default as `npm start` runs it (node dist/server.js, no TRANSPORTER), for e2e tests: on a free
 * loopback port with its own DATA_DIR, `env` on top, answered once `/ready` says 200.
 */
import { type Proc, freePort, startNode, tempDir, waitForStatus } from "../../scripts/lib/cluster";

export async function startEmbedded(
	name: string,
	env: Record<string, string | undefined> = {},
	timeoutMs = 20000
): Promise<{ node: Proc; base: string }> {
	const port = await freePort();
	const base = `http://127.0.0.1:${port}`;
	const node = startNode({
		name,
		env: {
			NODE_ENV: "test",
			TRANSPORTER: undefined,
			SERVICES: undefined,
			REQUIRED_SERVICES: undefined,
			GATEWAY_PORT: String(port),
			GATEWAY_HOST: "127.0.0.1",
			METRICS_PORT: "0",
			DATA_DIR: tempDir(name),
			...env
		}
	});
	await waitForStatus(`${base}/ready`, { proc: node, timeoutMs });
	return { node, base };
}
