/**
 * The bench's reading of what FlashMart's nodes printed during a row (bench/rows.ts): whole lines only, so an info
 * line the mark cut in two is not reported as a stray line of output, and a warning is counted once.
 */
import { linesSince, newLogLines } from "../../../bench/rows";
import type { Proc } from "../../../scripts/lib/cluster";

const json = (level: string, message: string) =>
	JSON.stringify({ level, message, service: "orders" });

/** A process whose captured output is whatever `text()` is now. */
const procOf = (text: () => string) =>
	({ name: "flashmart-orders", output: text }) as unknown as Proc;

describe("linesSince", () => {
	it("reads every whole line when nothing had been printed at the mark", () => {
		expect(linesSince("a\nb\n", "")).toEqual(["a", "b"]);
	});

	it("starts after a mark that ended a line", () => {
		expect(linesSince("a\nb\nc\n", "a\n")).toEqual(["b", "c"]);
	});

	it("starts at the beginning of the line a mark ended in the middle of", () => {
		expect(linesSince("first\nhalf-written line\nnext\n", "first\nhalf-wr")).toEqual([
			"half-written line",
			"next"
		]);
	});

	it("leaves out the line still being written", () => {
		expect(linesSince("a\nb\nstill being wri", "a\n")).toEqual(["b"]);
		expect(linesSince("a\nno newline yet", "a\n")).toEqual([]);
	});

	it("starts at the first whole line when the mark was trimmed away", () => {
		expect(linesSince("ut of a line\nwhole\n", "gone")).toEqual(["whole"]);
		expect(linesSince("no line ends here", "gone")).toEqual([]);
	});

	it("answers nothing when no line was finished since the mark", () => {
		expect(linesSince("a\nb\n", "a\nb\n")).toEqual([]);
	});
});

describe("newLogLines", () => {
	it("reports a warning once and an info line cut by the mark not at all", () => {
		const info = json("info", "Notification (payment_receipt) for user u1: Receipt for order o1");
		let out = `${json("info", "started")}\n${info.slice(0, 40)}`;
		const proc = procOf(() => out);
		const marks = new Map([[proc, out.slice(-200)]]);
		out += `${info.slice(40)}\n${json("warn", "Stock not returned yet")}\n${json("info", "later")}\n`;
		const groups = newLogLines(marks);
		expect(groups).toEqual([
			{ node: "flashmart-orders", level: "warn", message: "Stock not returned yet", count: 1 }
		]);
	});

	it("still counts a line that is not JSON (a crash's stack) as output", () => {
		let out = `${json("info", "started")}\n`;
		const proc = procOf(() => out);
		const marks = new Map([[proc, out.slice(-200)]]);
		out += "TypeError: boom\n    at x (y.js:1:1)\n";
		const groups = newLogLines(marks);
		expect(groups.map(g => [g.level, g.message])).toEqual([
			["output", "TypeError: boom"],
			["output", "at x (y.js:1:1)"]
		]);
	});
});
