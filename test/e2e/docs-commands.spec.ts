/**
 * The commands README.md and docs/*.md show, run, so they cannot rot (docs/development.md "The documented commands").
 * A fenced shell block says how by its info string:
 *   ```sh test        run with `bash -euo pipefail` from the repository root against a fresh embedded node; exit 0.
 *   ```sh test-serve  starts something that keeps running (a cluster): its gateway's /ready must answer 200, then
 *                     its process group is stopped with SIGTERM and must exit.
 * Every other shell block (sh, bash, shell, console, zsh, or no info string at all) must be in NOT_RUN with the
 * reason it cannot run here; an entry that matches no block fails too, so the list cannot go stale. No block may
 * leave a file in the checkout, and every relative link of these pages must point to a file inside the repository.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { ROOT, type Proc, freePort, tempDir, waitForStatus } from "../../scripts/lib/cluster";
import { startEmbedded } from "../helpers/embedded";

/** A shell block the test does not run, found by its page and the start of its first line. */
interface NotRun {
	page: string;
	starts: string;
	reason: string;
}

const NOT_RUN: NotRun[] = [
	{
		page: "README.md",
		starts: "npm ci && npm start",
		reason:
			".ci/run does exactly this (a clean npm ci, then npm test); test/e2e/gateway.spec.ts runs npm start " +
			"(healthy, ready, exit 0 on Ctrl-C). Running the whole suite from inside it would recurse."
	},
	{
		page: "docs/api.md",
		starts: "npm run client ",
		reason: "npm run client rewrites client/schema.d.ts; .ci/run runs npm run client:check"
	},
	{
		page: "docs/api.md",
		starts: "npm run lint:openapi",
		reason: "npm run lint, which .ci/run runs, ends with npm run lint:openapi"
	},
	{
		page: "docs/development.md",
		starts: "npx jest test/e2e/docs-commands.spec.ts",
		reason: "this spec itself"
	},
	{
		page: "docs/observability.md",
		starts: "npx jest test/unit/monitoring",
		reason: "jest specs, which npm test runs"
	},
	{
		page: "docs/performance.md",
		starts: "npm run bench -- --quick",
		reason:
			"load runs taking minutes at full CPU whose output is a measurement, not a check; bench/REPORT.md " +
			"records a full run"
	},
	{
		page: "docs/operations.md",
		starts: "cp .env.example .env",
		reason: "the compose bring-up: Docker Engine and Compose, which the test machines do not run"
	},
	{
		page: "docs/operations.md",
		starts: "docker compose up -d --scale",
		reason: "docker compose"
	},
	{
		page: "docs/operations.md",
		starts: "scripts/backup.sh ",
		reason: "an upgrade of a compose host (git pull, docker compose build)"
	},
	{
		page: "docs/operations.md",
		starts: "sudo mkdir -p /var/lib/node_exporter",
		reason:
			"a crontab line for a compose host; test/integration/backup.spec.ts runs backup.sh and restore.sh " +
			"against a real S3 server"
	},
	{
		page: "docs/kubernetes.md",
		starts: "NS=flashmart",
		reason: "kubectl against a Kubernetes cluster (Secrets)"
	},
	{
		page: "docs/kubernetes.md",
		starts: "kubectl kustomize deploy/kubernetes/overlays/prod",
		reason: "kubectl apply to a Kubernetes cluster; the render itself is checked by test/unit/ops"
	},
	{
		page: "docs/repl.md",
		starts: "flashmart $ order",
		reason:
			"REPL commands typed at the flashmart $ prompt, not shell; test/e2e/repl.spec.ts runs each of them"
	}
];

const SHELLS = new Set(["", "sh", "bash", "shell", "console", "zsh"]);
const MARKERS = new Set(["test", "test-serve"]);

interface Block {
	page: string;
	/** 1-based line of the opening fence. */
	line: number;
	lang: string;
	marker: string | undefined;
	code: string;
}

const PAGES = [
	"README.md",
	...fs
		.readdirSync(path.join(ROOT, "docs"))
		.filter(f => f.endsWith(".md"))
		.sort()
		.map(f => `docs/${f}`)
];

/**
 * The fenced code blocks of a Markdown page, as CommonMark opens and closes them (``` or ~~~, three or more; closed
 * by a run of the same character at least as long). A fence is recognised at any indentation, so a block inside a
 * list item cannot slip past.
 */
function fencedBlocks(page: string): Block[] {
	const lines = fs.readFileSync(path.join(ROOT, page), "utf8").split("\n");
	const blocks: Block[] = [];
	for (let i = 0; i < lines.length; i++) {
		const open = /^(\s*)(`{3,}|~{3,})\s*([^`]*?)\s*$/.exec(lines[i]);
		if (!open) continue;
		const [, indent, fence, info] = open;
		const body: string[] = [];
		let j = i + 1;
		for (; j < lines.length; j++) {
			const close = /^\s*(`{3,}|~{3,})\s*$/.exec(lines[j]);
			if (close && close[1][0] === fence[0] && close[1].length >= fence.length) break;
			body.push(lines[j].startsWith(indent) ? lines[j].slice(indent.length) : lines[j].trimStart());
		}
		const [lang = "", marker, ...rest] = info.split(/\s+/).filter(Boolean);
		if (rest.length > 0) throw new Error(`${page}:${i + 1}: unexpected info string '${info}'`);
		blocks.push({ page, line: i + 1, lang, marker, code: body.join("\n") });
		i = j;
	}
	return blocks;
}

const BLOCKS = PAGES.flatMap(fencedBlocks).filter(b => SHELLS.has(b.lang));
const where = (b: Block) => `${b.page}:${b.line}`;
const firstLine = (b: Block) => b.code.split("\n").find(l => l.trim() !== "") ?? "";
const marked = (marker: string) => BLOCKS.filter(b => b.marker === marker);

/** The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as hyphens. */
function headingSlugs(file: string): Set<string> {
	const slugs = new Set<string>();
	let inFence = false;
	for (const line of fs.readFileSync(file, "utf8").split("\n")) {
		if (/^\s*(`{3,}|~{3,})/.test(line)) inFence = !inFence;
		const heading = !inFence && /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
		if (heading)
			slugs.add(
				heading[1]
					.toLowerCase()
					.replace(/[^\p{L}\p{N}\s_-]/gu, "")
					.replace(/\s/g, "-")
			);
	}
	return slugs;
}

/** The checkout's changed and untracked files, ignored ones (dist/, data/) aside. */
const checkoutState = () =>
	execFileSync("git", ["status", "--porcelain", "--untracked-files=all"], {
		cwd: ROOT,
		encoding: "utf8"
	});

interface Run {
	code: number | null;
	signal: NodeJS.Signals | null;
	output: string;
}

/** Runs a block's code with bash from the repository root, in a process group of its own. */
function runBash(code: string, env: Record<string, string | undefined>) {
	const child: ChildProcess = spawn("bash", ["-euo", "pipefail", "-c", code], {
		cwd: ROOT,
		env: { ...process.env, ...env },
		stdio: ["ignore", "pipe", "pipe"],
		detached: true
	});
	let output = "";
	child.stdout!.on("data", d => (output += String(d)));
	child.stderr!.on("data", d => (output += String(d)));
	const exited = new Promise<Run>(resolve =>
		child.on("exit", (code, signal) => resolve({ code, signal, output }))
	);
	return { child, exited, output: () => output };
}

/** Whether any process of the group `pgid` is still alive. */
function groupAlive(pgid: number): boolean {
	try {
		process.kill(-pgid, 0);
		return true;
	} catch {
		return false;
	}
}

/** FlashMart's own settings must not leak from the test's environment into a block: it runs as a user's shell would. */
const CLEAN_ENV: Record<string, undefined> = {
	TRANSPORTER: undefined,
	SERVICES: undefined,
	REQUIRED_SERVICES: undefined,
	NAMESPACE: undefined,
	DATA_DIR: undefined,
	ADMIN_EMAIL: undefined,
	ADMIN_PASSWORD: undefined,
	JWT_PRIVATE_KEY: undefined,
	JWT_PUBLIC_KEY: undefined,
	NATS_PORT: undefined
};

describe("the documented shell blocks", () => {
	it("are found, and each is marked to run or listed with the reason it is not", () => {
		expect(marked("test").length).toBeGreaterThan(0);
		expect(marked("test").some(b => b.page === "README.md")).toBe(true);
		expect(marked("test-serve").length).toBeGreaterThan(0);
		const unknown = BLOCKS.filter(b => b.marker !== undefined && !MARKERS.has(b.marker));
		expect(unknown.map(b => `${where(b)}: unknown marker '${b.marker}'`)).toEqual([]);

		const unlisted = BLOCKS.filter(
			b =>
				b.marker === undefined &&
				!NOT_RUN.some(n => n.page === b.page && firstLine(b).startsWith(n.starts))
		);
		expect(unlisted.map(b => `${where(b)}: ${firstLine(b)}`)).toEqual([]);
		const stale = NOT_RUN.filter(
			n =>
				!BLOCKS.some(
					b => b.marker === undefined && b.page === n.page && firstLine(b).startsWith(n.starts)
				)
		);
		expect(stale).toEqual([]);
	});

	it("link only to files inside the repository, and to headings those files have", () => {
		const broken: string[] = [];
		for (const page of PAGES) {
			const text = fs.readFileSync(path.join(ROOT, page), "utf8");
			for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
				if (/^[a-z]+:/i.test(target)) continue;
				const [file, anchor] = target.split("#");
				const resolved = file
					? path.resolve(ROOT, path.dirname(page), file)
					: path.join(ROOT, page);
				if (!resolved.startsWith(ROOT + path.sep))
					broken.push(`${page}: ${target} is outside the repository`);
				else if (!fs.existsSync(resolved)) broken.push(`${page}: ${target} does not exist`);
				else if (anchor && resolved.endsWith(".md") && !headingSlugs(resolved).has(anchor))
					broken.push(`${page}: ${target} names no heading of ${path.relative(ROOT, resolved)}`);
			}
		}
		expect(broken).toEqual([]);
	});
});

describe("the blocks marked `sh test`, against a fresh embedded node", () => {
	let node: Proc;
	let base: string;
	let dataDir: string;
	beforeAll(async () => {
		dataDir = path.join(tempDir("docs-commands"), "data");
		({ node, base } = await startEmbedded("docs-commands", { ...CLEAN_ENV, DATA_DIR: dataDir }));
	});
	afterAll(() => node?.stop());

	it.each(marked("test").map(b => [where(b), b] as const))("%s exits 0", async (_where, block) => {
		// The docs address the default embedded node; here it listens on a free port with its own DATA_DIR.
		const code = block.code
			.replaceAll("http://localhost:5921", base)
			.replace(/(^|[\s"'=])\.\/data\b/g, `$1${dataDir}`);
		const before = checkoutState();
		const run = runBash(code, CLEAN_ENV);
		const result = await run.exited;
		expect({ code: result.code, output: result.output }).toEqual({
			code: 0,
			output: expect.anything()
		});
		expect(checkoutState()).toBe(before);
	});
});

describe("the blocks marked `sh test-serve`", () => {
	const started: ChildProcess[] = [];
	afterAll(() => {
		for (const child of started)
			if (child.pid && groupAlive(child.pid)) process.kill(-child.pid, "SIGKILL");
	});

	it.each(marked("test-serve").map(b => [where(b), b] as const))(
		"%s serves /ready, then stops on SIGTERM",
		async (_where, block) => {
			const [gatewayPort, natsPort, metricsBase] = [
				await freePort(),
				await freePort(),
				await freePort()
			];
			const dataDir = path.join(tempDir("docs-serve"), "data");
			// Fixed ports of the docs become free ones (other work shares this machine), and ./data a fresh directory.
			const code = block.code
				.replace(/\b4222\b/g, String(natsPort))
				.replace(/\bMETRICS_PORT=\d+/g, "METRICS_PORT=0")
				.replace(/(^|[\s"'=])\.\/data\b/g, `$1${dataDir}`);
			const before = checkoutState();
			const run = runBash(code, {
				...CLEAN_ENV,
				GATEWAY_PORT: String(gatewayPort),
				// npm run cluster gives its nodes METRICS_PORT_BASE, +1, +2, ...: a high base keeps them clear of others.
				METRICS_PORT_BASE: String(Math.min(metricsBase, 65000))
			});
			started.push(run.child);
			const ended = run.exited.then(r => {
				throw new Error(
					`the block ended (${r.code ?? r.signal}) before /ready:\n${r.output.slice(-4000)}`
				);
			});
			ended.catch(() => undefined); // the race below reports it; a later end (our SIGTERM) is expected
			await Promise.race([
				waitForStatus(`http://127.0.0.1:${gatewayPort}/ready`, { timeoutMs: 90_000 }),
				ended
			]).catch(err => {
				throw new Error(
					`${err instanceof Error ? err.message : err}\n${run.output().slice(-4000)}`
				);
			});

			process.kill(-run.child.pid!, "SIGTERM");
			await run.exited;
			const deadline = Date.now() + 30_000;
			while (groupAlive(run.child.pid!) && Date.now() < deadline)
				await new Promise(r => setTimeout(r, 100));
			expect(groupAlive(run.child.pid!)).toBe(false);
			expect(checkoutState()).toBe(before);
		},
		150_000
	);
});
