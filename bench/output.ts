/**
 * The files a run writes: bench/results/latest.json and latest.md every time; with `--report` (and
 * `--rewrite-report`) bench/REPORT.json, REPORT.md and latency.svg.
 */
import fs from "node:fs";
import path from "node:path";
import { ROOT } from "../scripts/lib/cluster";
import { fullReport, latencySvg } from "./full-report";
import { summarise } from "./profile-summary";
import { markdown } from "./report";
import type { BenchReport } from "./types";

export const RESULTS_DIR = path.join(ROOT, "bench", "results");
/** Relative to ROOT, the working directory of every FlashMart node (startNode). */
export const PROFILE_DIR = path.join("bench", "results", "profiles");
/** Hand-written analysis of the missed targets, included in REPORT.md when present. */
const REPORT_NOTES = path.join(ROOT, "bench", "REPORT-notes.md");
/** Hand-written notes of REPORT.md's flash-sale section (figures of `--holds` and flash-sale runs before/after). */
const FLASH_SALE_NOTES = path.join(ROOT, "bench", "REPORT-flash-sale.md");
/** The measurements behind bench/REPORT.md, committed with it: `--rewrite-report` works from them. */
export const REPORT_DATA = path.join(ROOT, "bench", "REPORT.json");

/** The .cpuprofile files under PROFILE_DIR written since `since` (ms), relative to ROOT. */
export function listProfiles(since: number): string[] {
	const dir = path.join(ROOT, PROFILE_DIR);
	if (!fs.existsSync(dir)) return [];
	return fs
		.readdirSync(dir)
		.filter(f => f.endsWith(".cpuprofile") && fs.statSync(path.join(dir, f)).mtimeMs >= since)
		.map(f => path.join(PROFILE_DIR, f));
}

/** bench/results/latest.json and latest.md. */
export function writeLatest(report: BenchReport): void {
	fs.mkdirSync(RESULTS_DIR, { recursive: true });
	fs.writeFileSync(
		path.join(RESULTS_DIR, "latest.json"),
		`${JSON.stringify(report, null, "\t")}\n`
	);
	fs.writeFileSync(path.join(RESULTS_DIR, "latest.md"), markdown(report));
}

/** `--report`: bench/REPORT.json, then REPORT.md and the chart from it. */
export function writeReportFiles(report: BenchReport & { args: string[] }): void {
	fs.writeFileSync(REPORT_DATA, `${JSON.stringify(report, null, "\t")}\n`);
	writeFullReport(report, report.args);
}

/** bench/REPORT.md and bench/latency.svg, with a summary of every profile this run wrote. */
export function writeFullReport(report: BenchReport, args: string[]): void {
	// This run's profiles; without --profile, those an earlier `--profile` run left (their date is said).
	const files = report.profiles.length > 0 ? report.profiles : listProfiles(0);
	const profiles = files.map(p => summarise(path.join(ROOT, p)));
	const profilesFrom =
		report.profiles.length > 0
			? "this run"
			: files.length > 0
				? `an earlier \`--profile\` run (${new Date(fs.statSync(path.join(ROOT, files[0])).mtimeMs).toISOString()}), not this one: profiled nodes run slower and hold their samples in memory`
				: "";
	const gaps = fs.existsSync(REPORT_NOTES) ? fs.readFileSync(REPORT_NOTES, "utf8") : undefined;
	const md = fullReport(report, {
		chart: "latency.svg",
		profiles,
		profilesFrom,
		command: `npm run bench -- ${args.join(" ")}`,
		gaps,
		flashSaleNotes: fs.existsSync(FLASH_SALE_NOTES)
			? fs.readFileSync(FLASH_SALE_NOTES, "utf8")
			: undefined
	});
	fs.writeFileSync(path.join(ROOT, "bench", "REPORT.md"), md);
	fs.writeFileSync(path.join(ROOT, "bench", "latency.svg"), latencySvg(report));
	process.stdout.write("report: bench/REPORT.md, bench/latency.svg\n");
}
