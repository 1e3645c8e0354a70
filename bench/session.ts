/**
 * What one bench run started (nodes, NATS, the object store, the log and span sinks, temp dirs), so that all of it is stopped
 * at the end, also on error, SIGINT and SIGTERM; and the run's progress lines on stderr.
 */
import fs from "node:fs";
import type { EmbeddedS3 } from "../adapters/object-store";
import { type NatsServer, type Proc, stopAll } from "../scripts/lib/cluster";
import { stopFlow } from "./flow";
import { stopLoad } from "./measure";

interface Session {
	started: Proc[];
	tempDirs: string[];
	nats: NatsServer | null;
	/** The media nodes' object store, started with the first FlashMart cluster. */
	s3: EmbeddedS3 | null;
	/** The stand-ins `--observability` ships logs and spans to. */
	sinks: Array<{ close(): Promise<void> }>;
	/** Set by the first SIGINT or SIGTERM: every phase stops before its next step. */
	interrupted: boolean;
}

/** Everything this run started, for cleanup(). */
export const session: Session = {
	started: [],
	tempDirs: [],
	nats: null,
	s3: null,
	sinks: [],
	interrupted: false
};

export const startedAt = Date.now();

export const progress = (message: string) =>
	process.stderr.write(
		`[bench ${((Date.now() - startedAt) / 1000).toFixed(1).padStart(5)}s] ${message}\n`
	);

let cleaning: Promise<void> | null = null;

/** Stops the load, every node (gracefully: a profiled gateway writes its profile), then NATS. */
export function cleanup(): Promise<void> {
	cleaning ??= (async () => {
		stopLoad();
		stopFlow();
		await Promise.all(session.started.map(proc => proc.stop("SIGTERM", 10_000)));
		if (session.nats) session.tempDirs.push(session.nats.storeDir);
		await session.nats?.stop();
		await session.s3?.close();
		await Promise.all(session.sinks.map(s => s.close()));
		await stopAll(5_000);
		for (const dir of session.tempDirs) fs.rmSync(dir, { recursive: true, force: true });
	})();
	return cleaning;
}

/** Stops every node started so far that still runs (a phase that failed half-way). */
export async function stopStarted(): Promise<void> {
	await Promise.all(
		session.started
			.filter(p => p.child.exitCode === null && p.child.signalCode === null)
			.map(p => p.stop("SIGTERM", 10_000))
	);
}

export function handleSignals(): void {
	for (const signal of ["SIGINT", "SIGTERM"] as const) {
		process.on(signal, () => {
			// A second signal does not wait: the exit handlers SIGKILL what is left.
			if (session.interrupted) process.exit(130);
			session.interrupted = true;
			progress(`${signal}: stopping everything (again to force)`);
			void cleanup().finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
		});
	}
}
