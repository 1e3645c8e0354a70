/**
 * testRules (test/helpers/monitoring.ts): the live alert tests run the project's own rule file with only the
 * `for:` durations (and the thresholds a test names) shortened. Shown here: nothing else changes, a replacement that
 * does not match exactly once or names a missing alert throws, and the result still passes promtool.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import yaml from "js-yaml";
import { loadRules, run, testRules, tool } from "../../helpers/monitoring";

describe("testRules", () => {
	const original = loadRules();

	it("shortens every for: except those kept, and changes nothing else", () => {
		const rules = testRules({ for: "2s", keepFor: ["FlashMartNatsDown"] });
		const all = rules.groups.flatMap(g => g.rules);
		const before = original.groups.flatMap(g => g.rules);
		expect(all.length).toBe(before.length);
		for (const [i, r] of all.entries()) {
			const was = before[i];
			if (!was.for) expect(r.for).toBeUndefined();
			else if (r.alert === "FlashMartNatsDown") expect(r.for).toBe(was.for);
			else expect(r.for).toBe("2s");
			expect({ ...r, for: was.for }).toEqual(was);
		}
		expect(rules.groups.map(g => g.name)).toEqual(original.groups.map(g => g.name));
	});

	it("replaces a named threshold in that alert's expression only", () => {
		const rules = testRules({
			for: "2s",
			exprs: { FlashMartOutboxStuck: [["> 300", "> 10"]] }
		});
		const stuck = rules.groups.flatMap(g => g.rules).find(r => r.alert === "FlashMartOutboxStuck")!;
		expect(stuck.expr).toContain("> 10");
		expect(stuck.expr).not.toContain("> 300");
		const others = rules.groups
			.flatMap(g => g.rules)
			.filter(r => r.alert !== "FlashMartOutboxStuck");
		expect(others.map(r => r.expr)).toEqual(
			original.groups
				.flatMap(g => g.rules)
				.filter(r => r.alert !== "FlashMartOutboxStuck")
				.map(r => r.expr)
		);
	});

	it("throws for a replacement that does not match exactly once, or an alert the file lacks", () => {
		expect(() =>
			testRules({ for: "2s", exprs: { FlashMartOutboxStuck: [["> 301", "> 10"]] } })
		).toThrow(/occurs 0 times/);
		expect(() => testRules({ for: "2s", exprs: { FlashMartNodeDown: [["", "x"]] } })).toThrow(
			/occurs/
		);
		expect(() => testRules({ for: "2s", keepFor: ["FlashMartNoSuchAlert"] })).toThrow(/no alert/);
	});

	it("gives a rule file promtool accepts", async () => {
		const file = path.join(
			fs.mkdtempSync(path.join(os.tmpdir(), "flashmart-test-rules-")),
			"rules.yml"
		);
		fs.writeFileSync(
			file,
			yaml.dump(testRules({ for: "5s", exprs: { FlashMartOutboxStuck: [["> 300", "> 10"]] } }))
		);
		const res = await run(tool("promtool"), ["check", "rules", file]);
		expect({ code: res.code, out: res.stdout + res.stderr }).toEqual({
			code: 0,
			out: expect.stringMatching(/SUCCESS: \d+ rules found/)
		});
	});
});
