/** Change announcements at most once per window: the first at once, the rest together at the window's end. */
import { ThrottledBatch } from "../../../lib/throttled-batch";

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

describe("ThrottledBatch", () => {
	it("announces a change of a quiet period at once", () => {
		const sent: string[][] = [];
		const batch = new ThrottledBatch(40, ids => sent.push(ids));
		batch.add(["a", "a", "b"]);
		expect(sent).toEqual([["a", "b"]]);
		batch.flush();
	});

	it("announces the changes within a window together at its end, and nothing when there were none", async () => {
		const sent: string[][] = [];
		const batch = new ThrottledBatch(40, ids => sent.push(ids));
		batch.add(["a"]);
		for (const id of ["b", "c", "b", "a"]) batch.add([id]);
		expect(sent).toEqual([["a"]]);
		await sleep(60);
		expect(sent).toEqual([["a"], ["b", "c", "a"]]);
		await sleep(100);
		expect(sent.length).toBe(2);
		batch.add(["d"]); // quiet again: at once
		expect(sent[2]).toEqual(["d"]);
		batch.flush();
	});

	it("answers what the announcement answered when it went out at once, nothing when it waits", async () => {
		const batch = new ThrottledBatch(40, async (ids: string[]) => ids.length);
		await expect(batch.add(["a", "b"])).resolves.toBe(2);
		expect(batch.add(["c"])).toBeUndefined();
		batch.flush();
	});

	it("sends what is pending on flush", () => {
		const sent: string[][] = [];
		const batch = new ThrottledBatch(10_000, ids => sent.push(ids));
		batch.add(["a"]);
		batch.add(["b"]);
		batch.flush();
		expect(sent).toEqual([["a"], ["b"]]);
		batch.add(["c"]);
		expect(sent[2]).toEqual(["c"]);
		batch.flush();
	});
});
