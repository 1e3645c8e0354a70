/**
 * `npm run bench`: FlashMart's HTTP throughput and latency against a bare Moleculer baseline, every process on
 * 127.0.0.1 and stopped at the end (also on error, SIGINT and SIGTERM). The flags are in bench/cli.ts, each mode
 * is a file of bench/modes/. Exit code 0 once the run completes, whatever the speed; 1 when something could not
 * start, a row could not be measured or a flow's check found a discrepancy; 2 for a usage error.
 */
import { type Cli, USAGE, UsageError, parseArgs } from "./cli";
import { runHolds } from "./modes/holds";
import { runObservability } from "./modes/observability";
import { runReport } from "./modes/report";
import { rewriteReport } from "./modes/rewrite-report";
import { runScenarios } from "./modes/scenarios";
import { cleanup, handleSignals } from "./session";

async function main(): Promise<number> {
	let cli: Cli;
	try {
		cli = parseArgs(process.argv.slice(2));
	} catch (err) {
		if (!(err instanceof UsageError)) throw err;
		if (err.message) console.error(`bench: ${err.message}`);
		console.error(USAGE);
		return err.message ? 2 : 0;
	}
	if (cli.rewriteReport) return rewriteReport();
	if (cli.holds) return runHolds(cli);
	// Before --report: with both, the report is written from the observability rows alone.
	if (cli.observability) return runObservability(cli);
	if (cli.report) return runReport(cli);
	return runScenarios(cli);
}

handleSignals();
main().then(
	code => process.exit(code),
	(err: unknown) => {
		console.error(err);
		void cleanup().finally(() => process.exit(1));
	}
);
