/** Watching bench processes: fail a wait as soon as a node it depends on dies. */
import type { Proc } from "../scripts/lib/cluster";

/** True once the process has exited (or was killed). */
export function hasExited(proc: Proc): boolean {
	return proc.child.exitCode !== null || proc.child.signalCode !== null;
}

/**
 * Resolves like `task`, but rejects as soon as one of `procs` exits first, with that process's last
 * output: a node that crashes while we wait for it fails the wait at once, not at its timeout.
 */
export async function whileAlive<T>(procs: Proc[], task: Promise<T>): Promise<T> {
	const watchers = procs.map(proc =>
		proc.exited.then(code => {
			const output = proc.output().trim().slice(-3000);
			throw new Error(`${proc.name} exited (${code})${output ? `:\n${output}` : ""}`);
		})
	);
	// Whichever loses the race must not surface later as an unhandled rejection.
	for (const w of watchers) w.catch(() => undefined);
	task.catch(() => undefined);
	return Promise.race([task, ...watchers]);
}
