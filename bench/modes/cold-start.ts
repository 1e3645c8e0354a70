/** `--report`'s cold-start phase: how long the embedded mode (`npm start`) takes until it is ready. */
import { spawn } from "node:child_process";
import { performance } from "node:perf_hooks";
import { ROOT, freePort, tempDir } from "../../scripts/lib/cluster";
import { withTimeout } from "../child";
import { START_TIMEOUT_MS } from "../launch";
import { session } from "../session";
import type { ColdStartResult } from "../types";

const COLD_START_ATTEMPTS = 3;

/** Polls `url` every 20 ms until it answers 200: ms since `t0`. */
async function readyAfter(url: string, t0: number): Promise<number> {
	while (performance.now() - t0 < START_TIMEOUT_MS) {
		try {
			const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
			await res.arrayBuffer();
			if (res.status === 200) return Math.round(performance.now() - t0);
		} catch {
			// Not listening yet.
		}
		await new Promise(resolve => setTimeout(resolve, 20));
	}
	throw new Error(`${url} did not answer 200 within ${START_TIMEOUT_MS} ms`);
}

/** `--report`: `npm start` in the embedded mode (fresh DATA_DIR each time) until `GET /ready` answers 200. */
export async function measureColdStart(): Promise<ColdStartResult> {
	const attemptsMs: number[] = [];
	for (let i = 0; i < COLD_START_ATTEMPTS && !session.interrupted; i++) {
		const port = await freePort();
		const dataDir = tempDir("bench-cold");
		session.tempDirs.push(dataDir);
		const env: Record<string, string> = {};
		for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
		// The embedded default: whatever the caller's environment says about a cluster does not apply.
		for (const k of [
			"TRANSPORTER",
			"SERVICES",
			"MONGO_URI",
			"CACHER",
			"ELASTICSEARCH_URL",
			"NODE_ID",
			"NAMESPACE"
		])
			delete env[k];
		Object.assign(env, {
			GATEWAY_HOST: "127.0.0.1",
			GATEWAY_PORT: String(port),
			METRICS_PORT: "0",
			DATA_DIR: dataDir,
			LOG_LEVEL: "warn"
		});
		const t0 = performance.now();
		// Its own process group: npm and the node it execs stop together.
		const child = spawn("npm", ["start", "--silent"], {
			cwd: ROOT,
			env,
			detached: true,
			stdio: "ignore"
		});
		try {
			attemptsMs.push(await readyAfter(`http://127.0.0.1:${port}/ready`, t0));
		} finally {
			const exited = new Promise(resolve => child.once("exit", resolve));
			if (child.pid) process.kill(-child.pid, "SIGTERM");
			await withTimeout(exited, 15_000, "the embedded node's stop").catch(() => {
				if (child.pid) process.kill(-child.pid, "SIGKILL");
			});
		}
	}
	const sorted = [...attemptsMs].sort((a, b) => a - b);
	return { command: "npm start", attemptsMs, medianMs: sorted[Math.floor(sorted.length / 2)] ?? 0 };
}
