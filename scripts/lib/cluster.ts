/**
 * Starting and stopping real processes on this machine: a nats-server with JetStream on a free loopback port,
 * FlashMart nodes (dist/server.js) as child processes. Used by the tests, `npm run cluster` and `npm run bench`,
 * so they all run the cluster the same way. Every process started here is stopped by `stopAll()`, and killed
 * when this process exits, so a failed test leaves no orphans.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

export const ROOT = path.resolve(
	__dirname,
	"..",
	"..",
	fs.existsSync(path.join(__dirname, "..", "..", "package.json")) ? "" : ".."
);
export const SERVER_JS = path.join(ROOT, "dist", "server.js");

const live = new Set<ChildProcess>();
process.on("exit", () => {
	for (const child of live) child.kill("SIGKILL");
});

/**
 * A port nobody listens on right now, on 127.0.0.1, from below the kernel's ephemeral range: a port taken from that
 * range (listen on 0) is free only until some other process binds port 0 or connects out and is handed the same
 * one, and a node then fails with EADDRINUSE (seen: a backend's METRICS_PORT=0 on the port picked for a gateway).
 */
export async function freePort(): Promise<number> {
	const [low] = ephemeralRange();
	const from = 10000;
	const to = Math.max(from + 1000, low - 1);
	for (let tries = 0; tries < 200; tries++) {
		const port = from + Math.floor(Math.random() * (to - from));
		// Not one this process handed out already (it may not be bound yet).
		if (handedOut.has(port) || !(await canListen(port))) continue;
		handedOut.add(port);
		return port;
	}
	throw new Error(`no free port found between ${from} and ${to}`);
}

const handedOut = new Set<number>();

/** The kernel's ephemeral port range (Linux), or the IANA one elsewhere. */
function ephemeralRange(): [number, number] {
	try {
		const [low, high] = fs
			.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8")
			.trim()
			.split(/\s+/)
			.map(Number);
		if (low > 0 && high >= low) return [low, high];
	} catch {
		// Not Linux.
	}
	return [49152, 65535];
}

function canListen(port: number): Promise<boolean> {
	return new Promise(resolve => {
		const srv = net.createServer();
		srv.unref();
		srv.once("error", () => resolve(false));
		srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
	});
}

/** A throw-away RS256 key pair (PEM) for a local cluster: the cluster mode never defaults secrets. */
export function makeKeyPair(): { privateKey: string; publicKey: string } {
	return generateKeyPairSync("rsa", {
		modulusLength: 2048,
		publicKeyEncoding: { type: "spki", format: "pem" },
		privateKeyEncoding: { type: "pkcs8", format: "pem" }
	});
}

/** A Moleculer namespace unique to this run, so runs sharing a NATS server never see each other. */
export function uniqueNamespace(prefix = "fm"): string {
	return `${prefix}-${process.pid}-${randomBytes(3).toString("hex")}`;
}

const tempDirs = new Set<string>();

/** A new directory under the system temp dir, removed by `stopAll()`. */
export function tempDir(prefix: string): string {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), `flashmart-${prefix}-`));
	tempDirs.add(dir);
	return dir;
}

export function findTool(name: string, candidates: string[] = []): string {
	for (const c of candidates) if (fs.existsSync(c)) return c;
	try {
		return execFileSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).trim();
	} catch {
		throw new Error(
			`${name} is not installed: run 'bash scripts/ensure-test-tools.sh' (installs it with apt-get as root)`
		);
	}
}

export interface Proc {
	name: string;
	child: ChildProcess;
	/** Everything the process printed so far (stdout and stderr). */
	output(): string;
	/** Resolves with the exit code (or the signal name) once the process has exited. */
	exited: Promise<number | string>;
	stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | string>;
	kill9(): Promise<number | string>;
}

function track(name: string, child: ChildProcess, echo: boolean): Proc {
	live.add(child);
	let out = "";
	const onData = (chunk: Buffer) => {
		const text = chunk.toString();
		out += text;
		if (out.length > 4_000_000) out = out.slice(-2_000_000);
		if (echo)
			for (const line of text.split("\n")) if (line) process.stdout.write(`[${name}] ${line}\n`);
	};
	child.stdout?.on("data", onData);
	child.stderr?.on("data", onData);
	const exited = new Promise<number | string>(resolve => {
		child.on("exit", (code, signal) => {
			live.delete(child);
			resolve(code ?? signal ?? -1);
		});
	});
	const stop = async (signal: NodeJS.Signals = "SIGTERM", graceMs = 15000) => {
		if (child.exitCode !== null || child.signalCode !== null) return exited;
		child.kill(signal);
		const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
		const result = await exited;
		clearTimeout(timer);
		return result;
	};
	return {
		name,
		child,
		output: () => out,
		exited,
		stop,
		kill9: () => stop("SIGKILL", 0)
	};
}

export interface NatsServer {
	url: string;
	port: number;
	monitorPort: number;
	storeDir: string;
	proc: Proc;
	stop(): Promise<void>;
	/** Starts it again on the same ports and store (a NATS restart). */
	restart(): Promise<void>;
}

/** Starts nats-server with JetStream on free loopback ports and its own store directory. */
export async function startNats(
	opts: { echo?: boolean; port?: number; args?: string[] } = {}
): Promise<NatsServer> {
	const bin = findTool("nats-server", [
		"/usr/sbin/nats-server",
		"/usr/bin/nats-server",
		"/usr/local/bin/nats-server"
	]);
	const port = opts.port ?? (await freePort());
	const monitorPort = await freePort();
	const storeDir = tempDir("nats");
	const launch = async (): Promise<Proc> => {
		const child = spawn(
			bin,
			[
				"-a",
				"127.0.0.1",
				"-p",
				String(port),
				"-m",
				String(monitorPort),
				"-js",
				"-sd",
				storeDir,
				// More flags, e.g. `-c <file>` for accounts and their JetStream limits, or --user and --pass.
				...(opts.args ?? [])
			],
			{
				stdio: ["ignore", "pipe", "pipe"],
				// Its own process group: a Ctrl-C in the terminal reaches the nodes, which then disconnect cleanly,
				// and the script stops the server last.
				detached: true
			}
		);
		const proc = track(`nats:${port}`, child, !!opts.echo);
		await waitForPort(port, 10000, proc);
		return proc;
	};
	const server: NatsServer = {
		url: `nats://127.0.0.1:${port}`,
		port,
		monitorPort,
		storeDir,
		proc: await launch(),
		async stop() {
			await server.proc.stop("SIGTERM", 5000);
		},
		async restart() {
			await server.proc.stop("SIGTERM", 5000);
			server.proc = await launch();
		}
	};
	return server;
}

export async function waitForPort(port: number, timeoutMs: number, proc?: Proc): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (Date.now() < deadline) {
		if (proc && (proc.child.exitCode !== null || proc.child.signalCode !== null)) {
			throw new Error(
				`${proc.name} exited before listening on ${port}:\n${proc.output().slice(-3000)}`
			);
		}
		const ok = await new Promise<boolean>(resolve => {
			const sock = net.connect(port, "127.0.0.1");
			sock.once("connect", () => {
				sock.destroy();
				resolve(true);
			});
			sock.once("error", () => resolve(false));
		});
		if (ok) return;
		await sleep(50);
	}
	throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

export const sleep = (ms: number) => new Promise<void>(resolve => setTimeout(resolve, ms));

export interface NodeOptions {
	/** A name for logs and output prefixes. */
	name: string;
	/** Environment on top of the defaults below (TRANSPORTER, SERVICES, NAMESPACE, ...). */
	env: Record<string, string | undefined>;
	/** Extra command-line flags for server.js. */
	args?: string[];
	/** Flags for node itself (e.g. --cpu-prof). */
	nodeArgs?: string[];
	echo?: boolean;
}

/**
 * Runs `node <args...>` (node flags, then a script and its arguments) from the project root, with `env` on top of
 * this process's environment (an undefined value removes a variable).
 */
export function spawnNode(
	name: string,
	args: string[],
	env: Record<string, string | undefined>,
	echo = false
): Proc {
	const merged: Record<string, string> = {};
	for (const [k, v] of Object.entries({ ...process.env, ...env }))
		if (v !== undefined) merged[k] = v;
	const child = spawn(process.execPath, args, {
		cwd: ROOT,
		env: merged,
		stdio: ["ignore", "pipe", "pipe"]
	});
	return track(name, child, echo);
}

/**
 * Starts `node dist/server.js` as a child process with the given environment, and with glibc's malloc held to 2
 * arenas unless MALLOC_ARENA_MAX says otherwise, as `npm start` and the image run a node (see README "Performance").
 */
export function startNode(opts: NodeOptions): Proc {
	if (!fs.existsSync(SERVER_JS))
		throw new Error(`${SERVER_JS} is missing: run 'npm run build' first`);
	return spawnNode(
		opts.name,
		[...(opts.nodeArgs ?? []), SERVER_JS, ...(opts.args ?? [])],
		{ MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? "2", ...opts.env },
		!!opts.echo
	);
}

/** Polls `url` until it answers `status` (default 200), or throws with the node's output. */
export async function waitForStatus(
	url: string,
	opts: { status?: number; timeoutMs?: number; proc?: Proc } = {}
): Promise<void> {
	const want = opts.status ?? 200;
	const deadline = Date.now() + (opts.timeoutMs ?? 20000);
	let last = "no answer";
	while (Date.now() < deadline) {
		if (opts.proc && (opts.proc.child.exitCode !== null || opts.proc.child.signalCode !== null)) {
			throw new Error(`${opts.proc.name} exited:\n${opts.proc.output().slice(-3000)}`);
		}
		try {
			const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
			last = `${res.status} ${await res.text()}`;
			if (res.status === want) return;
		} catch (err) {
			last = String(err);
		}
		await sleep(100);
	}
	throw new Error(
		`${url} did not answer ${want} (last: ${last})${opts.proc ? `\n${opts.proc.output().slice(-3000)}` : ""}`
	);
}

/** Stops every process this module started (SIGTERM, then SIGKILL after the grace period), removes temp dirs. */
export async function stopAll(graceMs = 10000): Promise<void> {
	await Promise.all(
		[...live].map(async child => {
			if (child.exitCode !== null || child.signalCode !== null) return;
			const exited = new Promise(resolve => child.once("exit", resolve));
			child.kill("SIGTERM");
			const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
			await exited;
			clearTimeout(timer);
		})
	);
	for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
	tempDirs.clear();
}
