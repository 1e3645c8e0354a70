/** `--rewrite-report`: bench/REPORT.md and latency.svg again from saved data (after editing REPORT-notes.md). */
import fs from "node:fs";
import path from "node:path";
import { REPORT_DATA, RESULTS_DIR, writeFullReport } from "../output";
import type { BenchReport } from "../types";

export function rewriteReport(): number {
	// The data behind the committed report (any later bench run overwrites latest.json).
	const source = fs.existsSync(REPORT_DATA) ? REPORT_DATA : path.join(RESULTS_DIR, "latest.json");
	const saved = JSON.parse(fs.readFileSync(source, "utf8")) as BenchReport & { args?: string[] };
	writeFullReport(saved, saved.args ?? ["--report"]);
	return 0;
}
