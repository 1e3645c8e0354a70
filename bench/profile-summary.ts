/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): self time by function and by package, the biggest first.
 *
 *   node dist/bench/profile-summary.js <file.cpuprofile> [--top 25]
 *
 * Used by the bench report (bench/full-report.ts) for the nodes `--profile` named, and by hand.
 */
import fs from "node:fs";
import path from "node:path";

interface CallFrame {
	functionName: string;
	url: string;
	lineNumber: number;
}
interface ProfileNode {
	id: number;
	callFrame: CallFrame;
	children?: number[];
}
interface CpuProfile {
	nodes: ProfileNode[];
	samples: number[];
	timeDeltas: number[];
	startTime: number;
	endTime: number;
}

/** The longest interval one sample may stand for (the sampler's default interval is 1 ms). */
const MAX_SAMPLE_GAP_US = 100_000;

export interface SelfTime {
	name: string;
	ms: number;
	/** Share of the sampled time, 0-100. */
	percent: number;
}

export interface ProfileSummary {
	file: string;
	totalMs: number;
	/** Time in (idle) and (program)/(garbage collector), in ms. */
	idleMs: number;
	gcMs: number;
	byFunction: SelfTime[];
	byPackage: SelfTime[];
}

/** "node_modules/moleculer/src/x.js" → "moleculer"; project files → "flashmart:<dir>"; node internals → "node:". */
function packageOf(url: string): string {
	if (!url) return "(native)";
	const nm = url.lastIndexOf("node_modules/");
	if (nm >= 0) {
		const rest = url.slice(nm + "node_modules/".length).split("/");
		return rest[0].startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0];
	}
	if (url.startsWith("node:")) return "node:internal";
	const dist = url.indexOf("/dist/");
	if (dist >= 0) return `flashmart:${url.slice(dist + 6).split("/")[0]}`;
	return url.split("/").slice(-2, -1)[0] ?? url;
}

function label(frame: CallFrame): string {
	const fn = frame.functionName || "(anonymous)";
	if (!frame.url) return fn;
	const file = frame.url.replace(/^file:\/\//, "");
	const nm = file.lastIndexOf("node_modules/");
	const short =
		nm >= 0
			? file.slice(nm + 13)
			: file.includes("/dist/")
				? file.slice(file.indexOf("/dist/") + 6)
				: path.basename(file);
	return `${fn} ${short}:${frame.lineNumber + 1}`;
}

export function summarise(file: string, top = 25): ProfileSummary {
	const profile = JSON.parse(fs.readFileSync(file, "utf8")) as CpuProfile;
	const byId = new Map(profile.nodes.map(n => [n.id, n]));
	const selfUs = new Map<number, number>();
	for (let i = 0; i < profile.samples.length; i++) {
		const id = profile.samples[i];
		// A gap of seconds between two samples is the sampler stalled (seen once at the end of a bench run: 30 s in
		// one sample), not that frame running: it counts as one long interval at most.
		const us = Math.min(profile.timeDeltas[i] ?? 0, MAX_SAMPLE_GAP_US);
		selfUs.set(id, (selfUs.get(id) ?? 0) + us);
	}
	const fn = new Map<string, number>();
	const pkg = new Map<string, number>();
	let total = 0;
	let idle = 0;
	let gc = 0;
	for (const [id, us] of selfUs) {
		const node = byId.get(id);
		if (!node) continue;
		total += us;
		const name = node.callFrame.functionName;
		if (name === "(idle)") {
			idle += us;
			continue;
		}
		if (name === "(garbage collector)") gc += us;
		const l = label(node.callFrame);
		fn.set(l, (fn.get(l) ?? 0) + us);
		const p = name.startsWith("(") ? name : packageOf(node.callFrame.url.replace(/^file:\/\//, ""));
		pkg.set(p, (pkg.get(p) ?? 0) + us);
	}
	const busy = total - idle || 1;
	const list = (m: Map<string, number>) =>
		[...m.entries()]
			.sort((a, b) => b[1] - a[1])
			.slice(0, top)
			.map(([name, us]) => ({
				name,
				ms: Math.round(us / 1000),
				percent: Math.round((us / busy) * 1000) / 10
			}));
	return {
		file,
		totalMs: Math.round(total / 1000),
		idleMs: Math.round(idle / 1000),
		gcMs: Math.round(gc / 1000),
		byFunction: list(fn),
		byPackage: list(pkg)
	};
}

/** Markdown of a summary: busy time, then the top packages and functions (percent of the busy time). */
export function summaryMarkdown(s: ProfileSummary, top = 12): string {
	const busy = s.totalMs - s.idleMs;
	const lines = [
		`\`${path.basename(s.file)}\`: ${busy} ms busy of ${s.totalMs} ms sampled (GC ${s.gcMs} ms)`,
		"",
		"| self time by package | % busy | | self time by function | % busy |",
		"|---|---:|---|---|---:|"
	];
	for (let i = 0; i < top; i++) {
		const p = s.byPackage[i];
		const f = s.byFunction[i];
		if (!p && !f) break;
		lines.push(
			`| ${p ? p.name : ""} | ${p ? p.percent : ""} | | ${f ? f.name.replace(/\|/g, "\\|") : ""} | ${f ? f.percent : ""} |`
		);
	}
	return lines.join("\n");
}

if (require.main === module) {
	const args = process.argv.slice(2);
	const topAt = args.indexOf("--top");
	const top = topAt >= 0 ? Number(args.splice(topAt, 2)[1]) : 25;
	for (const file of args) {
		const s = summarise(file, top);
		process.stdout.write(
			`${file}: busy ${s.totalMs - s.idleMs} ms of ${s.totalMs} ms (GC ${s.gcMs} ms)\n`
		);
		process.stdout.write("  by package:\n");
		for (const p of s.byPackage)
			process.stdout.write(`    ${p.percent.toFixed(1).padStart(5)}%  ${p.name}\n`);
		process.stdout.write("  by function:\n");
		for (const f of s.byFunction)
			process.stdout.write(`    ${f.percent.toFixed(1).padStart(5)}%  ${f.name}\n`);
	}
}
