/**
 * The bench's CPU reading (bench/cpu.ts): a live process's user + system seconds from /proc, growing with work done,
 * null for a process that is not there, and a window that counts only what ran between its opening and closing.
 */
import { spawn } from "node:child_process";
import { coresUsed, cpuSecondsOf, cpuSecondsOfAll, cpuWindow, settle } from "../../../bench/cpu";

const linux = process.platform === "linux";

/** Keeps this process busy until it has used `ms` more of CPU (by its own count, whatever else the machine runs). */
function spin(ms: number): void {
	const start = process.cpuUsage();
	let x = 0;
	for (;;) {
		for (let i = 0; i < 10_000; i++) x += Math.sqrt(x + 1);
		const used = process.cpuUsage(start);
		if ((used.user + used.system) / 1000 >= ms) break;
	}
	if (x < 0) throw new Error("unreachable");
}

(linux ? describe : describe.skip)("bench/cpu", () => {
	it("reads this process's CPU seconds, which grow with the work it does", () => {
		const before = cpuSecondsOf(process.pid)!;
		expect(before).toBeGreaterThan(0);
		spin(300);
		const after = cpuSecondsOf(process.pid)!;
		// /proc counts in ticks of 10 ms, and the process did a little more than spin meanwhile.
		expect(after - before).toBeGreaterThanOrEqual(0.28);
		expect(after - before).toBeLessThan(0.5);
	});

	it("answers null for a process that is not there, and for a sum including one", async () => {
		const child = spawn(process.execPath, ["-e", ""]);
		const pid = child.pid!;
		await new Promise(resolve => child.once("exit", resolve));
		expect(cpuSecondsOf(pid)).toBeNull();
		expect(cpuSecondsOf(undefined)).toBeNull();
		expect(cpuSecondsOfAll([process.pid, pid])).toBeNull();
	});

	it("counts a window's CPU only between its opening and closing", () => {
		const window = cpuWindow([process.pid]);
		expect(window.seconds()).toBeNull();
		spin(300); // before the window: not counted
		window.opened();
		spin(200);
		window.closed();
		spin(300); // after it: not counted
		const seconds = window.seconds()!;
		expect(seconds).toBeGreaterThanOrEqual(0.18);
		expect(seconds).toBeLessThan(0.4);
	});

	/** A child process that keeps one core busy for `ms` (forever for Infinity), then idles until killed. */
	function busyChild(ms: number) {
		const until = Number.isFinite(ms) ? `Date.now() + ${ms}` : "Infinity";
		const child = spawn(process.execPath, [
			"-e",
			`const end = ${until}; while (Date.now() < end) {} setInterval(() => {}, 1000);`
		]);
		return child;
	}

	it("reads the cores a process uses: about one for a spinning child, about none for an idle one", async () => {
		const child = busyChild(Infinity);
		try {
			expect(await coresUsed([child.pid], 500)).toBeGreaterThan(0.5);
		} finally {
			child.kill("SIGKILL");
		}
		const idle = busyChild(0);
		try {
			await new Promise(resolve => setTimeout(resolve, 300));
			expect(await coresUsed([idle.pid], 500)).toBeLessThan(0.1);
		} finally {
			idle.kill("SIGKILL");
		}
	});

	it("settles once the processes are back at their idle level, and gives up at the limit", async () => {
		const child = busyChild(1500);
		try {
			const done = await settle([child.pid], 0, 10_000);
			expect(done.settled).toBe(true);
			// It waited for the busy second and a half to end (less the child's own start-up), not for the limit.
			expect(done.waitedSeconds).toBeGreaterThanOrEqual(0.9);
			expect(done.waitedSeconds).toBeLessThan(5);
		} finally {
			child.kill("SIGKILL");
		}
		const forever = busyChild(Infinity);
		try {
			const done = await settle([forever.pid], 0, 1000);
			expect(done).toEqual({ waitedSeconds: expect.any(Number), settled: false });
			expect(done.waitedSeconds).toBeGreaterThanOrEqual(1);
		} finally {
			forever.kill("SIGKILL");
		}
	});
});
