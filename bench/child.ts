/** Waits that fail early: as soon as a node they depend on dies, or after a time limit. */
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

/** Resolves like `task`, or rejects once `ms` have passed, saying `what` took too long. */
export function withTimeout<T>(task: Promise<T>, ms: number, what: string): Promise<T> {
	let timer: NodeJS.Timeout | undefined;
	const timeout = new Promise<never>((_, reject) => {
		timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms);
	});
	return Promise.race([task, timeout]).finally(() => clearTimeout(timer));
}
